/**
 * ERC-2612 `permit` payments (USDm on MegaETH): typed data, the rules that need no chain, and the
 * decision that turns chain state into a settlement plan. Pure: no I/O, no clock.
 *
 * The payer signs `Permit(owner, spender = our facilitator signer, value, nonce, deadline)`; the
 * facilitator sends `permit()` and then `transferFrom(owner, payTo, value)` from that spender.
 */
import { PermitPayload, Reason, reject, zodMessage, type NetworkInfo, type Rejection, type Requirements, type RuleResult, describeValue } from "@facilitator/core";
import { getAddress, hashTypedData, type Address, type Hex, type TypedDataDefinition } from "viem";
import { tokenDomain, type TokenDomain } from "./eip3009.ts";
import { recoverDigestSigner } from "./signature.ts";

/**
 * `requirements.extra.assetTransferMethod` of our direct-permit flow. The x402 spec reserves
 * `eip3009` and `permit2` (with the `eip2612GasSponsoring` extension, whose permit names the Permit2
 * contract as spender). This flow differs on the wire and on chain (the spender is the facilitator's
 * own account), so it gets a name no spec value has or is likely to get.
 */
export const PERMIT_TRANSFER_METHOD = "erc2612-permit";

export const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

export interface PermitMessage {
  owner: Address;
  spender: Address;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

export function permitTypedData(domain: TokenDomain, permit: PermitMessage): TypedDataDefinition<typeof PERMIT_TYPES, "Permit"> {
  return { domain, types: PERMIT_TYPES, primaryType: "Permit", message: permit };
}

/** A permit payment that passed every rule that needs neither the chain nor the clock. */
export interface PermitPayment {
  asset: Address;
  payTo: Address;
  domain: TokenDomain;
  permit: PermitMessage;
  signature: Hex;
  /** The EIP-712 digest the owner signed. */
  digest: Hex;
  /** True when the signature is a valid ECDSA signature by `owner`; otherwise only ERC-1271 can save it. */
  ecdsaValid: boolean;
}

const MAX_UINT256 = 2n ** 256n - 1n;

/**
 * Shape, domain and binding rules. `spenders` are the accounts that can settle on this network: the
 * permit must name one of them, because only the spender can call `transferFrom` with the allowance.
 */
export function checkPermitPayment(
  payload: unknown,
  requirements: Requirements,
  network: NetworkInfo,
  spenders: readonly Address[],
): RuleResult<PermitPayment> {
  const parsed = PermitPayload.safeParse(payload);
  if (!parsed.success) {
    return fail(reject(Reason.invalidPayload, `ERC-2612 permit payload ({signature, permit}) expected on ${network.name}: ${zodMessage(parsed.error)}`));
  }
  const { signature, permit: p } = parsed.data;
  const tooLarge = (["value", "nonce", "deadline"] as const).find((f) => BigInt(p[f]) > MAX_UINT256);
  if (tooLarge) return fail(reject(Reason.invalidPayload, `permit.${tooLarge} does not fit in uint256`));
  const owner = getAddress(p.owner);

  const method = requirements.extra.assetTransferMethod;
  if (method !== undefined && method !== PERMIT_TRANSFER_METHOD) {
    return fail(reject(Reason.invalidRequirements, `extra.assetTransferMethod ${describeValue(method)} is not served on ${network.name}; this facilitator settles "${PERMIT_TRANSFER_METHOD}" there`), owner);
  }
  const domain = tokenDomain(requirements, network);
  if (!domain.ok) return { ...domain, payer: owner };

  const spender = getAddress(p.spender);
  if (!spenders.includes(spender)) {
    return fail(reject(Reason.permitSpenderMismatch, `the permit is for spender ${spender}, which is not this facilitator's signer on ${network.name} (${spenders.join(", ")})`), owner);
  }
  const value = BigInt(p.value);
  if (value !== requirements.amount) {
    return fail(reject(Reason.valueMismatch, `permit value ${value} differs from the required amount ${requirements.amount}`), owner);
  }
  const permit: PermitMessage = { owner, spender, value, nonce: BigInt(p.nonce), deadline: BigInt(p.deadline) };
  const digest = hashTypedData(permitTypedData(domain.value, permit));
  const signer = recoverDigestSigner(digest, signature as Hex);
  return {
    ok: true,
    value: {
      asset: domain.value.verifyingContract,
      payTo: getAddress(requirements.payTo),
      domain: domain.value,
      permit,
      signature: signature as Hex,
      digest,
      ecdsaValid: signer === owner,
    },
  };
}

/** Seconds a permit must stay valid, so it cannot expire while the settlement mines. */
export const PERMIT_DEADLINE_MARGIN_SECONDS = 6n;

export function checkPermitDeadline(permit: PermitMessage, nowSeconds: bigint, marginSeconds = PERMIT_DEADLINE_MARGIN_SECONDS): Rejection | undefined {
  if (permit.deadline < nowSeconds + marginSeconds) {
    return reject(Reason.permitDeadline, `the permit expires at ${permit.deadline}, less than ${marginSeconds} s after now (${nowSeconds})`);
  }
  return undefined;
}

/** The settlement ledger key: the token's own replay key of a permit (owner, nonce) per chain and token. */
export function permitLedgerKey(chainId: number, asset: string, owner: string, nonce: bigint): string {
  return `evm:${chainId}:${asset.toLowerCase()}:${owner.toLowerCase()}:permit:${nonce}`;
}

type Simulation = { ok: true; gas: bigint } | { ok: false; reason: string };

/** The chain state a permit payment depends on (see permit-reads.ts). */
export interface PermitChainState {
  assetHasCode: boolean;
  ownerHasCode: boolean;
  /** Undefined when the asset did not answer (then a simulation tells what is wrong). */
  balance?: bigint;
  nonce?: bigint;
  allowance?: bigint;
  /** `permit(...)` sent by the spender. */
  permit: Simulation;
  /** `transferFrom(owner, payTo, value)` sent by the spender: goes through only with the allowance in place. */
  transferFrom: Simulation;
  /** `transfer(payTo, value)` sent by the owner: the same balance moves as the transferFrom after a permit. */
  transfer: Simulation;
}

/**
 * Gas a `transferFrom` needs beyond the owner's own `transfer` of the same value: reading and
 * lowering the allowance (a cold SLOAD and an SSTORE, about 5,000 on Ethereum's schedule), with room.
 */
export const ALLOWANCE_GAS = 10_000n;

export type PermitPlan = { permitNeeded: boolean; transferGas: bigint; permitGas: bigint };

/** What this payment's own ledger entry says of its permit. */
export interface PermitHistory {
  /** We signed and recorded `permit()` for this very payment before (an earlier attempt that did not transfer). */
  permitRecorded: boolean;
}

/**
 * What the chain says of a payment: a rejection, or whether the permit must be sent first and the gas
 * of each call. The permit is skipped only when this payment's own ledger entry recorded it and the
 * chain shows its nonce consumed (our earlier send mined, or someone front-ran it with the same public
 * signature): then the allowance it set is this payment's. Otherwise the nonce must be the owner's
 * next one and the permit is sent, so the token itself checks the signature: an allowance the owner
 * gave for other reasons is never spent on a permit nobody proved.
 */
export function planPermitSettlement(p: PermitPayment, s: PermitChainState, chainId: number, history: PermitHistory = { permitRecorded: false }): RuleResult<PermitPlan> {
  const { owner, value, nonce } = p.permit;
  if (!s.assetHasCode) return fail(reject(Reason.assetNotDeployed, `asset ${p.asset} has no code on chain ${chainId}`), owner);
  if (!p.ecdsaValid && !s.ownerHasCode) {
    return fail(reject(Reason.signature, `the permit signature is not ${owner}'s, and ${owner} is not a contract wallet`), owner);
  }
  if (s.balance !== undefined && s.balance < value) {
    return fail(reject(Reason.insufficientFunds, `${owner} holds ${s.balance} of ${p.asset}, the payment needs ${value}`), owner);
  }
  const consumed = s.nonce !== undefined && s.nonce > nonce;
  if (history.permitRecorded && consumed) {
    if (s.allowance === undefined || s.allowance < value) {
      return fail(reject(Reason.permitNonce, `permit nonce ${nonce} of ${owner} was consumed, and the allowance it set (${s.allowance ?? "unknown"}) no longer covers ${value}`), owner);
    }
    if (!s.transferFrom.ok) return fail(reject(Reason.evmSimulationFailed, `simulation of transferFrom reverted: ${s.transferFrom.reason}`), owner);
    return { ok: true, value: { permitNeeded: false, transferGas: s.transferFrom.gas, permitGas: 0n } };
  }
  if (s.nonce !== undefined && s.nonce !== nonce) {
    const why = nonce < s.nonce ? "is already used" : "is not the next one";
    return fail(reject(Reason.permitNonce, `permit nonce ${nonce} of ${owner} ${why} (the token expects ${s.nonce})`), owner);
  }
  if (!s.permit.ok) {
    return p.ecdsaValid
      ? fail(reject(Reason.evmSimulationFailed, `simulation of permit reverted: ${s.permit.reason}`), owner)
      : fail(reject(Reason.signature, `the token's permit refused the contract wallet's signature: ${s.permit.reason}`), owner);
  }
  if (!s.transfer.ok) return fail(reject(Reason.evmSimulationFailed, `simulation of the transfer after the permit reverted: ${s.transfer.reason}`), owner);
  return { ok: true, value: { permitNeeded: true, transferGas: s.transfer.gas + ALLOWANCE_GAS, permitGas: s.permit.gas } };
}

function fail(rejection: Rejection, payer?: string): { ok: false; rejection: Rejection; payer?: string } {
  return payer ? { ok: false, rejection, payer } : { ok: false, rejection };
}
