// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title EAI
/// @notice The AI Kernel token: workers stake it, and miners earn it as block rewards.
/// @dev An initial allocation is minted at deployment. Afterwards only the minter (the kernel, set once by the
/// owner while wiring the deployment) mints, and never beyond {cap}.
contract EAI is ERC20, ERC20Permit, Ownable {
    /// @notice Upper bound of the total supply, initial allocation included.
    uint256 public immutable cap;

    address private _minter;

    /// @notice The minter was set (once).
    event MinterSet(address indexed minter);

    /// @notice The caller is not the minter.
    error EAIUnauthorizedMinter(address caller);
    /// @notice The minter is already set.
    error EAIMinterAlreadySet(address minter);
    /// @notice The zero address was given as the minter.
    error EAIZeroMinter();
    /// @notice Minting would take the supply above the cap.
    error EAICapExceeded(uint256 supplyAfter, uint256 cap);

    /// @param initialOwner Sets the minter, once.
    /// @param initialHolder Receives the initial allocation.
    /// @param initialSupply The initial allocation.
    /// @param supplyCap The cap on total supply.
    constructor(address initialOwner, address initialHolder, uint256 initialSupply, uint256 supplyCap)
        ERC20("EAI", "EAI")
        ERC20Permit("EAI")
        Ownable(initialOwner)
    {
        if (initialSupply > supplyCap) revert EAICapExceeded(initialSupply, supplyCap);
        cap = supplyCap;
        _mint(initialHolder, initialSupply);
    }

    /// @notice The account allowed to mint block rewards (zero until set).
    function minter() external view returns (address) {
        return _minter;
    }

    /// @notice Sets the minter. Callable once, by the owner.
    function setMinter(address minter_) external onlyOwner {
        if (_minter != address(0)) revert EAIMinterAlreadySet(_minter);
        if (minter_ == address(0)) revert EAIZeroMinter();
        _minter = minter_;
        emit MinterSet(minter_);
    }

    /// @notice Mints `amount` to `to`. Only the minter; reverts above the cap.
    function mint(address to, uint256 amount) external {
        if (msg.sender != _minter) revert EAIUnauthorizedMinter(msg.sender);
        uint256 supplyAfter = totalSupply() + amount;
        if (supplyAfter > cap) revert EAICapExceeded(supplyAfter, cap);
        _mint(to, amount);
    }
}
