/**
 * The TEE attestation check: the leaf's signature must come from the key registered for its teeId,
 * over the attestation its dump's layout names (v2: every leaf field, settlement type and metadata hash
 * included; v1: teeId, hashes and timestamp; gateway: RSA-PSS over keccak256(inputHash ‖ outputHash ‖
 * timestamp)). The key is the one the TEE registry attested, when the auditor reads a registry and
 * the TEE is in it, else the one the auditor was configured with (--tee-key, secp256k1 only).
 */
import { verifyGatewaySignature } from "@facilitator/tee";
import { hexToBytes, isAddressEqual, recoverTypedDataAddress, type Address } from "viem";
import {
  ZERO_BYTES32,
  teeAttestationDomain,
  teeAttestationDomainV1,
  teeAttestationTypes,
  teeAttestationTypesV1,
  type InferenceLeaf,
  type TeeKeys,
} from "./formats.ts";

/** A key the registry attested for a TEE: a secp256k1 address (EIP-712) or an RSA DER SPKI (RSA-PSS). */
export type AttestedKey = { scheme: "secp256k1-eip712"; address: Address } | { scheme: "rsa-pss-sha256"; publicKey: Uint8Array };

export type TeeVerdict =
  | { status: "valid"; signer: string; attested: boolean }
  | { status: "absent" }
  | { status: "unknown-tee" }
  | { status: "wrong-signer"; signer: Address; registered: Address }
  | { status: "wrong-key"; error: string }
  | { status: "malformed"; error: string };

/**
 * No I/O: the keys are the caller's (its configuration, or the registry entry it read and checked),
 * never the facilitator's word. An attested key, when given, is the only one a signature may be under.
 */
export async function checkTeeSignature(leaf: InferenceLeaf, teeKeys: TeeKeys, attested?: AttestedKey): Promise<TeeVerdict> {
  const hasSignature = leaf.teeSignature !== "0x";
  if (leaf.teeId === ZERO_BYTES32 && !hasSignature) return { status: "absent" };
  if (!hasSignature) return { status: "malformed", error: "the leaf names a TEE but carries no signature" };
  if (leaf.version === "gateway") return gatewayVerdict(leaf, attested);
  if (attested?.scheme === "rsa-pss-sha256") return { status: "wrong-key", error: `TEE ${leaf.teeId} is registered with an RSA-PSS key, but the leaf holds an EIP-712 attestation` };
  const shape = signatureShape(leaf.teeSignature, leaf.version);
  if (shape) return { status: "malformed", error: shape };
  const registered = attested?.address ?? registeredKey(teeKeys, leaf.teeId);
  if (!registered) return { status: "unknown-tee" };
  let signer: Address;
  try {
    const base = { teeId: leaf.teeId, inputHash: leaf.inputHash, outputHash: leaf.outputHash, timestamp: leaf.timestamp };
    signer =
      leaf.version === 2
        ? await recoverTypedDataAddress({
            domain: teeAttestationDomain,
            types: teeAttestationTypes,
            primaryType: "TeeAttestation",
            message: { ...base, settlementType: leaf.settlementType ?? "", metadataHash: leaf.metadataHash ?? ZERO_BYTES32 },
            signature: leaf.teeSignature,
          })
        : await recoverTypedDataAddress({
            domain: teeAttestationDomainV1,
            types: teeAttestationTypesV1,
            primaryType: "TeeAttestation",
            message: base,
            signature: leaf.teeSignature,
          });
  } catch (e) {
    return { status: "malformed", error: `signature cannot be recovered (${(e as Error).message.split("\n")[0]})` };
  }
  return isAddressEqual(signer, registered) ? { status: "valid", signer, attested: attested !== undefined } : { status: "wrong-signer", signer, registered };
}

/** A gateway leaf: RSA-PSS under the registry's key (TEE_KEYS cannot hold RSA keys). */
function gatewayVerdict(leaf: InferenceLeaf, attested: AttestedKey | undefined): TeeVerdict {
  if (!attested) return { status: "unknown-tee" };
  if (attested.scheme !== "rsa-pss-sha256") return { status: "wrong-key", error: `TEE ${leaf.teeId} is registered with a secp256k1 key, but the leaf holds an RSA-PSS signature` };
  const verdict = verifyGatewaySignature({ publicKey: attested.publicKey, inputHash: leaf.inputHash, outputHash: leaf.outputHash, timestamp: leaf.timestamp, signature: hexToBytes(leaf.teeSignature) });
  return verdict.ok
    ? { status: "valid", signer: `the RSA key registered for TEE ${leaf.teeId}`, attested: true }
    : { status: "wrong-key", error: `the RSA-PSS signature is not under the key registered for TEE ${leaf.teeId} over keccak256(inputHash ‖ outputHash ‖ timestamp): ${verdict.message}` };
}

// Half the secp256k1 group order: a larger s is the malleable twin of a valid signature.
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/**
 * What makes a signature unacceptable before recovery, as OpenZeppelin's ECDSA (and the relay) judges
 * it. v 0/1 is refused in v2 leaves only: the facilitator stores v 27/28 since v2, and v1 dumps that
 * hold the 0/1 spelling were read before and still are.
 */
function signatureShape(signature: `0x${string}`, version: 1 | 2): string | undefined {
  if (signature.length !== 132) return `the signature is ${(signature.length - 2) / 2} bytes, not 65`;
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  if (s === 0n || s > HALF_N) return "the signature has a high s value (a malleable copy), refused as OpenZeppelin's ECDSA refuses it";
  const v = parseInt(signature.slice(130), 16);
  if (version === 2 && v !== 27 && v !== 28) return `the signature has v = ${v}, not 27 or 28 (refused as the relay's verifyTeeSignature refuses it)`;
  return undefined;
}

export function registeredKey(teeKeys: TeeKeys, teeId: string): Address | undefined {
  const wanted = teeId.toLowerCase();
  for (const [id, address] of Object.entries(teeKeys)) if (id.toLowerCase() === wanted) return address;
  return undefined;
}

export function describeTeeVerdict(verdict: TeeVerdict, teeId: string): string {
  switch (verdict.status) {
    case "valid":
      return verdict.signer.startsWith("the RSA key")
        ? `signed (RSA-PSS) by ${verdict.signer}, as the registry attested it`
        : `signed by ${verdict.signer}, the key ${verdict.attested ? "the TEE registry attested" : "registered"} for TEE ${teeId}`;
    case "absent":
      return "the leaf carries no TEE signature (teeId zero)";
    case "unknown-tee":
      return `TEE ${teeId} is not in the configured registry (pass --tee-key ${teeId}=0x..., or --tee-registry 0x... for attested TEEs)`;
    case "wrong-key":
      return verdict.error;
    case "wrong-signer":
      return `signed by ${verdict.signer}, but TEE ${teeId} is registered to ${verdict.registered}`;
    case "malformed":
      return verdict.error;
  }
}
