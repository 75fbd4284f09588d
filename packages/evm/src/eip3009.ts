/** EIP-3009 `transferWithAuthorization` payments: typed data and the rules that need no chain. Pure. */
import { acceptedAsset, acceptedAssetAddresses, Eip3009Payload, Reason, reject, zodMessage, type NetworkInfo, type Rejection, type Requirements, type RuleResult } from "@facilitator/core";
import { getAddress, hashDomain, isAddress, keccak256, toHex, type Address, type Hex, type TypedDataDefinition } from "viem";
import { recoverDigestSigner } from "./signature.ts";

export const TRANSFER_WITH_AUTHORIZATION_TYPES = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

export interface TokenDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

export interface Eip3009Authorization {
  from: Address;
  to: Address;
  value: bigint;
  validAfter: bigint;
  validBefore: bigint;
  nonce: Hex;
}

/** EIP-712 typed data a payer signs to authorise one transfer. */
export function eip3009TypedData(
  domain: TokenDomain,
  authorization: Eip3009Authorization,
): TypedDataDefinition<typeof TRANSFER_WITH_AUTHORIZATION_TYPES, "TransferWithAuthorization"> {
  return { domain, types: TRANSFER_WITH_AUTHORIZATION_TYPES, primaryType: "TransferWithAuthorization", message: authorization };
}

const MAX_UINT256 = 2n ** 256n - 1n;

/** A payment that passed every rule that needs neither the chain nor the clock. */
export interface Eip3009Payment {
  asset: Address;
  payTo: Address;
  domain: TokenDomain;
  authorization: Eip3009Authorization;
  signature: Hex;
  /** The EIP-712 digest the payer signed. */
  digest: Hex;
  /** True when the signature is a valid ECDSA signature by `from`; otherwise only ERC-1271 can save it. */
  ecdsaValid: boolean;
}

/**
 * Shape, domain and binding rules, in the spec's order: everything a retry of the same payment must
 * still pass whatever the time. `network` supplies the chain id and the configured token domain.
 */
export function checkEip3009Payment(
  payload: unknown,
  requirements: Requirements,
  network: NetworkInfo,
): RuleResult<Eip3009Payment> {
  const parsed = Eip3009Payload.safeParse(payload);
  if (!parsed.success) return fail(reject(Reason.invalidPayload, `EIP-3009 payload: ${zodMessage(parsed.error)}`));
  const { signature, authorization: a } = parsed.data;
  const tooLarge = (["value", "validAfter", "validBefore"] as const).find((f) => BigInt(a[f]) > MAX_UINT256);
  if (tooLarge) return fail(reject(Reason.invalidPayload, `EIP-3009 payload: authorization.${tooLarge} does not fit in uint256`));
  const payer = getAddress(a.from);

  const domain = tokenDomain(requirements, network);
  if (!domain.ok) return { ...domain, payer };
  const payTo = getAddress(requirements.payTo);

  if (getAddress(a.to) !== payTo) {
    return fail(reject(Reason.recipientMismatch, `authorization pays ${a.to}, the requirements pay ${payTo}`), payer);
  }
  const value = BigInt(a.value);
  if (value !== requirements.amount) {
    return fail(reject(Reason.valueMismatch, `authorization value ${value} differs from the required amount ${requirements.amount}`), payer);
  }
  const authorization: Eip3009Authorization = {
    from: payer,
    to: payTo,
    value,
    validAfter: BigInt(a.validAfter),
    validBefore: BigInt(a.validBefore),
    nonce: a.nonce.toLowerCase() as Hex,
  };
  const digest = eip3009Digest(domain.value, authorization);
  const signer = recoverDigestSigner(digest, signature as Hex);
  return {
    ok: true,
    value: { asset: domain.value.verifyingContract, payTo, domain: domain.value, authorization, signature: signature as Hex, digest, ecdsaValid: signer === payer },
  };
}

/**
 * The token's EIP-712 domain from `extra` {name, version}, for an asset the network accepts and whose
 * configured domain it matches, and a positive amount (a zero transfer moves nothing but our gas).
 */
