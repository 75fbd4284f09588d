/**
 * The TEE attestation check: the leaf's signature must come from the key registered for its teeId,
 * over the attestation version its dump names (v2: every leaf field, settlement type and metadata hash
 * included; v1: teeId, hashes and timestamp).
 */
import { isAddressEqual, recoverTypedDataAddress, type Address } from "viem";
import {
  ZERO_BYTES32,
  teeAttestationDomain,
  teeAttestationDomainV1,
  teeAttestationTypes,
  teeAttestationTypesV1,
  type InferenceLeaf,
  type TeeKeys,
} from "./formats.ts";

export type TeeVerdict =
  | { status: "valid"; signer: Address }
  | { status: "absent" }
  | { status: "unknown-tee" }
  | { status: "wrong-signer"; signer: Address; registered: Address }
  | { status: "malformed"; error: string };

/** No I/O: the registry is the caller's configuration, never the facilitator's word. */
export async function checkTeeSignature(leaf: InferenceLeaf, teeKeys: TeeKeys): Promise<TeeVerdict> {
  const hasSignature = leaf.teeSignature !== "0x";
  if (leaf.teeId === ZERO_BYTES32 && !hasSignature) return { status: "absent" };
  if (!hasSignature) return { status: "malformed", error: "the leaf names a TEE but carries no signature" };
  const shape = signatureShape(leaf.teeSignature, leaf.version);
  if (shape) return { status: "malformed", error: shape };
  const registered = registeredKey(teeKeys, leaf.teeId);
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
  return isAddressEqual(signer, registered) ? { status: "valid", signer } : { status: "wrong-signer", signer, registered };
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
      return `signed by ${verdict.signer}, the key registered for TEE ${teeId}`;
    case "absent":
      return "the leaf carries no TEE signature (teeId zero)";
    case "unknown-tee":
      return `TEE ${teeId} is not in the configured registry (pass --tee-key ${teeId}=0x...)`;
    case "wrong-signer":
      return `signed by ${verdict.signer}, but TEE ${teeId} is registered to ${verdict.registered}`;
    case "malformed":
      return verdict.error;
  }
}
