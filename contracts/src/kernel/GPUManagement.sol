// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {
    IGPUManagement, IModelFileSystem, ModelTerms, WorkerStatus
} from "../interfaces/IKernelComponents.sol";

/// @notice What a worker declares about its machine.
/// @param gpuModel E.g. "NVIDIA H100" or "cpu-x86_64".
/// @param memoryMb Memory available to models, in MiB; must meet each served model's minimum.
/// @param engine Engine and driver id, e.g. "aik-infer/llama-gguf/1".
struct Hardware {
    string gpuModel;
    uint64 memoryMb;
    string engine;
}

/// @notice A worker's state, packed in one slot.
/// @param stake Staked EAI.
/// @param until End of the jail or of the unbonding period (seconds), zero when Active.
/// @param status Life stage.
/// @param capacity Prompts it runs at once.
/// @param busy Prompts it is assigned now.
/// @param modelCount Models it serves (kept here so that a free-set update reads no array length).
struct WorkerState {
    uint128 stake;
    uint64 until;
    WorkerStatus status;
    uint16 capacity;
    uint16 busy;
    uint8 modelCount;
}

/// @notice A set of free workers with O(1) insert and remove.
/// @dev Members are `slots[0..length)`; `positionsPlusOne[worker]` is a worker's index plus one (zero: never
/// inserted). Removal moves the last member into the hole and shrinks `length` without zeroing the vacated slot
/// or the removed worker's position: stale values stay, so that the next insert rewrites a non-zero slot (2,900
/// gas) instead of a zero one (20,000). For the same reason positions are stored plus one (position 0 would be a
/// zero slot) and `touched` keeps the slot holding `length` non-zero when the set empties, which it does
/// whenever every worker of a model is busy. Membership therefore checks both:
/// 0 < positionsPlusOne[w] <= length && slots[positionsPlusOne[w] - 1] == w.
struct FreeSet {
    uint64 length;
    bool touched;
    mapping(uint256 position => address) slots;
    mapping(address worker => uint256) positionsPlusOne;
}

