// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title TEERegistry
/// @notice Which enclave keys are trusted, since when, and on the strength of which attestation.
///
/// Roles: the admin (DEFAULT_ADMIN_ROLE) approves and revokes enclave measurements per TEE type and
/// revokes single TEEs; a registrar (REGISTRAR_ROLE) records a TEE after verifying its attestation
/// document off chain (COSE signature, certificate chain to the AWS Nitro root, PCRs, nonce, key
/// binding: packages/tee); a heartbeat relayer (HEARTBEAT_ROLE) relays the TEEs' signed heartbeats
/// so that TEEs need no gas.
///
/// The contract does not verify attestations or RSA signatures itself (there is no precompile for
/// either on the chains it runs on). Instead it keeps what lets anyone check them without us: the
/// attestation document's Walrus blob id and keccak256 hash, the signing key, and every heartbeat
/// signature in its `HeartbeatRelayed` event. An auditor fetches the document, compares its hash,
/// verifies it to the root it trusts, and re-verifies heartbeats from the logs.
///
/// A measurement is keccak256(PCR0 ‖ PCR1 ‖ PCR2) for AWS Nitro (as OpenGradient's registry computes
/// its pcrHash). Revoking a measurement deactivates every TEE that attested it at once, by status
/// lookup in `isActive` rather than by iterating over TEEs, and is final: a revoked measurement cannot
/// be approved again, so its history is one approval block and at most one revocation block.
///
/// Every change emits an event, and every TEE and measurement keeps the blocks of its approval,
/// registration and revocation, so "was this TEE registered, and its measurement approved and not
/// revoked, at block N" is answered from state or from logs alone.
contract TEERegistry is AccessControl {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant HEARTBEAT_ROLE = keccak256("HEARTBEAT_ROLE");

    /// @notice How far a heartbeat's signed timestamp may run ahead of the block (enclave and block clocks differ).
    uint256 public constant MAX_CLOCK_SKEW = 60;
    /// @notice Longest signing key accepted (an RSA-4096 DER SubjectPublicKeyInfo is 550 bytes).
    uint256 public constant MAX_KEY_BYTES = 1024;
    /// @notice Longest endpoint URL accepted.
    uint256 public constant MAX_ENDPOINT_BYTES = 256;

    /// @notice How a TEE signs: RSA-PSS-SHA256 over keccak digests (the tee-gateway; key = DER SPKI), or
    /// secp256k1 EIP-712 TeeAttestation v2 (SettlementRelay's; key = 65-byte uncompressed point).
    enum KeyScheme {
        RsaPssSha256,
        Secp256k1Eip712
    }

    enum MeasurementStatus {
        None,
        Approved,
        Revoked
    }

    struct Measurement {
        MeasurementStatus status;
        uint64 approvedBlock;
        uint64 revokedBlock;
    }

    struct Tee {
        bytes signingKey;
        KeyScheme scheme;
        uint8 teeType;
        /// @dev 0 when the TEE was never registered.
        uint64 registeredBlock;
        uint64 registeredAt;
        /// @dev The signed timestamp of the last relayed heartbeat (0 before the first one).
        uint64 lastHeartbeat;
        /// @dev 0 while the TEE itself is not revoked (its measurement may still be).
        uint64 revokedBlock;
        bytes32 measurement;
        bytes32 attestationHash;
        bytes attestationBlobId;
        /// @dev Where the TEE serves, and where it is paid: informational, not attested (see describeTee).
        string endpoint;
        address paymentAddress;
    }

    mapping(uint8 teeType => mapping(bytes32 measurement => Measurement)) private _measurements;
    mapping(bytes32 teeId => Tee) private _tees;
    /// @notice The TEE a signing key is registered under, by keccak256 of the key (zero when none).
    mapping(bytes32 keyHash => bytes32 teeId) public teeIdByKeyHash;

    event MeasurementApproved(uint8 indexed teeType, bytes32 indexed measurement, string label);
    event MeasurementRevoked(uint8 indexed teeType, bytes32 indexed measurement);
    event TeeRegistered(
        bytes32 indexed teeId,
        uint8 indexed teeType,
        bytes32 indexed measurement,
        KeyScheme scheme,
        bytes signingKey,
        bytes attestationBlobId,
        bytes32 attestationHash
    );
    event TeeRevoked(bytes32 indexed teeId);
    event TeeDescribed(bytes32 indexed teeId, string endpoint, address paymentAddress);
    /// @notice `signature` is the TEE's, verified by the relayer off chain; kept here for anyone to re-verify.
    event HeartbeatRelayed(bytes32 indexed teeId, uint256 timestamp, bytes signature);

    error ZeroAdmin();
    error ZeroTeeId();
    error ZeroMeasurement();
    error MissingAttestation();
    error InvalidSigningKey(KeyScheme scheme);
    error TeeAlreadyRegistered(bytes32 teeId);
    error KeyAlreadyRegistered(bytes32 existingTeeId);
    error MeasurementNotApproved(uint8 teeType, bytes32 measurement);
    error MeasurementAlreadyApproved(uint8 teeType, bytes32 measurement);
    error MeasurementIsRevoked(uint8 teeType, bytes32 measurement);
    error TeeNotRegistered(bytes32 teeId);
    error TeeIsRevoked(bytes32 teeId);
    error HeartbeatFromFuture(uint256 timestamp, uint256 blockTimestamp);
    error HeartbeatNotNewer(uint256 timestamp, uint256 lastHeartbeat);
    error EndpointTooLong(uint256 length);

    constructor(address admin, address[] memory registrars, address[] memory heartbeatRelayers) {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        for (uint256 i = 0; i < registrars.length; i++) {
            _grantRole(REGISTRAR_ROLE, registrars[i]);
        }
        for (uint256 i = 0; i < heartbeatRelayers.length; i++) {
            _grantRole(HEARTBEAT_ROLE, heartbeatRelayers[i]);
        }
    }

    // ---------------------------------------------------------------- measurements

    /// @param label Human-readable name of the image (e.g. a release tag); in the event only.
    function approveMeasurement(uint8 teeType, bytes32 measurement, string calldata label)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (measurement == bytes32(0)) revert ZeroMeasurement();
        Measurement storage m = _measurements[teeType][measurement];
        if (m.status == MeasurementStatus.Approved) revert MeasurementAlreadyApproved(teeType, measurement);
        if (m.status == MeasurementStatus.Revoked) revert MeasurementIsRevoked(teeType, measurement);
        m.status = MeasurementStatus.Approved;
        m.approvedBlock = uint64(block.number);
        emit MeasurementApproved(teeType, measurement, label);
    }

    /// @notice Deactivates every TEE of `teeType` that attested `measurement`, for good.
    function revokeMeasurement(uint8 teeType, bytes32 measurement) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Measurement storage m = _measurements[teeType][measurement];
        if (m.status != MeasurementStatus.Approved) revert MeasurementNotApproved(teeType, measurement);
        m.status = MeasurementStatus.Revoked;
        m.revokedBlock = uint64(block.number);
        emit MeasurementRevoked(teeType, measurement);
    }

    function measurementStatus(uint8 teeType, bytes32 measurement) external view returns (Measurement memory) {
        return _measurements[teeType][measurement];
    }

    // ---------------------------------------------------------------- TEEs

    /// @notice Records a TEE whose attestation document the registrar verified off chain.
    /// @param attestationBlobId UTF-8 bytes of the Walrus blob id holding the attestation document.
    /// @param attestationHash keccak256 of the attestation document's bytes.
    function register(
        bytes32 teeId,
        uint8 teeType,
        KeyScheme scheme,
        bytes calldata signingKey,
        bytes32 measurement,
        bytes calldata attestationBlobId,
        bytes32 attestationHash
    ) external onlyRole(REGISTRAR_ROLE) {
        if (teeId == bytes32(0)) revert ZeroTeeId();
        if (_tees[teeId].registeredBlock != 0) revert TeeAlreadyRegistered(teeId);
        if (!_validKey(scheme, signingKey)) revert InvalidSigningKey(scheme);
        bytes32 keyHash = keccak256(signingKey);
        bytes32 existing = teeIdByKeyHash[keyHash];
        if (existing != bytes32(0)) revert KeyAlreadyRegistered(existing);
        if (_measurements[teeType][measurement].status != MeasurementStatus.Approved) {
            revert MeasurementNotApproved(teeType, measurement);
        }
        if (attestationBlobId.length == 0 || attestationHash == bytes32(0)) revert MissingAttestation();

        teeIdByKeyHash[keyHash] = teeId;
        Tee storage t = _tees[teeId];
        t.signingKey = signingKey;
        t.scheme = scheme;
        t.teeType = teeType;
        t.registeredBlock = uint64(block.number);
        t.registeredAt = uint64(block.timestamp);
        t.measurement = measurement;
        t.attestationHash = attestationHash;
        t.attestationBlobId = attestationBlobId;
        emit TeeRegistered(teeId, teeType, measurement, scheme, signingKey, attestationBlobId, attestationHash);
    }

    /// @notice Records where a registered TEE serves and which address it is paid at. Neither is part
    /// of the attestation (the enclave does not sign them), so they are kept apart from `register`
    /// and may change when the operator moves the TEE behind another host.
    function describeTee(bytes32 teeId, string calldata endpoint, address paymentAddress) external onlyRole(REGISTRAR_ROLE) {
        if (bytes(endpoint).length > MAX_ENDPOINT_BYTES) revert EndpointTooLong(bytes(endpoint).length);
        Tee storage t = _registered(teeId);
        t.endpoint = endpoint;
        t.paymentAddress = paymentAddress;
        emit TeeDescribed(teeId, endpoint, paymentAddress);
    }

    /// @notice Deactivates one TEE for good (e.g. its key leaked); its key stays taken.
    function revokeTee(bytes32 teeId) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Tee storage t = _registered(teeId);
        t.revokedBlock = uint64(block.number);
        emit TeeRevoked(teeId);
    }

    /// @notice Relays a TEE's heartbeat. The relayer verified `signature` off chain (RSA-PSS-SHA256 over
    /// keccak256(teeId ‖ timestamp) for the gateway's keys); the event keeps it for anyone to re-verify.
    /// Each heartbeat counts once: its timestamp must be newer than the last one relayed.
    function heartbeat(bytes32 teeId, uint256 timestamp, bytes calldata signature) external onlyRole(HEARTBEAT_ROLE) {
        Tee storage t = _registered(teeId);
        Measurement storage m = _measurements[t.teeType][t.measurement];
        if (m.status != MeasurementStatus.Approved) revert MeasurementNotApproved(t.teeType, t.measurement);
        if (timestamp > block.timestamp + MAX_CLOCK_SKEW) revert HeartbeatFromFuture(timestamp, block.timestamp);
        if (timestamp <= t.lastHeartbeat) revert HeartbeatNotNewer(timestamp, t.lastHeartbeat);
        t.lastHeartbeat = uint64(timestamp);
        emit HeartbeatRelayed(teeId, timestamp, signature);
    }

    /// @notice Registered, not revoked, its measurement still approved, and alive within
    /// `maxHeartbeatAge` seconds (its last heartbeat, or its registration before any heartbeat).
    /// Pass type(uint256).max to leave liveness out.
    function isActive(bytes32 teeId, uint256 maxHeartbeatAge) external view returns (bool) {
        Tee storage t = _tees[teeId];
        if (t.registeredBlock == 0 || t.revokedBlock != 0) return false;
        if (_measurements[t.teeType][t.measurement].status != MeasurementStatus.Approved) return false;
        uint256 alive = t.lastHeartbeat > t.registeredAt ? t.lastHeartbeat : t.registeredAt;
        return block.timestamp <= alive || block.timestamp - alive <= maxHeartbeatAge;
    }

    /// @notice The TEE's record; `registeredBlock` is 0 when it was never registered.
    function getTee(bytes32 teeId) external view returns (Tee memory) {
        return _tees[teeId];
    }

    function _registered(bytes32 teeId) private view returns (Tee storage t) {
        t = _tees[teeId];
        if (t.registeredBlock == 0) revert TeeNotRegistered(teeId);
        if (t.revokedBlock != 0) revert TeeIsRevoked(teeId);
    }

    function _validKey(KeyScheme scheme, bytes calldata key) private pure returns (bool) {
        if (scheme == KeyScheme.Secp256k1Eip712) return key.length == 65 && key[0] == 0x04;
        return key.length > 0 && key.length <= MAX_KEY_BYTES;
    }
}
