// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice The owner view every kernel has (OpenZeppelin's Ownable).
interface IOwnedKernel {
    function owner() external view returns (address);
}

/// @title KernelDirectory
/// @notice Where clients find AI Kernel deployments on a chain from its RPC URL alone. It has no constructor
/// arguments and is deployed through the standard deterministic CREATE2 deployer (as Safe and Permit2 are), so its
/// address depends only on its code and is the same on every chain. A kernel's owner registers it (`aik deploy` and
/// `aik up` do, atomically with the deployment's last step); clients take the newest entry, or the one of a kernel
/// they name.
/// @dev Anyone may deploy a kernel and register it, so the newest entry is only a default: on a public chain a
/// client should pin the kernel it trusts (`--kernel`). Entries are never changed or removed.
contract KernelDirectory {
    /// @notice A registered deployment.
    /// @param kernel The DecentralizedInference contract (its `components()` name the rest).
    /// @param registrant The kernel's owner when it registered (the deployer; a timelock may own it since).
    /// @param defaultModel The model id clients use when none is given.
    /// @param deployBlock The block the kernel was deployed at (log scans start there).
    /// @param version The deployment's software version, e.g. "aik 0.1.0".
    struct Entry {
        address kernel;
        address registrant;
        uint64 defaultModel;
        uint64 deployBlock;
        string version;
    }

    Entry[] private _entries;

    /// @notice A deployment was registered as entry `index`.
    event DeploymentRegistered(
        uint256 indexed index, address indexed kernel, address indexed registrant, uint64 defaultModel, string version
    );

    /// @notice Only a kernel's owner registers it.
    error KernelDirectoryNotOwner(address kernel, address caller, address owner);
    /// @notice No deployment is registered, or no entry has that index.
    error KernelDirectoryNoEntry(uint256 index);

    /// @notice Registers `kernel`, owned by the caller, as the newest deployment.
    /// @return index The entry's index.
    function register(address kernel, uint64 defaultModel, uint64 deployBlock, string calldata version)
        external
        returns (uint256 index)
    {
        address owner = IOwnedKernel(kernel).owner();
        if (msg.sender != owner) revert KernelDirectoryNotOwner(kernel, msg.sender, owner);
        index = _entries.length;
        _entries.push(Entry(kernel, msg.sender, defaultModel, deployBlock, version));
        emit DeploymentRegistered(index, kernel, msg.sender, defaultModel, version);
    }

    /// @notice Entries registered so far.
    function count() external view returns (uint256) {
        return _entries.length;
    }

    /// @notice Entry `index`.
    function entry(uint256 index) external view returns (Entry memory) {
        if (index >= _entries.length) revert KernelDirectoryNoEntry(index);
        return _entries[index];
    }

    /// @notice The newest entry.
    function latest() external view returns (Entry memory) {
        uint256 length = _entries.length;
        if (length == 0) revert KernelDirectoryNoEntry(0);
        return _entries[length - 1];
    }

    /// @notice The newest entry of `kernel`.
    function latestOf(address kernel) external view returns (Entry memory) {
        for (uint256 i = _entries.length; i > 0; --i) {
            if (_entries[i - 1].kernel == kernel) return _entries[i - 1];
        }
        revert KernelDirectoryNoEntry(0);
    }
}
