// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title SettlementRelay
/// @notice Anchors TEE inference records on-chain. Only accounts holding RELAYER_ROLE can emit, so an
/// auditor can trust every event that comes from this address. The admin (DEFAULT_ADMIN_ROLE) grants
/// and revokes relayers.
///
/// Batches: the relayer anchors the root of an OpenZeppelin StandardMerkleTree whose leaves use
/// leaf encoding v2 (see packages/inference/README.md, LEAF-ENCODING):
///   leaf = keccak256(bytes.concat(keccak256(abi.encode(teeId, inputHash, outputHash, timestamp,
///                                                      settlementType, metadataHash, teeSignature))))
/// with sorted-pair hashing, so proofs from `StandardMerkleTree.getProof` verify with `verifyInference`.
/// A leaf holds every field the TEE signed, so a proof covers exactly what the TEE attested.
/// A root can be anchored once; `anchoredAt(root)` is the block it was anchored in (0 when never).
///
/// TEE attestations (version 2) are EIP-712 typed data
///   TeeAttestation(bytes32 teeId,bytes32 inputHash,bytes32 outputHash,uint256 timestamp,string settlementType,bytes32 metadataHash)
/// under the domain {name: "TEE Inference", version: "2"}: no chainId and no verifyingContract, so one
/// signature made by the TEE is valid wherever it is anchored. `metadataHash` is
/// `inferenceMetadataHash(modelInfo, inputData, outputData)` for `settle-metadata` and zero otherwise.
contract SettlementRelay is AccessControl {
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER_ROLE");

    bytes32 public constant TEE_ATTESTATION_TYPEHASH =
        keccak256(
            "TeeAttestation(bytes32 teeId,bytes32 inputHash,bytes32 outputHash,uint256 timestamp,string settlementType,bytes32 metadataHash)"
        );

    /// @notice EIP-712 domain separator of TEE attestations: {name: "TEE Inference", version: "2"}.
    bytes32 public constant TEE_DOMAIN_SEPARATOR = keccak256(
        abi.encode(keccak256("EIP712Domain(string name,string version)"), keccak256("TEE Inference"), keccak256("2"))
    );

    /// @notice Block number in which each Merkle root was anchored; 0 when it never was.
    mapping(bytes32 merkleRoot => uint256 blockNumber) public anchoredAt;

    event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash);
    event SettlementWithMetadata(
        bytes32 indexed inputHash, bytes32 indexed outputHash, string modelInfo, string inputData, string outputData
    );
    event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId);

    error RootAlreadyAnchored(bytes32 merkleRoot, uint256 blockNumber);
    error EmptyBatch();
    error ZeroRoot();
    error ZeroAdmin();

    constructor(address admin, address[] memory relayers) {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        for (uint256 i = 0; i < relayers.length; i++) {
            _grantRole(RELAYER_ROLE, relayers[i]);
        }
    }

    function settle(bytes32 inputHash, bytes32 outputHash) external onlyRole(RELAYER_ROLE) {
        emit Settlement(inputHash, outputHash);
    }

    function settleWithMetadata(
        bytes32 inputHash,
        bytes32 outputHash,
        string calldata modelInfo,
        string calldata inputData,
        string calldata outputData
    ) external onlyRole(RELAYER_ROLE) {
        emit SettlementWithMetadata(inputHash, outputHash, modelInfo, inputData, outputData);
    }

    /// @param walrusBlobId UTF-8 bytes of the Walrus blob id (base64url text) holding the tree dump.
    function settleBatch(bytes32 merkleRoot, uint256 batchSize, bytes calldata walrusBlobId)
        external
        onlyRole(RELAYER_ROLE)
    {
        if (merkleRoot == bytes32(0)) revert ZeroRoot();
        if (batchSize == 0) revert EmptyBatch();
        uint256 previous = anchoredAt[merkleRoot];
        if (previous != 0) revert RootAlreadyAnchored(merkleRoot, previous);
        anchoredAt[merkleRoot] = block.number;
        emit BatchSettlement(merkleRoot, batchSize, walrusBlobId);
    }

    /// @notice One inference record as a batch leaf holds it (leaf encoding v2). Absent TEE fields are
    /// zero (teeId, timestamp) or empty (teeSignature); `metadataHash` is zero for every type but
    /// `settle-metadata`.
    struct Inference {
        bytes32 teeId;
        bytes32 inputHash;
        bytes32 outputHash;
        uint256 timestamp;
        string settlementType;
        bytes32 metadataHash;
        bytes teeSignature;
    }

    /// @notice The leaf hash of an inference record under leaf encoding v2.
    function inferenceLeaf(Inference calldata r) public pure returns (bytes32) {
        bytes memory encoded =
            abi.encode(r.teeId, r.inputHash, r.outputHash, r.timestamp, r.settlementType, r.metadataHash, r.teeSignature);
        return keccak256(bytes.concat(keccak256(encoded)));
    }

    /// @notice True when `root` was anchored here and `proof` shows the record is a leaf of it.
    function verifyInference(bytes32 root, bytes32[] calldata proof, Inference calldata record)
        external
        view
        returns (bool)
    {
        if (anchoredAt[root] == 0) return false;
        return MerkleProof.verifyCalldata(proof, root, inferenceLeaf(record));
    }

    /// @notice The metadata hash a TEE signs for a `settle-metadata` record (other types sign zero).
    function inferenceMetadataHash(string calldata modelInfo, string calldata inputData, string calldata outputData)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(modelInfo, inputData, outputData));
    }

    /// @notice The EIP-712 digest a TEE signs for one inference (attestation version 2).
    function teeAttestationDigest(
        bytes32 teeId,
        bytes32 inputHash,
        bytes32 outputHash,
        uint256 timestamp,
        string calldata settlementType,
        bytes32 metadataHash
    ) public pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                TEE_ATTESTATION_TYPEHASH,
                teeId,
                inputHash,
                outputHash,
                timestamp,
                keccak256(bytes(settlementType)),
                metadataHash
            )
        );
        return MessageHashUtils.toTypedDataHash(TEE_DOMAIN_SEPARATOR, structHash);
    }

    /// @notice True when the record's `teeSignature` is `signer`'s secp256k1 signature of its attestation
    /// (malleable or malformed signatures, and v other than 27/28, are false, never a revert).
    function verifyTeeSignature(address signer, Inference calldata record) external pure returns (bool) {
        bytes32 digest = teeAttestationDigest(
            record.teeId, record.inputHash, record.outputHash, record.timestamp, record.settlementType, record.metadataHash
        );
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, record.teeSignature);
        return err == ECDSA.RecoverError.NoError && recovered == signer && signer != address(0);
    }
}