export function tokenDomain(requirements: Requirements, network: NetworkInfo): RuleResult<TokenDomain> {
  const { name, version } = requirements.extra;
  if (typeof name !== "string" || !name || typeof version !== "string" || !version) {
    return fail(reject(Reason.invalidRequirements, "extra.name and extra.version (the token's EIP-712 domain) are required"));
  }
  if (!isAddress(requirements.asset, { strict: false }) || !isAddress(requirements.payTo, { strict: false })) {
    return fail(reject(Reason.invalidRequirements, "asset and payTo must be 20-byte hex addresses"));
  }
  if (network.chainId === undefined) return fail(reject(Reason.invalidNetwork, `network ${network.name} has no chain id`));
  const asset = getAddress(requirements.asset);
  // Only configured tokens: any other contract would run on our gas, and its code is the caller's choice.
  const known = acceptedAsset(network, asset);
  if (!known) {
    return fail(reject(Reason.assetNotAllowed, `asset ${asset} is not accepted on ${network.name} (accepted: ${acceptedAssetAddresses(network).join(", ")})`));
  }
  if (known.name && name !== known.name) {
    return fail(reject(Reason.tokenNameMismatch, `extra.name "${name}" is not the EIP-712 name "${known.name}" of ${asset}`));
  }
  if (known.version && version !== known.version) {
    return fail(reject(Reason.tokenVersionMismatch, `extra.version "${version}" is not the EIP-712 version "${known.version}" of ${asset}`));
  }
  if (requirements.amount <= 0n) {
    return fail(reject(Reason.amountNotPositive, `the required amount is ${requirements.amount}; a payment must move a positive amount`));
  }
  return { ok: true, value: { name, version, chainId: network.chainId, verifyingContract: asset } };
}

/** Seconds of validity an authorization must have left, so it cannot expire while the settlement mines. */
export const VALID_BEFORE_MARGIN_SECONDS = 6n;

/** The validity window at `nowSeconds`: valid already, and not expiring within the margin. */
export function checkEip3009Window(
  authorization: Eip3009Authorization,
  nowSeconds: bigint,
  marginSeconds = VALID_BEFORE_MARGIN_SECONDS,
): Rejection | undefined {
  if (authorization.validBefore < nowSeconds + marginSeconds) {
    return reject(Reason.validBefore, `authorization expires at ${authorization.validBefore}, less than ${marginSeconds} s after now (${nowSeconds})`);
  }
  if (authorization.validAfter > nowSeconds) {
    return reject(Reason.validAfter, `authorization is valid only after ${authorization.validAfter}; now is ${nowSeconds}`);
  }
  return undefined;
}

function fail(rejection: Rejection, payer?: string): { ok: false; rejection: Rejection; payer?: string } {
  return payer ? { ok: false, rejection, payer } : { ok: false, rejection };
}

/** The EIP-712 digest of an authorization, with the type hash and each token's domain separator computed once (viem's hashTypedData re-derives both on every call: most of a verify's CPU). */
const TYPE_HASH = keccak256(toHex("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"));
const EIP712_DOMAIN_TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ],
} as const;
const domainSeparators = new Map<string, Hex>();

function domainSeparator(d: TokenDomain): Hex {
  const key = `${d.chainId}:${d.verifyingContract}:${d.name}:${d.version}`;
  let hit = domainSeparators.get(key);
  if (!hit) {
    if (domainSeparators.size >= 1_000) domainSeparators.clear();
    hit = hashDomain({ domain: { ...d, chainId: BigInt(d.chainId) }, types: EIP712_DOMAIN_TYPES });
    domainSeparators.set(key, hit);
  }
  return hit;
}

const word = (hex: string) => hex.slice(2).padStart(64, "0");
const uint = (n: bigint) => n.toString(16).padStart(64, "0");

export function eip3009Digest(d: TokenDomain, a: Eip3009Authorization): Hex {
  const struct = keccak256(`${TYPE_HASH}${word(a.from)}${word(a.to)}${uint(a.value)}${uint(a.validAfter)}${uint(a.validBefore)}${word(a.nonce)}`.toLowerCase() as Hex);
  return keccak256(`0x1901${word(domainSeparator(d))}${word(struct)}` as Hex);
}
