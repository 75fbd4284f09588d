// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Erc1271Wallet} from "./Erc1271Wallet.sol";

/// @notice Counterfactual wallets for EIP-6492 tests: `deploy` makes an Erc1271Wallet at the CREATE2
/// address `addressOf` predicts, and returns the existing one when it is already there.
contract WalletFactory {
    event Deployed(address wallet, address owner);

    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        wallet = addressOf(owner, salt);
        if (wallet.code.length > 0) return wallet;
        new Erc1271Wallet{salt: salt}(owner);
        emit Deployed(wallet, owner);
    }

    function addressOf(address owner, bytes32 salt) public view returns (address) {
        bytes32 codeHash = keccak256(abi.encodePacked(type(Erc1271Wallet).creationCode, abi.encode(owner)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, codeHash)))));
    }
}
