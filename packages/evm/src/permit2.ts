/**
 * Permit2 payments, as the official 2.27 clients sign them: `exact` through x402ExactPermit2Proxy
 * (witness `{to, validAfter}`) and `upto` through x402UptoPermit2Proxy (witness `{to, facilitator,
 * validAfter}`, the facilitator choosing the charge up to the signed maximum). The payer signs a
 * Permit2 `PermitWitnessTransferFrom` whose spender is the proxy; Permit2 checks it and moves the funds
 * with the allowance the payer gave Permit2, or one an EIP-2612 permit for Permit2 sets in the same
 * call (the `eip2612GasSponsoring` extension, settled through the proxy's `settleWithPermit`).
 * Pure: no I/O, no clock.
 */
import {
  acceptedAsset,
  acceptedAssetAddresses,
  Eip2612SponsoringInfo,
  Permit2Payload,
  Reason,
  reject,
  zodMessage,
  type NetworkInfo,
  type PaymentRequest,
  type Rejection,
  type RuleResult,
} from "@facilitator/core";
import { getAddress, hashDomain, isAddress, keccak256, toHex, type Address, type Hex } from "viem";
import { sponsoredApproval, type SponsoredApproval } from "./permit2-approval.ts";
import { recoverDigestSigner, splitSignature, type SplitSignature } from "./signature.ts";

export const PERMIT2_ADDRESS: Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
export const EXACT_PERMIT2_PROXY: Address = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
export const UPTO_PERMIT2_PROXY: Address = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";
/** `extra.assetTransferMethod` of requirements paid through Permit2 (the x402 spec's name). */
export const PERMIT2_TRANSFER_METHOD = "permit2";
/** The extension key under which a client adds an EIP-2612 permit for Permit2 (x402 spec). */
export const EIP2612_GAS_SPONSORING = "eip2612GasSponsoring";

export type Permit2Kind = "exact" | "upto";

const MAX_UINT256 = 2n ** 256n - 1n;

const permissions = [
  { name: "permitted", type: "TokenPermissions" },
  { name: "spender", type: "address" },
  { name: "nonce", type: "uint256" },
  { name: "deadline", type: "uint256" },
  { name: "witness", type: "Witness" },
] as const;
const tokenPermissions = [
  { name: "token", type: "address" },
  { name: "amount", type: "uint256" },
] as const;

/** EIP-712 types of each proxy's witness transfer (the proxies' WITNESS_TYPE_STRING, spelled as viem wants it). */
export const PERMIT2_WITNESS_TYPES = {
  exact: {
    PermitWitnessTransferFrom: permissions,
    TokenPermissions: tokenPermissions,
    Witness: [
      { name: "to", type: "address" },
      { name: "validAfter", type: "uint256" },
    ],
  },
  upto: {
    PermitWitnessTransferFrom: permissions,
    TokenPermissions: tokenPermissions,
    Witness: [
      { name: "to", type: "address" },
      { name: "facilitator", type: "address" },
      { name: "validAfter", type: "uint256" },
    ],
  },
} as const;

/** An EIP-2612 permit for Permit2 that the proxy submits before the transfer. */
export interface SponsoredPermit {
  value: bigint;
  deadline: bigint;
  signature: SplitSignature;
}

/** A Permit2 payment that passed every rule that needs neither the chain nor the clock. */
export interface Permit2Payment {
  kind: Permit2Kind;
  proxy: Address;
  asset: Address;
  payTo: Address;
  owner: Address;
  /** The most the payer signed. */
  permitted: bigint;
  /** What moves: `exact` the permitted amount; `upto` the charge this request asks (at most `permitted`; 0 moves nothing). */
  charge: bigint;
  nonce: bigint;
  deadline: bigint;
  validAfter: bigint;
  /** `upto`: the facilitator account the payer allowed to settle. */
  facilitator?: Address;
  sponsoredPermit?: SponsoredPermit;
  /** The payer's signed approve(Permit2) (`erc20ApprovalGasSponsoring`), when it added one and no EIP-2612 permit. */
  sponsoredApproval?: SponsoredApproval;
  signature: Hex;
  digest: Hex;
  ecdsaValid: boolean;
}

