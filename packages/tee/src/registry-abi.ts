/** The TEERegistry contract (contracts/TEERegistry.sol) as seen from TypeScript. */
import { keccak256, parseAbi, toBytes, type Hex } from "viem";

/** TEE types: the platform whose attestation a measurement is of. Intel TDX is the next one. */
export const TeeType = { AwsNitro: 1 } as const;
export type TeeType = (typeof TeeType)[keyof typeof TeeType];

/** The contract's `KeyScheme` enum, by value. */
export const KeyScheme = { RsaPssSha256: 0, Secp256k1Eip712: 1 } as const;
export type KeyScheme = (typeof KeyScheme)[keyof typeof KeyScheme];

/** The contract's `MeasurementStatus` enum, by value. */
export const MeasurementStatus = { None: 0, Approved: 1, Revoked: 2 } as const;

/** OpenZeppelin AccessControl's admin role: approves and revokes measurements, revokes TEEs, grants roles. */
export const DEFAULT_ADMIN_ROLE: Hex = `0x${"00".repeat(32)}`;
export const REGISTRAR_ROLE: Hex = keccak256(toBytes("REGISTRAR_ROLE"));
export const HEARTBEAT_ROLE: Hex = keccak256(toBytes("HEARTBEAT_ROLE"));

/** Pass as `maxHeartbeatAge` to `isActive` to leave liveness out. */
export const ANY_HEARTBEAT_AGE = 2n ** 256n - 1n;

export const TEE_REGISTRY_ABI = parseAbi([
  "struct Measurement { uint8 status; uint64 approvedBlock; uint64 revokedBlock; }",
  "struct Tee { bytes signingKey; uint8 scheme; uint8 teeType; uint64 registeredBlock; uint64 registeredAt; uint64 lastHeartbeat; uint64 revokedBlock; bytes32 measurement; bytes32 attestationHash; bytes attestationBlobId; string endpoint; address paymentAddress; }",
  "function REGISTRAR_ROLE() view returns (bytes32)",
  "function HEARTBEAT_ROLE() view returns (bytes32)",
  "function MAX_CLOCK_SKEW() view returns (uint256)",
  "function approveMeasurement(uint8 teeType, bytes32 measurement, string label)",
  "function revokeMeasurement(uint8 teeType, bytes32 measurement)",
  "function measurementStatus(uint8 teeType, bytes32 measurement) view returns (Measurement)",
  "function register(bytes32 teeId, uint8 teeType, uint8 scheme, bytes signingKey, bytes32 measurement, bytes attestationBlobId, bytes32 attestationHash)",
  "function revokeTee(bytes32 teeId)",
  "function describeTee(bytes32 teeId, string endpoint, address paymentAddress)",
  "function heartbeat(bytes32 teeId, uint256 timestamp, bytes signature)",
  "function isActive(bytes32 teeId, uint256 maxHeartbeatAge) view returns (bool)",
  "function getTee(bytes32 teeId) view returns (Tee)",
  "function teeIdByKeyHash(bytes32 keyHash) view returns (bytes32 teeId)",
  "function hasRole(bytes32 role, address account) view returns (bool)",
  "function grantRole(bytes32 role, address account)",
  "function revokeRole(bytes32 role, address account)",
  "function renounceRole(bytes32 role, address callerConfirmation)",
  "event MeasurementApproved(uint8 indexed teeType, bytes32 indexed measurement, string label)",
  "event MeasurementRevoked(uint8 indexed teeType, bytes32 indexed measurement)",
  "event TeeRegistered(bytes32 indexed teeId, uint8 indexed teeType, bytes32 indexed measurement, uint8 scheme, bytes signingKey, bytes attestationBlobId, bytes32 attestationHash)",
  "event TeeRevoked(bytes32 indexed teeId)",
  "event TeeDescribed(bytes32 indexed teeId, string endpoint, address paymentAddress)",
  "event HeartbeatRelayed(bytes32 indexed teeId, uint256 timestamp, bytes signature)",
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
  "error AccessControlBadConfirmation()",
  "error ZeroAdmin()",
  "error ZeroTeeId()",
  "error ZeroMeasurement()",
  "error MissingAttestation()",
  "error InvalidSigningKey(uint8 scheme)",
  "error TeeAlreadyRegistered(bytes32 teeId)",
  "error KeyAlreadyRegistered(bytes32 existingTeeId)",
  "error MeasurementNotApproved(uint8 teeType, bytes32 measurement)",
  "error MeasurementAlreadyApproved(uint8 teeType, bytes32 measurement)",
  "error MeasurementIsRevoked(uint8 teeType, bytes32 measurement)",
  "error TeeNotRegistered(bytes32 teeId)",
  "error TeeIsRevoked(bytes32 teeId)",
  "error HeartbeatFromFuture(uint256 timestamp, uint256 blockTimestamp)",
  "error HeartbeatNotNewer(uint256 timestamp, uint256 lastHeartbeat)",
  "error EndpointTooLong(uint256 length)",
]);
