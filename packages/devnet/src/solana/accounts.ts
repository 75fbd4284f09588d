/** Account encodings of Solana's RPC (`base64`, `base58`, `jsonParsed` for SPL Token accounts and mints). */
import { getBase58Decoder, getBase64Decoder, type Address, type ReadonlyUint8Array } from "@solana/kit";
import { getMintDecoder, getTokenDecoder, TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";

export const TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
const MINT_SIZE = 82;
const TOKEN_ACCOUNT_SIZE = 165;

export interface AccountEncodingConfig {
  encoding?: string;
  dataSlice?: { offset: number; length: number };
}

export class InvalidParamsError extends Error {}

/** Looks up a mint's decimals, for `jsonParsed` token amounts. */
export type DecimalsLookup = (mint: Address) => number | undefined;

export function encodeAccount(account: AccountState, config: AccountEncodingConfig, decimalsOf: DecimalsLookup): unknown {
  if (!account.exists) return null;
  const encoding = config.encoding ?? "binary";
  const slice = config.dataSlice;
  const data = slice ? account.data.slice(slice.offset, slice.offset + slice.length) : account.data;
  return {
    data: encodeData(account, data, encoding, decimalsOf),
    executable: account.executable,
    lamports: Number(account.lamports),
    owner: account.programAddress,
    // Real nodes answer u64::MAX for rent-exempt accounts, which JSON numbers cannot carry exactly.
    rentEpoch: 0,
    space: account.data.length,
  };
}

function encodeData(
  account: RawAccount,
  data: ReadonlyUint8Array,
  encoding: string,
  decimalsOf: DecimalsLookup,
): unknown {
  switch (encoding) {
    case "base64":
      return [getBase64Decoder().decode(data), "base64"];
    case "base58":
      return [getBase58Decoder().decode(data), "base58"];
    case "binary":
      return getBase58Decoder().decode(data);
    case "jsonParsed":
      return parseTokenAccount(account, decimalsOf) ?? [getBase64Decoder().decode(data), "base64"];
    default:
      throw new InvalidParamsError(`unsupported encoding: ${encoding}`);
  }
}

const isTokenProgram = (owner: string) => owner === TOKEN_PROGRAM_ADDRESS || owner === TOKEN_2022_PROGRAM;

type RawAccount = { programAddress: Address; data: ReadonlyUint8Array };

/** An account as litesvm or a simulation reports it (kit's encoded account shapes fit). */
export type AccountState =
  | { exists: false }
  | { exists: true; data: ReadonlyUint8Array; executable: boolean; lamports: bigint; programAddress: Address };

/** `jsonParsed` data for an SPL Token account or mint, or undefined for anything else. */
function parseTokenAccount(account: RawAccount, decimalsOf: DecimalsLookup): unknown {
  if (!isTokenProgram(account.programAddress)) return undefined;
  const program = (account.programAddress as string) === TOKEN_PROGRAM_ADDRESS ? "spl-token" : "spl-token-2022";
  if (account.data.length === MINT_SIZE) {
    const m = getMintDecoder().decode(account.data);
    return {
      program,
      space: account.data.length,
      parsed: {
        type: "mint",
        info: {
          decimals: m.decimals,
          freezeAuthority: m.freezeAuthority.__option === "Some" ? m.freezeAuthority.value : null,
          isInitialized: m.isInitialized,
          mintAuthority: m.mintAuthority.__option === "Some" ? m.mintAuthority.value : null,
          supply: m.supply.toString(),
        },
      },
    };
  }
  if (account.data.length >= TOKEN_ACCOUNT_SIZE) {
    const t = getTokenDecoder().decode(account.data.slice(0, TOKEN_ACCOUNT_SIZE));
    return {
      program,
      space: account.data.length,
      parsed: {
        type: "account",
        info: {
          isNative: t.isNative.__option === "Some",
          mint: t.mint,
          owner: t.owner,
          state: ["uninitialized", "initialized", "frozen"][t.state] ?? "uninitialized",
          tokenAmount: uiTokenAmount(t.amount, decimalsOf(t.mint) ?? 0),
        },
      },
    };
  }
  return undefined;
}

/** Decimals of a mint account, or undefined if `account` is not a mint. */
export function mintDecimals(account: AccountState): number | undefined {
  if (!account.exists || !isTokenProgram(account.programAddress) || account.data.length !== MINT_SIZE) return undefined;
  return getMintDecoder().decode(account.data).decimals;
}

/** The mint and raw amount of an SPL Token account, or undefined if `account` is not one. */
export function tokenAccountFields(account: AccountState): { mint: Address; owner: Address; amount: bigint } | undefined {
  if (!account.exists || !isTokenProgram(account.programAddress) || account.data.length < TOKEN_ACCOUNT_SIZE) return undefined;
  const t = getTokenDecoder().decode(account.data.slice(0, TOKEN_ACCOUNT_SIZE));
  return { mint: t.mint, owner: t.owner, amount: t.amount };
}

/** Solana's `UiTokenAmount`. */
export function uiTokenAmount(amount: bigint, decimals: number) {
  const digits = amount.toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, "");
  const uiAmountString = fraction ? `${whole}.${fraction}` : whole;
  return { amount: amount.toString(), decimals, uiAmount: Number(uiAmountString), uiAmountString };
}
