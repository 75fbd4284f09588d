// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @notice A hostile smart wallet for tests: it accepts any signature while the gas price is zero (as
/// in a node's eth_call and eth_estimateGas without fee fields) and refuses it in a real transaction,
/// so a settlement passes every simulation and then reverts on chain, at the facilitator's cost.
contract FickleWallet is IERC1271 {
    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        return tx.gasprice == 0 ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }
}
