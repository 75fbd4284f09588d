// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @notice An owner-minted ERC-20 with ERC-2612 permit whose EIP-712 domain version is chosen at deploy time.
/// OpenZeppelin's ERC20Permit hard-codes version "1"; real tokens use others (USDC: "2"), so this builds on
/// EIP712 + Nonces directly. Shared base of TestPermitToken and TestUSDC.
abstract contract PermitTokenBase is ERC20, IERC20Permit, EIP712, Nonces, Ownable {
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    uint8 private immutable _decimals;

    error ERC2612ExpiredSignature(uint256 deadline);
    error ERC2612InvalidSigner(address signer, address owner);

    constructor(string memory name_, string memory symbol_, string memory eip712Version_, uint8 decimals_)
        ERC20(name_, symbol_)
        EIP712(name_, eip712Version_)
        Ownable(msg.sender)
    {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice The EIP-712 domain version, as USDC's `version()` exposes it.
    function version() external view returns (string memory) {
        return _EIP712Version();
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        public
        virtual
    {
        if (block.timestamp > deadline) revert ERC2612ExpiredSignature(deadline);
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, _useNonce(owner), deadline));
        // ECDSA.recover rejects malleable (high-s) signatures and the zero address.
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), v, r, s);
        if (signer != owner) revert ERC2612InvalidSigner(signer, owner);
        _approve(owner, spender, value);
    }

    function nonces(address owner) public view virtual override(IERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view virtual returns (bytes32) {
        return _domainSeparatorV4();
    }
}

/// @notice USDm-like test token: ERC-2612 permit only, no EIP-3009 (MegaUSD: version "1", 18 decimals).
contract TestPermitToken is PermitTokenBase {
    constructor(string memory name_, string memory symbol_, string memory eip712Version_, uint8 decimals_)
        PermitTokenBase(name_, symbol_, eip712Version_, decimals_)
    {}
}
