/**
 * Solana JSON-RPC methods over a LocalSolana, answering in the shapes real nodes use: what the
 * facilitator, `@solana/kit`, `@solana/web3.js` 1.x and the official x402 clients call.
 */
import {
  getBase58Decoder,
  getBase58Encoder,
  getBase64Decoder,
  getBase64Encoder,
  type Address,
  type ReadonlyUint8Array,
} from "@solana/kit";
import { TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";
import {
  encodeAccount,
  InvalidParamsError,
  mintDecimals,
  tokenAccountFields,
  uiTokenAmount,
  TOKEN_2022_PROGRAM,
  type AccountEncodingConfig,
} from "./accounts.ts";
import { RpcError, type LandedTransaction, type LocalSolana } from "./chain.ts";
import { decodeMessage, feeForMessage } from "./wire.ts";

/** Genesis hash of Solana devnet: `@x402/svm` and `x402` accept only the public clusters' ids. */
export const DEVNET_GENESIS_HASH = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const API_VERSION = "2.2.0";
const SLOTS_PER_EPOCH = 432_000;

type Config = Record<string, unknown> | undefined;
export type Method = (params: unknown[]) => unknown;

export function solanaMethods(chain: LocalSolana, genesisHash: string = DEVNET_GENESIS_HASH): Record<string, Method> {
  const withContext = (value: unknown) => ({ context: { apiVersion: API_VERSION, slot: Number(chain.slot) }, value });
  const decimalsOf = (mint: Address) => mintDecimals(chain.svm.getAccount(mint));
  const account = (address: unknown, config: Config) =>
    encodeAccount(chain.svm.getAccount(asAddress(address)), (config ?? {}) as AccountEncodingConfig, decimalsOf);

  return {
    getHealth: () => "ok",
    getVersion: () => ({ "solana-core": API_VERSION, "feature-set": 0 }),
    getGenesisHash: () => genesisHash,
    getSlot: () => Number(chain.slot),
    getBlockHeight: () => Number(chain.blockHeight),
    getEpochInfo: () => ({
      absoluteSlot: Number(chain.slot),
      blockHeight: Number(chain.blockHeight),
      epoch: Math.floor(Number(chain.slot) / SLOTS_PER_EPOCH),
      slotIndex: Number(chain.slot) % SLOTS_PER_EPOCH,
      slotsInEpoch: SLOTS_PER_EPOCH,
      transactionCount: chain.transactionCount,
    }),
    getLatestBlockhash: () => {
      const { blockhash, lastValidBlockHeight } = chain.latestBlockhash();
      return withContext({ blockhash, lastValidBlockHeight: Number(lastValidBlockHeight) });
    },
    isBlockhashValid: ([blockhash]) => withContext(chain.isBlockhashValid(String(blockhash))),
    getMinimumBalanceForRentExemption: ([size]) => Number(chain.svm.minimumBalanceForRentExemption(BigInt(Number(size ?? 0)))),
    getFeeForMessage: ([message]) => {
      const compiled = decodeMessage(decodeEncoded(message, "base64"));
      return withContext(chain.isBlockhashValid(compiled.lifetimeToken) ? Number(feeForMessage(compiled)) : null);
    },
    getRecentPrioritizationFees: () => [],
    getBalance: ([address]) => withContext(Number(chain.svm.getBalance(asAddress(address)) ?? 0n)),
    getAccountInfo: ([address, config]) => withContext(account(address, config as Config)),
    getMultipleAccounts: ([addresses, config]) =>
      withContext(asArray(addresses).map((a) => account(a, config as Config))),
    getProgramAccounts: ([program, config]) => {
      const c = (config ?? {}) as AccountEncodingConfig & { filters?: unknown[]; withContext?: boolean };
      const found = chain.svm
        .getProgramAccounts(asAddress(program))
        .filter((a) => (c.filters ?? []).every((f) => matchesFilter(a.data, f)))
        .map((a) => ({ pubkey: a.address, account: encodeAccount({ ...a, exists: true }, c, decimalsOf) }));
      return c.withContext ? withContext(found) : found;
    },
    getTokenAccountBalance: ([address]) => {
      const fields = tokenAccountFields(chain.svm.getAccount(asAddress(address)));
      if (!fields) throw new RpcError(-32602, "Invalid param: could not find account");
      return withContext(uiTokenAmount(fields.amount, decimalsOf(fields.mint) ?? 0));
    },
    getTokenAccountsByOwner: ([owner, filter, config]) => {
      const f = (filter ?? {}) as { mint?: string; programId?: string };
      const programs = f.programId ? [f.programId] : [TOKEN_PROGRAM_ADDRESS, TOKEN_2022_PROGRAM];
      const value = programs.flatMap((p) =>
        chain.svm
          .getProgramAccounts(p as Address)
          .filter((a) => {
            const t = tokenAccountFields({ ...a, exists: true });
            return t !== undefined && t.owner === owner && (!f.mint || t.mint === f.mint);
          })
          .map((a) => ({ pubkey: a.address, account: encodeAccount({ ...a, exists: true }, (config ?? {}) as AccountEncodingConfig, decimalsOf) })),
      );
      return withContext(value);
    },
    requestAirdrop: ([address, amount]) => chain.airdrop(asAddress(address), BigInt(Number(amount))),
    sendTransaction: ([tx, config]) => {
      const c = (config ?? {}) as { encoding?: string; skipPreflight?: boolean };
      return chain.send(decodeEncoded(tx, c.encoding ?? "base58"), { skipPreflight: c.skipPreflight });
    },
    simulateTransaction: ([tx, config]) => {
      const c = (config ?? {}) as {
        encoding?: string;
        sigVerify?: boolean;
        replaceRecentBlockhash?: boolean;
        accounts?: { addresses: string[]; encoding?: string };
      };
      const sim = chain.simulate(decodeEncoded(tx, c.encoding ?? "base58"), {
        sigVerify: c.sigVerify,
        replaceRecentBlockhash: c.replaceRecentBlockhash,
        accounts: c.accounts?.addresses,
      });
      const accountEncoding = { encoding: c.accounts?.encoding ?? "base64" };
      return withContext({
        err: sim.err,
        logs: sim.logs,
        accounts: c.accounts
          ? c.accounts.addresses.map((a) => encodeAccount(sim.postAccounts.get(a)!, accountEncoding, decimalsOf))
          : null,
        unitsConsumed: Number(sim.unitsConsumed),
        returnData: null,
        innerInstructions: null,
        loadedAccountsDataSize: 0,
        replacementBlockhash: sim.replacementBlockhash
          ? { blockhash: sim.replacementBlockhash.blockhash, lastValidBlockHeight: Number(sim.replacementBlockhash.lastValidBlockHeight) }
          : null,
      });
    },
    getSignatureStatuses: ([signatures]) =>
      withContext(asArray(signatures).map((s) => signatureStatus(chain.status(String(s))))),
    getTransaction: ([signature, config]) => {
      const landed = chain.status(String(signature));
      const c = typeof config === "string" ? { encoding: config } : ((config ?? {}) as { encoding?: string; maxSupportedTransactionVersion?: number });
      if (!landed?.wire) return null;
      if (landed.wire.message.version !== "legacy" && c.maxSupportedTransactionVersion === undefined) {
        throw new RpcError(
          -32015,
          `Transaction version (${landed.wire.message.version}) is not supported by the requesting client. Please try the request again with the following configuration parameter: "maxSupportedTransactionVersion": 0`,
        );
      }
      return transactionResponse(landed, c.encoding ?? "json");
    },
  };
}

/** Status of a landed transaction. Nothing here forks, so a landed transaction is final at once. */
export function signatureStatus(landed: LandedTransaction | undefined): unknown {
  if (!landed) return null;
  return {
    slot: Number(landed.slot),
    confirmations: null,
    err: landed.err,
    status: landed.err === null ? { Ok: null } : { Err: landed.err },
    confirmationStatus: "finalized",
  };
}

function transactionResponse(landed: LandedTransaction, encoding: string): unknown {
  const wire = landed.wire!;
  const m = wire.message;
  const meta = {
    err: landed.err,
    status: landed.err === null ? { Ok: null } : { Err: landed.err },
    fee: Number(landed.fee),
    preBalances: landed.preBalances.map(Number),
    postBalances: landed.postBalances.map(Number),
    innerInstructions: [],
    logMessages: landed.logs,
    preTokenBalances: [],
    postTokenBalances: [],
    rewards: [],
    loadedAddresses: { writable: [], readonly: [] },
    computeUnitsConsumed: Number(landed.unitsConsumed),
  };
  const transaction =
    encoding === "base64" || encoding === "base58"
      ? [encodeBytes(wireBytes(landed), encoding), encoding]
      : {
          signatures: wire.signatures,
          message: {
            accountKeys: m.staticAccounts,
            header: {
              numRequiredSignatures: m.header.numSignerAccounts,
              numReadonlySignedAccounts: m.header.numReadonlySignerAccounts,
              numReadonlyUnsignedAccounts: m.header.numReadonlyNonSignerAccounts,
            },
            instructions: m.instructions.map((ix) => ({
              programIdIndex: ix.programAddressIndex,
              accounts: ix.accountIndices ?? [],
              data: getBase58Decoder().decode(ix.data ?? new Uint8Array()),
              stackHeight: null,
            })),
            recentBlockhash: wire.blockhash,
            ...(m.version === "legacy" ? {} : { addressTableLookups: "addressTableLookups" in m ? (m.addressTableLookups ?? []) : [] }),
          },
        };
  return {
    slot: Number(landed.slot),
    blockTime: landed.blockTime,
    meta,
    transaction,
    version: m.version,
  };
}

/** The wire bytes of a landed transaction, rebuilt from its signatures and message. */
function wireBytes(landed: LandedTransaction): Uint8Array {
  const wire = landed.wire!;
  const sigs = wire.signatures.map((s) => getBase58Encoder().encode(s));
  const out = new Uint8Array(1 + 64 * sigs.length + wire.messageBytes.length);
  out[0] = sigs.length; // shortvec: fewer than 128 signatures fit in one byte
  sigs.forEach((s, i) => out.set(s, 1 + 64 * i));
  out.set(wire.messageBytes, 1 + 64 * sigs.length);
  return out;
}

function matchesFilter(data: ReadonlyUint8Array, filter: unknown): boolean {
  const f = filter as { dataSize?: number; memcmp?: { offset: number; bytes: string; encoding?: string } };
  if (f.dataSize !== undefined) return data.length === f.dataSize;
  if (f.memcmp) {
    const want = decodeEncoded(f.memcmp.bytes, f.memcmp.encoding ?? "base58");
    const got = data.slice(f.memcmp.offset, f.memcmp.offset + want.length);
    return got.length === want.length && got.every((b, i) => b === want[i]);
  }
  return true;
}

function decodeEncoded(value: unknown, encoding: string): Uint8Array {
  if (typeof value !== "string") throw new InvalidParamsError("expected an encoded string");
  try {
    if (encoding === "base64") return new Uint8Array(getBase64Encoder().encode(value));
    if (encoding === "base58") return new Uint8Array(getBase58Encoder().encode(value));
  } catch (e) {
    throw new InvalidParamsError(`invalid ${encoding}: ${(e as Error).message}`);
  }
  throw new InvalidParamsError(`unsupported encoding: ${encoding}`);
}

function encodeBytes(bytes: Uint8Array, encoding: string): string {
  return encoding === "base64" ? getBase64Decoder().decode(bytes) : getBase58Decoder().decode(bytes);
}

function asAddress(value: unknown): Address {
  if (typeof value !== "string" || !/^[1-9A-HJ-NP-Za-km-z]{32,44}$/.test(value)) {
    throw new InvalidParamsError(`Invalid param: ${JSON.stringify(value)} is not a base58 address`);
  }
  return value as Address;
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new InvalidParamsError("Invalid params: expected an array");
  return value;
}