/** True when a payment payload is Permit2's (the request is then settled through a Permit2 proxy). */
export function isPermit2Payload(payload: unknown): boolean {
  return typeof payload === "object" && payload !== null && "permit2Authorization" in payload;
}

/**
 * Shape, asset, binding and signature rules. `facilitators`: the accounts that may settle `upto` on
 * this network (the witness must name one: only it can call the proxy).
 */
export function checkPermit2Payment(request: PaymentRequest, kind: Permit2Kind, facilitators: readonly Address[]): RuleResult<Permit2Payment> {
  const { requirements: r, network } = request;
  const parsed = Permit2Payload.safeParse(request.payload);
  if (!parsed.success) return fail(reject(Reason.invalidPayload, `Permit2 payload ({signature, permit2Authorization}) expected: ${zodMessage(parsed.error)}`));
  const a = parsed.data.permit2Authorization;
  const tooLarge = [a.permitted.amount, a.nonce, a.deadline, a.witness.validAfter].some((v) => BigInt(v) > MAX_UINT256);
  if (tooLarge) return fail(reject(Reason.invalidPayload, "a Permit2 amount, nonce, deadline or validAfter does not fit in uint256"));
  const owner = getAddress(a.from);
  const method = r.extra.assetTransferMethod;
  if (method !== undefined && method !== PERMIT2_TRANSFER_METHOD) {
    return fail(reject(Reason.invalidRequirements, `a Permit2 payload answers requirements with extra.assetTransferMethod "permit2", not ${JSON.stringify(method)}`), owner);
  }
  const asset = checkedAsset(network, r.asset, r.payTo);
  if (!asset.ok) return { ...asset, payer: owner };
  const proxy = kind === "exact" ? EXACT_PERMIT2_PROXY : UPTO_PERMIT2_PROXY;
  const permitted = BigInt(a.permitted.amount);
  const charge = r.amount;
  const payTo = getAddress(r.payTo);
  const rules: [boolean, Rejection][] = [
    [getAddress(a.spender) !== proxy, reject(Reason.permit2InvalidSpender, `the Permit2 spender is ${a.spender}, not the x402 ${kind} proxy ${proxy}`)],
    [getAddress(a.witness.to) !== payTo, reject(Reason.permit2RecipientMismatch, `the witness pays ${a.witness.to}, the requirements pay ${payTo}`)],
    [getAddress(a.permitted.token) !== asset.value, reject(Reason.permit2TokenMismatch, `the permit is for token ${a.permitted.token}, the requirements ask ${asset.value}`)],
    [permitted <= 0n, reject(Reason.amountNotPositive, `the permitted amount is ${permitted}; a payment must allow a positive amount`)],
    [kind === "exact" && permitted !== charge, reject(Reason.permit2AmountMismatch, `the permit allows ${permitted}, the requirements ask exactly ${charge}`)],
    [kind === "upto" && charge > permitted, reject(Reason.uptoSettlementExceedsAmount, `the charge ${charge} is more than the ${permitted} the payer signed`)],
  ];
  const broken = rules.find(([failed]) => failed);
  if (broken) return fail(broken[1], owner);

  let facilitator: Address | undefined;
  if (kind === "upto") {
    facilitator = a.witness.facilitator ? getAddress(a.witness.facilitator) : undefined;
    if (!facilitator || !facilitators.includes(facilitator)) {
      return fail(reject(Reason.uptoFacilitatorMismatch, `the witness names facilitator ${a.witness.facilitator ?? "(none)"}, not one of this facilitator's accounts on ${network.name}`), owner);
    }
  }
  const sponsored = sponsoredPermit(request.extensions, owner, asset.value, permitted);
  if (!sponsored.ok) return { ...sponsored, payer: owner };
  // An EIP-2612 permit costs us nothing beyond the settlement: it wins when a client sends both.
  const approval = sponsored.value ? { ok: true as const, value: undefined } : sponsoredApproval(request.extensions, owner, asset.value, network.chainId!);
  if (!approval.ok) return { ...approval, payer: owner };

  const p = { owner, nonce: BigInt(a.nonce), deadline: BigInt(a.deadline), validAfter: BigInt(a.witness.validAfter) };
  const digest = permit2Digest(network.chainId!, kind, { token: asset.value, amount: permitted, spender: proxy, ...p, to: payTo, facilitator });
  const signature = parsed.data.signature as Hex;
  return {
    ok: true,
    value: {
      kind, proxy, asset: asset.value, payTo, permitted, charge, ...p,
      ...(facilitator ? { facilitator } : {}),
      ...(sponsored.value ? { sponsoredPermit: sponsored.value } : {}),
      ...(approval.value ? { sponsoredApproval: approval.value } : {}),
      signature, digest, ecdsaValid: recoverDigestSigner(digest, signature) === owner,
    },
  };
}

