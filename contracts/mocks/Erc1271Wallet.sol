// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice Minimal smart-contract wallet for tests: it holds tokens and accepts as its own signature any
/// ECDSA signature by `owner` over the raw hash (no extra prefix or wrapping).
contract Erc1271Wallet is IERC1271 {
    address public immutable owner;

    error NotOwner();
    error CallFailed(bytes returndata);

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }

    /// @notice Lets the owner move what the wallet holds (e.g. `approve` or `transfer` a token).
    function execute(address target, uint256 value, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner();
        (bool ok, bytes memory returndata) = target.call{value: value}(data);
        if (!ok) revert CallFailed(returndata);
        return returndata;
    }

    receive() external payable {}
}