/// @title GPUManagement
/// @notice The registry of staked worker nodes: stake, hardware, models served, capacity and status, plus
/// per-model sets of free workers from which the scheduler draws committees in O(k).
/// @dev Invariant: a worker is in the free set of each model it serves iff it is Active and busy < capacity.
/// Sets are position-indexed slots with a position map (see {FreeSet}); removal swaps with the last member,
/// so insert and remove are O(1).
contract GPUManagement is IGPUManagement, Ownable {
    using SafeERC20 for IERC20;

    /// @notice Most models one worker may serve (bounds the cost of status changes).
    uint256 public constant MAX_MODELS_PER_WORKER = 16;
    /// @notice Most prompts one worker may run at once.
    uint16 public constant MAX_CAPACITY = 256;
    /// @notice Basis points denominator.
    uint16 private constant BPS = 10_000;
    /// @notice Least minimum stake: 1 EAI (a zero minimum would make Sybil workers free).
    uint256 private constant MIN_MIN_STAKE = 1 ether;
    /// @notice Longest unbonding period: 30 days (a longer one could lock every stake for good).
    uint64 private constant MAX_UNBONDING = 30 days;

    IERC20 private immutable _stakeToken;
    IModelFileSystem private immutable _models;

    address private _kernel;
    address private _scheduler;
    address private _treasury;
    uint256 private _minStake;
    uint64 private _unbondingPeriod;

    mapping(address worker => WorkerState) private _workers;
    mapping(address worker => Hardware) private _hardware;
    /// @dev Models served, indices [0, WorkerState.modelCount); entries past the count are stale.
    mapping(address worker => mapping(uint256 index => uint256 modelId)) private _servedModels;
    mapping(uint256 modelId => FreeSet) private _free;

    /// @notice The kernel and scheduler were wired (once).
    event KernelSet(address indexed kernel, address indexed scheduler);
    /// @notice Staking parameters changed.
    event StakingParamsUpdated(uint256 minStake, uint64 unbondingPeriod, address treasury);
    /// @notice A worker registered.
    event WorkerRegistered(
        address indexed worker, uint256 stake, uint16 capacity, uint256[] models, string gpuModel, uint64 memoryMb, string engine
    );
    /// @notice A worker added stake.
    event StakeAdded(address indexed worker, uint256 amount, uint256 stake);
    /// @notice A worker started unbonding; it can withdraw at `until`.
    event UnstakeRequested(address indexed worker, uint64 until);
    /// @notice A worker withdrew its stake and exited.
    event Withdrawn(address indexed worker, uint256 amount);
    /// @notice A worker was jailed until `until`.
    event WorkerJailed(address indexed worker, uint64 until);
    /// @notice A worker left jail.
    event WorkerUnjailed(address indexed worker);
    /// @notice A worker's stake was slashed to the treasury.
    event WorkerSlashed(address indexed worker, uint256 amount, uint256 stakeLeft);
    /// @notice A worker took a prompt (busy rose) or finished one (busy fell).
    event WorkerLoadChanged(address indexed worker, uint16 busy);

    /// @notice The caller is not the kernel (or the scheduler, for occupy).
    error GPUManagementUnauthorized(address caller);
    /// @notice The kernel is already wired.
    error GPUManagementKernelAlreadySet();
    /// @notice The zero address was given.
    error GPUManagementZeroAddress();
    /// @notice The stake is below the minimum.
    error GPUManagementInsufficientStake(uint256 have, uint256 need);
    /// @notice The worker is registered and has not exited.
    error GPUManagementAlreadyRegistered(address worker);
    /// @notice The account is not a registered worker.
    error GPUManagementNotRegistered(address worker);
    /// @notice The action needs another status.
    error GPUManagementWrongStatus(address worker, WorkerStatus status);
    /// @notice Capacity must be 1..={MAX_CAPACITY}.
    error GPUManagementInvalidCapacity(uint16 capacity);
    /// @notice A worker serves 1..={MAX_MODELS_PER_WORKER} models.
    error GPUManagementInvalidModelCount(uint256 count);
    /// @notice The model is listed twice.
    error GPUManagementDuplicateModel(uint256 modelId);
    /// @notice The model is retired.
    error GPUManagementModelRetired(uint256 modelId);
    /// @notice The declared memory is below the model's minimum.
    error GPUManagementHardwareBelowMinimum(uint256 modelId, uint64 memoryMb, uint64 minMemoryMb);
    /// @notice The unbonding period has not ended.
    error GPUManagementUnbondingNotOver(uint64 until, uint256 nowTime);
    /// @notice The jail term has not ended.
    error GPUManagementStillJailed(uint64 until, uint256 nowTime);
    /// @notice The worker still has prompts assigned.
    error GPUManagementWorkerBusy(address worker, uint16 busy);
    /// @notice The amount is zero.
    error GPUManagementZeroAmount();
    /// @notice A position is outside the free set, or listed twice.
    error GPUManagementInvalidPosition(uint256 modelId, uint256 position);
    /// @notice A staking parameter is out of its bounds (minimum stake at least 1 EAI, unbonding at most 30 days).
    error GPUManagementInvalidParameter(string name);

    /// @param initialOwner Sets staking parameters and wires the kernel.
    /// @param stakeToken_ EAI.
    /// @param models_ The model registry.
    /// @param treasury_ Receives slashed stake.
    /// @param minStake_ Least stake to register and to leave jail.
    /// @param unbondingPeriod_ Seconds between requesting unstake and withdrawing.
    constructor(
        address initialOwner,
        IERC20 stakeToken_,
        IModelFileSystem models_,
        address treasury_,
        uint256 minStake_,
        uint64 unbondingPeriod_
    ) Ownable(initialOwner) {
        if (address(stakeToken_) == address(0) || address(models_) == address(0)) revert GPUManagementZeroAddress();
        _stakeToken = stakeToken_;
        _models = models_;
        _setStakingParams(minStake_, unbondingPeriod_, treasury_);
    }

    // ------------------------------------------------------------------ owner

    /// @notice Wires the kernel (DecentralizedInference) and the scheduler. Callable once, by the owner.
    function setKernel(address kernel_, address scheduler_) external onlyOwner {
        if (_kernel != address(0)) revert GPUManagementKernelAlreadySet();
        if (kernel_ == address(0) || scheduler_ == address(0)) revert GPUManagementZeroAddress();
        _kernel = kernel_;
        _scheduler = scheduler_;
        emit KernelSet(kernel_, scheduler_);
    }

    /// @notice Changes the minimum stake (at least 1 EAI), unbonding period (at most 30 days) and treasury. Applies to
    /// future actions.
    function setStakingParams(uint256 minStake_, uint64 unbondingPeriod_, address treasury_) external onlyOwner {
        _setStakingParams(minStake_, unbondingPeriod_, treasury_);
    }

    // ------------------------------------------------------------------ workers

    /// @notice Registers the caller as a worker with `stake` EAI (approved beforehand), its hardware, the
    /// models it serves and its capacity. Also re-registers an exited worker.
    function register(Hardware calldata hardware, uint256[] calldata models, uint16 capacity, uint256 stake)
        external
    {
        WorkerState storage worker = _workers[msg.sender];
        if (worker.status != WorkerStatus.None && worker.status != WorkerStatus.Exited) {
            revert GPUManagementAlreadyRegistered(msg.sender);
        }
        if (stake < _minStake) revert GPUManagementInsufficientStake(stake, _minStake);
        if (capacity == 0 || capacity > MAX_CAPACITY) revert GPUManagementInvalidCapacity(capacity);
        if (models.length == 0 || models.length > MAX_MODELS_PER_WORKER) {
            revert GPUManagementInvalidModelCount(models.length);
        }
        for (uint256 i = 0; i < models.length; ++i) {
            for (uint256 j = 0; j < i; ++j) {
                if (models[j] == models[i]) revert GPUManagementDuplicateModel(models[i]);
            }
            ModelTerms memory terms = _models.modelTerms(models[i]);
            if (terms.retired) revert GPUManagementModelRetired(models[i]);
            if (hardware.memoryMb < terms.minMemoryMb) {
                revert GPUManagementHardwareBelowMinimum(models[i], hardware.memoryMb, terms.minMemoryMb);
            }
        }
        worker.stake = uint128(stake);
        worker.until = 0;
        worker.status = WorkerStatus.Active;
        worker.capacity = capacity;
        worker.busy = 0;
        _hardware[msg.sender] = hardware;
        // models.length <= MAX_MODELS_PER_WORKER = 16.
        worker.modelCount = uint8(models.length);
        mapping(uint256 index => uint256 modelId) storage served = _servedModels[msg.sender];
        for (uint256 i = 0; i < models.length; ++i) {
            served[i] = models[i];
        }
        emit WorkerRegistered(
            msg.sender, stake, capacity, models, hardware.gpuModel, hardware.memoryMb, hardware.engine
        );
        _syncFree(msg.sender);
        _stakeToken.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @notice Adds `amount` EAI (approved beforehand) to the caller's stake.
    function addStake(uint256 amount) external {
        if (amount == 0) revert GPUManagementZeroAmount();
        WorkerState storage worker = _workers[msg.sender];
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.None) revert GPUManagementNotRegistered(msg.sender);
        if (status == WorkerStatus.Exited) revert GPUManagementWrongStatus(msg.sender, status);
        uint256 stake = worker.stake + amount;
        worker.stake = uint128(stake);
        emit StakeAdded(msg.sender, amount, stake);
        _stakeToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Stops taking prompts and starts the unbonding period. A jailed worker may unbond too; its
    /// withdrawal waits for the later of the jail end and the unbonding end.
    function requestUnstake() external {
        WorkerState storage worker = _workers[msg.sender];
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.None) revert GPUManagementNotRegistered(msg.sender);
        if (status != WorkerStatus.Active && status != WorkerStatus.Jailed) {
            revert GPUManagementWrongStatus(msg.sender, status);
        }
        uint64 until = uint64(block.timestamp) + _unbondingPeriod;
        if (status == WorkerStatus.Jailed && worker.until > until) until = worker.until;
        worker.status = WorkerStatus.Unbonding;
        worker.until = until;
        emit UnstakeRequested(msg.sender, until);
        _syncFree(msg.sender);
    }

    /// @notice Withdraws the whole stake once unbonding has ended and no prompt is assigned; the worker exits.
    function withdraw() external {
        WorkerState storage worker = _workers[msg.sender];
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.None) revert GPUManagementNotRegistered(msg.sender);
        if (status != WorkerStatus.Unbonding) revert GPUManagementWrongStatus(msg.sender, status);
        if (block.timestamp < worker.until) revert GPUManagementUnbondingNotOver(worker.until, block.timestamp);
        if (worker.busy != 0) revert GPUManagementWorkerBusy(msg.sender, worker.busy);
        uint256 amount = worker.stake;
        worker.stake = 0;
        worker.until = 0;
        worker.status = WorkerStatus.Exited;
        emit Withdrawn(msg.sender, amount);
        _stakeToken.safeTransfer(msg.sender, amount);
    }

    /// @notice Leaves jail once the term is over, if the stake still meets the minimum (add stake first if not).
    function unjail() external {
        WorkerState storage worker = _workers[msg.sender];
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.None) revert GPUManagementNotRegistered(msg.sender);
        if (status != WorkerStatus.Jailed) revert GPUManagementWrongStatus(msg.sender, status);
        if (block.timestamp < worker.until) revert GPUManagementStillJailed(worker.until, block.timestamp);
        if (worker.stake < _minStake) revert GPUManagementInsufficientStake(worker.stake, _minStake);
        worker.status = WorkerStatus.Active;
        worker.until = 0;
        emit WorkerUnjailed(msg.sender);
        _syncFree(msg.sender);
    }

    // ------------------------------------------------------------------ kernel

    /// @inheritdoc IGPUManagement
    function occupy(uint256 modelId, uint256[] calldata positions) external returns (address[] memory workers) {
        if (msg.sender != _scheduler) revert GPUManagementUnauthorized(msg.sender);
        FreeSet storage free = _free[modelId];
        uint256 length = free.length;
        workers = new address[](positions.length);
        // Resolve every position before any removal reorders the set.
        for (uint256 i = 0; i < positions.length; ++i) {
            if (positions[i] >= length) revert GPUManagementInvalidPosition(modelId, positions[i]);
            workers[i] = free.slots[positions[i]];
            for (uint256 j = 0; j < i; ++j) {
                if (workers[j] == workers[i]) revert GPUManagementInvalidPosition(modelId, positions[i]);
            }
        }
        // Take the workers from the highest position down: removing one then never moves another drawn worker,
        // and fewer members move into holes (when all the free workers are drawn, none does).
        uint256[] memory order = _byPositionDescending(positions);
        for (uint256 o = 0; o < order.length; ++o) {
            address drawn = workers[order[o]];
            WorkerState storage worker = _workers[drawn];
            // Cannot overflow: a worker is in a free set only while busy < capacity <= MAX_CAPACITY.
            uint16 busy;
            unchecked {
                busy = worker.busy + 1;
            }
            worker.busy = busy;
            emit WorkerLoadChanged(drawn, busy);
            if (busy == worker.capacity) _syncFree(drawn);
        }
    }

    /// @inheritdoc IGPUManagement
    function release(address[] calldata workers) external {
        if (msg.sender != _kernel) revert GPUManagementUnauthorized(msg.sender);
        for (uint256 i = 0; i < workers.length; ++i) {
            WorkerState storage worker = _workers[workers[i]];
            uint16 busy = worker.busy - 1;
            worker.busy = busy;
            emit WorkerLoadChanged(workers[i], busy);
            if (busy + 1 == worker.capacity) _syncFree(workers[i]);
        }
    }

    /// @inheritdoc IGPUManagement
    function penalize(address worker_, uint16 slashBps, uint64 jailFor) external returns (uint256 slashed) {
        if (msg.sender != _kernel) revert GPUManagementUnauthorized(msg.sender);
        WorkerState storage worker = _workers[worker_];
        uint256 stake = worker.stake;
        slashed = stake * slashBps / BPS;
        // Cannot underflow: slashBps <= BPS (checked by the kernel's parameter setter), so slashed <= stake.
        unchecked {
            stake -= slashed;
        }
        worker.stake = uint128(stake);
        uint64 until = uint64(block.timestamp) + jailFor;
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.Active || status == WorkerStatus.Jailed) {
            if (status == WorkerStatus.Jailed && worker.until > until) until = worker.until;
            worker.status = WorkerStatus.Jailed;
            worker.until = until;
            emit WorkerJailed(worker_, until);
        } else if (status == WorkerStatus.Unbonding && worker.until < until) {
            // An unbonding worker cannot escape the jail term by withdrawing early.
            worker.until = until;
            emit WorkerJailed(worker_, until);
        }
        if (slashed != 0) {
            emit WorkerSlashed(worker_, slashed, stake);
        }
        _syncFree(worker_);
        if (slashed != 0) _stakeToken.safeTransfer(_treasury, slashed);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IGPUManagement
    function freeCount(uint256 modelId) external view returns (uint256) {
        return _free[modelId].length;
    }

    /// @notice The free worker at `position` in the model's free set (order changes as workers come and go).
    function freeWorkerAt(uint256 modelId, uint256 position) external view returns (address) {
        FreeSet storage free = _free[modelId];
        if (position >= free.length) revert GPUManagementInvalidPosition(modelId, position);
        return free.slots[position];
    }

    /// @notice Whether the worker is in the model's free set.
    function isFree(uint256 modelId, address worker) external view returns (bool) {
        return _inSet(_free[modelId], worker);
    }

    /// @notice A worker's state, hardware and models.
    function getWorker(address worker)
        external
        view
        returns (WorkerState memory state, Hardware memory hardware, uint256[] memory models)
    {
        state = _workers[worker];
        models = new uint256[](state.modelCount);
        for (uint256 i = 0; i < models.length; ++i) {
            models[i] = _servedModels[worker][i];
        }
        return (state, _hardware[worker], models);
    }

    /// @notice Staking parameters: minimum stake, unbonding period, treasury.
    function stakingParams() external view returns (uint256 minStake, uint64 unbondingPeriod, address treasury) {
        return (_minStake, _unbondingPeriod, _treasury);
    }

    /// @notice The wired kernel and scheduler.
    function kernel() external view returns (address kernel_, address scheduler_) {
        return (_kernel, _scheduler);
    }

    /// @notice The staked token (EAI).
    function stakeToken() external view returns (IERC20) {
        return _stakeToken;
    }

    // ------------------------------------------------------------------ internal

    function _setStakingParams(uint256 minStake_, uint64 unbondingPeriod_, address treasury_) private {
        if (treasury_ == address(0)) revert GPUManagementZeroAddress();
        if (minStake_ < MIN_MIN_STAKE) revert GPUManagementInvalidParameter("minStake");
        if (unbondingPeriod_ > MAX_UNBONDING) revert GPUManagementInvalidParameter("unbondingPeriod");
        _minStake = minStake_;
        _unbondingPeriod = unbondingPeriod_;
        _treasury = treasury_;
        emit StakingParamsUpdated(minStake_, unbondingPeriod_, treasury_);
    }

    /// @dev Indices of `positions` ordered by decreasing position (insertion sort: committees are small).
    function _byPositionDescending(uint256[] calldata positions) private pure returns (uint256[] memory order) {
        uint256 count = positions.length;
        order = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            uint256 j = i;
            while (j > 0 && positions[order[j - 1]] < positions[i]) {
                order[j] = order[j - 1];
                --j;
            }
            order[j] = i;
        }
    }

    /// @dev Restores the free-set invariant for every model the worker serves.
    function _syncFree(address worker_) private {
        WorkerState storage worker = _workers[worker_];
        bool shouldBeFree = worker.status == WorkerStatus.Active && worker.busy < worker.capacity;
        mapping(uint256 index => uint256 modelId) storage models = _servedModels[worker_];
        uint256 count = worker.modelCount;
        for (uint256 i = 0; i < count; ++i) {
            FreeSet storage free = _free[models[i]];
            bool isMember = _inSet(free, worker_);
            if (shouldBeFree && !isMember) {
                uint256 length = free.length;
                free.slots[length] = worker_;
                free.positionsPlusOne[worker_] = length + 1;
                _setLength(free, length + 1);
            } else if (!shouldBeFree && isMember) {
                uint256 position = free.positionsPlusOne[worker_] - 1;
                uint256 last = free.length - 1;
                if (position != last) {
                    address moved = free.slots[last];
                    free.slots[position] = moved;
                    free.positionsPlusOne[moved] = position + 1;
                }
                _setLength(free, last);
            }
        }
    }

    /// @dev Writes the length together with the `touched` flag, in one slot (see {FreeSet}).
    function _setLength(FreeSet storage free, uint256 length) private {
        // length <= number of registered workers, far below 2^64.
        free.length = uint64(length);
        free.touched = true;
    }

    function _inSet(FreeSet storage free, address worker) private view returns (bool) {
        uint256 positionPlusOne = free.positionsPlusOne[worker];
        return positionPlusOne != 0 && positionPlusOne <= free.length && free.slots[positionPlusOne - 1] == worker;
    }
}