/**
 * The EIP-712 digest a payer signs for a Permit2 witness transfer, with the type hashes and each chain's
 * domain separator computed once (viem's hashTypedData re-derives them per call: most of a verify's CPU).
 * The table test holds it equal to hashTypedData over PERMIT2_WITNESS_TYPES.
 */
export function permit2Digest(
  chainId: number,
  kind: Permit2Kind,
  m: { token: Address; amount: bigint; spender: Address; nonce: bigint; deadline: bigint; to: Address; validAfter: bigint; facilitator?: Address },
): Hex {
  const permitted = keccak256(`${TOKEN_PERMISSIONS_TYPEHASH}${word(m.token)}${uint(m.amount)}` as Hex);
  const witness =
    kind === "exact"
      ? keccak256(`${WITNESS_TYPEHASH.exact}${word(m.to)}${uint(m.validAfter)}` as Hex)
      : keccak256(`${WITNESS_TYPEHASH.upto}${word(m.to)}${word(m.facilitator!)}${uint(m.validAfter)}` as Hex);
  const struct = keccak256(`${TRANSFER_TYPEHASH[kind]}${word(permitted)}${word(m.spender)}${uint(m.nonce)}${uint(m.deadline)}${word(witness)}`.toLowerCase() as Hex);
  return keccak256(`0x1901${word(permit2DomainSeparator(chainId))}${word(struct)}` as Hex);
}

const TOKEN_PERMISSIONS = "TokenPermissions(address token,uint256 amount)";
const WITNESS = { exact: "Witness(address to,uint256 validAfter)", upto: "Witness(address to,address facilitator,uint256 validAfter)" };
// EIP-712 encodeType: the primary type, then the types it references in alphabetical order.
const transferType = (kind: Permit2Kind) =>
  `PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)${TOKEN_PERMISSIONS}${WITNESS[kind]}`;
const TOKEN_PERMISSIONS_TYPEHASH = keccak256(toHex(TOKEN_PERMISSIONS));
const WITNESS_TYPEHASH = { exact: keccak256(toHex(WITNESS.exact)), upto: keccak256(toHex(WITNESS.upto)) };
const TRANSFER_TYPEHASH = { exact: keccak256(toHex(transferType("exact"))), upto: keccak256(toHex(transferType("upto"))) };
const domainSeparators = new Map<number, Hex>();

