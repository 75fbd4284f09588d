/**
 * @facilitator/tee: trusting TEE keys only through a verified attestation.
 *
 *   verifyNitroAttestation(doc, {roots, approvedMeasurements, nonce, expectedKey, now})
 *       -> {ok: true, attestation} | {ok: false, reason, message}
 *   verifierFor(teeType) the attestation verifier of a TEE type (AWS Nitro today; the seam for Intel TDX)
 *   NonceBook            the registrar's fresh, single-use, expiring nonces
 *   verifyGatewaySignature / verifyHeartbeatSignature   the tee-gateway's RSA-PSS scheme
 *   parseSigningKey      a registrar's key input (PEM, hex, base64) -> scheme and registry bytes
 *   TestAuthority        a local stand-in for the AWS Nitro PKI (local world and tests)
 *   TEE_REGISTRY_ABI     contracts/TEERegistry.sol
 */
export { AWS_NITRO_ROOT_PEM, AWS_NITRO_ROOT_SHA256 } from "./nitro-root.ts";
export {
  verifyNitroAttestation,
  attestationBytes,
  MAX_DOCUMENT_BYTES,
  type MeasurementPolicy,
  type NitroVerifyOptions,
  type NitroVerdict,
  type NitroRefusalReason,
  type VerifiedNitroAttestation,
} from "./attestation.ts";
export {
  ATTESTATION_VERIFIERS,
  teeTypeName,
  teeTypeOfSlug,
  unsupportedTeeType,
  verifierFor,
  type AttestationVerdict,
  type AttestationVerifier,
  type AttestationVerifyOptions,
  type VerifiedAttestation,
} from "./verifiers.ts";
export { verifyCertificateChain, rootFingerprint, type TrustedRoot, type ChainVerdict, type ChainRefusal } from "./chain.ts";
export { parseCoseSign1, sigStructure, COSE_ALG_ES384, type CoseSign1 } from "./cose.ts";
export { parseNitroPayload, type NitroDocument } from "./nitro-document.ts";
export {
  checkKeyBinding,
  documentMeasurement,
  measurementOf,
  nitridingUserData,
  parseNitridingUserData,
  MEASURED_PCRS,
  NITRIDING_USER_DATA_LENGTH,
  type Measurement,
  type NitridingHashes,
} from "./binding.ts";
export {
  MemoryNonceStore,
  NonceBook,
  nonceVerdict,
  redeemable,
  NONCE_NOT_CHECKED,
  NONCE_BYTES,
  type NonceCheck,
  type NonceRecord,
  type NonceStore,
  type NonceVerdict,
  type NonceRefusal,
  type NonceBookOptions,
} from "./nonces.ts";
export {
  generateGatewayKey,
  heartbeatMessageHash,
  inferenceMessageHash,
  rsaPublicKey,
  signRsaPss,
  teeIdOf,
  verifyGatewaySignature,
  verifyHeartbeatSignature,
  verifyRsaPss,
  MAX_RSA_BITS,
  MIN_RSA_BITS,
  RSA_PSS_SALT_LENGTH,
  type GatewayHeartbeat,
  type GatewayInference,
  type GatewayKey,
  type SignatureVerdict,
} from "./signing.ts";
export { decodeBase64, encodeBase64 } from "./encoding.ts";
export {
  keySchemeName,
  keySchemeValue,
  parseSigningKey,
  secp256k1Address,
  SIGNING_KEY_SCHEMES,
  type SigningKey,
  type SigningKeyScheme,
  type SigningKeyVerdict,
} from "./keys.ts";
export { TestAuthority, testPcrs, type AttestOptions, type Pcrs } from "./test-authority.ts";
export {
  TEE_REGISTRY_ABI,
  TeeType,
  KeyScheme,
  MeasurementStatus,
  DEFAULT_ADMIN_ROLE,
  REGISTRAR_ROLE,
  HEARTBEAT_ROLE,
  ANY_HEARTBEAT_AGE,
} from "./registry-abi.ts";