function permit2DomainSeparator(chainId: number): Hex {
  let hit = domainSeparators.get(chainId);
  if (!hit) {
    const types = { EIP712Domain: [{ name: "name", type: "string" }, { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" }] } as const;
    hit = hashDomain({ domain: { name: "Permit2", chainId: BigInt(chainId), verifyingContract: PERMIT2_ADDRESS }, types });
    domainSeparators.set(chainId, hit);
  }
  return hit;
}

const word = (hex: string) => hex.slice(2).padStart(64, "0");
const uint = (n: bigint) => n.toString(16).padStart(64, "0");

/** Only configured tokens: any other contract would run on our gas, with code of the caller's choosing. */
function checkedAsset(network: NetworkInfo, asset: string, payTo: string): RuleResult<Address> {
  if (!isAddress(asset, { strict: false }) || !isAddress(payTo, { strict: false })) {
    return fail(reject(Reason.invalidRequirements, "asset and payTo must be 20-byte hex addresses"));
  }
  if (!acceptedAsset(network, asset)) {
    return fail(reject(Reason.assetNotAllowed, `asset ${asset} is not accepted on ${network.name} (accepted: ${acceptedAssetAddresses(network).join(", ")})`));
  }
  return { ok: true, value: getAddress(asset) };
}

/**
 * The `eip2612GasSponsoring` permit, if the client added one: it must be the payer's, for this token,
 * name Permit2 as spender, and allow exactly the permitted amount (the proxies require it).
 */
function sponsoredPermit(extensions: Record<string, unknown> | undefined, owner: Address, asset: Address, permitted: bigint): RuleResult<SponsoredPermit | undefined> {
  const info = (extensions?.[EIP2612_GAS_SPONSORING] as { info?: unknown } | undefined)?.info;
  // The clients echo the route's declaration ({description, version}) when they add nothing.
  if (!carriesAny(info, ["from", "signature"])) return { ok: true, value: undefined };
  const parsed = Eip2612SponsoringInfo.safeParse(info);
  if (!parsed.success) return fail(reject(Reason.eip2612ExtensionFormat, `eip2612GasSponsoring.info: ${zodMessage(parsed.error)}`));
  const i = parsed.data;
  if ([i.amount, i.nonce, i.deadline].some((v) => BigInt(v) > MAX_UINT256)) {
    return fail(reject(Reason.eip2612ExtensionFormat, "the EIP-2612 permit's amount, nonce or deadline does not fit in uint256"));
  }
  const signature = splitSignature(i.signature as Hex);
  const rules: [boolean, Rejection][] = [
    [getAddress(i.from) !== owner, reject(Reason.eip2612FromMismatch, `the EIP-2612 permit is from ${i.from}, the payment from ${owner}`)],
    [getAddress(i.asset) !== asset, reject(Reason.eip2612AssetMismatch, `the EIP-2612 permit is for ${i.asset}, the payment in ${asset}`)],
    [getAddress(i.spender) !== PERMIT2_ADDRESS, reject(Reason.eip2612SpenderNotPermit2, `the EIP-2612 permit's spender is ${i.spender}, not Permit2 ${PERMIT2_ADDRESS}`)],
    [BigInt(i.amount) !== permitted, reject(Reason.permit2612AmountMismatch, `the EIP-2612 permit allows ${i.amount}, the Permit2 transfer ${permitted}`)],
    [!signature, reject(Reason.eip2612ExtensionFormat, "the EIP-2612 permit's signature is not a 65-byte r, s, v signature")],
  ];
  const broken = rules.find(([failed]) => failed);
  if (broken) return fail(broken[1]);
  return { ok: true, value: { value: BigInt(i.amount), deadline: BigInt(i.deadline), signature: signature! } };
}

/** True when an extension's info carries any of a client's fields (not just the route's declaration). */
export function carriesAny(info: unknown, fields: readonly string[]): boolean {
  return typeof info === "object" && info !== null && fields.some((f) => f in info);
}

/** The payment inside its validity window at `nowSeconds`, its deadlines at least `marginSeconds` ahead. */
export function checkPermit2Time(p: Permit2Payment, nowSeconds: bigint, marginSeconds: bigint): Rejection | undefined {
  if (p.deadline < nowSeconds + marginSeconds) {
    return reject(Reason.permit2DeadlineExpired, `the Permit2 signature expires at ${p.deadline}, less than ${marginSeconds} s after now (${nowSeconds})`);
  }
  if (p.validAfter > nowSeconds) return reject(Reason.permit2NotYetValid, `the payment is valid only after ${p.validAfter}; now is ${nowSeconds}`);
  if (p.sponsoredPermit && p.sponsoredPermit.deadline < nowSeconds + marginSeconds) {
    return reject(Reason.eip2612DeadlineExpired, `the EIP-2612 permit expires at ${p.sponsoredPermit.deadline}, less than ${marginSeconds} s after now (${nowSeconds})`);
  }
  return undefined;
}

/**
 * The settlement ledger key: Permit2's own replay key. Its nonces are per owner across every token,
 * spender and proxy (an unordered bitmap), so `exact` and `upto` share one key space.
 */
export function permit2LedgerKey(chainId: number, owner: string, nonce: bigint): string {
  return `evm:${chainId}:permit2:${owner.toLowerCase()}:${nonce}`;
}

/** Permit2's bitmap position of a nonce: word `nonce >> 8`, bit `nonce & 255`. */
export function permit2NonceBit(nonce: bigint): { word: bigint; bit: bigint } {
  return { word: nonce >> 8n, bit: nonce & 255n };
}

type Simulation = { ok: true; gas: bigint } | { ok: false; reason: string };

/** The chain state a Permit2 payment depends on (see permit2-reads.ts). */
export interface Permit2ChainState {
  assetHasCode: boolean;
  ownerHasCode: boolean;
  proxyHasCode: boolean;
  /** Undefined when the asset did not answer (the simulation then tells what is wrong). */
  balance?: bigint;
  /** The payer's allowance to Permit2. */
  allowance?: bigint;
  /** Permit2's nonce bitmap word holding this payment's nonce. */
  nonceWord?: bigint;
  /** The proxy call, sent by the settling account. */
  settle: Simulation;
}

/** What the chain says of a payment: a rejection, or the gas of the proxy call. */
export function planPermit2Settlement(p: Permit2Payment, s: Permit2ChainState): RuleResult<{ gas: bigint; approval?: SponsoredApproval }> {
  const { owner } = p;
  const used = s.nonceWord !== undefined && ((s.nonceWord >> permit2NonceBit(p.nonce).bit) & 1n) === 1n;
  const rules: [boolean, Rejection][] = [
    [!s.assetHasCode, reject(Reason.assetNotDeployed, `asset ${p.asset} has no code`)],
    [!s.proxyHasCode, reject(Reason.permit2ProxyNotDeployed, `the x402 ${p.kind} Permit2 proxy ${p.proxy} has no code on this chain`)],
    [!p.ecdsaValid && !s.ownerHasCode, reject(Reason.permit2InvalidSignature, `the Permit2 signature is not ${owner}'s, and ${owner} is not a contract wallet`)],
    [used, reject(Reason.permit2InvalidNonce, `Permit2 nonce ${p.nonce} of ${owner} is already used`)],
    [s.balance !== undefined && s.balance < p.charge, reject(Reason.permit2InsufficientBalance, `${owner} holds ${s.balance} of ${p.asset}, the payment needs ${p.charge}`)],
  ];
  const broken = rules.find(([failed]) => failed);
  if (broken) return fail(broken[1], owner);
  const allowanceShort = s.allowance !== undefined && s.allowance < p.charge;
  if (allowanceShort && !p.sponsoredPermit) {
    // The settlement can only be simulated once the payer's own approval is mined.
    if (p.sponsoredApproval) return { ok: true, value: { gas: UNSIMULATED_SETTLE_GAS, approval: p.sponsoredApproval } };
    return fail(reject(Reason.permit2AllowanceRequired, `${owner} allows Permit2 ${s.allowance} of ${p.asset}, the payment needs ${p.charge}: approve Permit2 or add a gas-sponsoring extension`), owner);
  }
  if (!s.settle.ok) return fail(reject(Reason.permit2SimulationFailed, `simulation of the proxy's settlement reverted: ${s.settle.reason}`), owner);
  return { ok: true, value: { gas: s.settle.gas } };
}

/**
 * Gas of a proxy settlement that cannot be simulated beforehand (its allowance comes from an approval
 * mined just before it). A Permit2 witness transfer through the proxy needs 80,000 to 110,000.
 */
export const UNSIMULATED_SETTLE_GAS = 160_000n;

function fail(rejection: Rejection, payer?: string): { ok: false; rejection: Rejection; payer?: string } {
  return payer ? { ok: false, rejection, payer } : { ok: false, rejection };
}
