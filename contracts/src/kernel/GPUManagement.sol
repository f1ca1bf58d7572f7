// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Hardware} from "../interfaces/IAIKernel.sol";
import {IGPUManagement, IModelFileSystem, ModelTerms, WorkerStatus} from "../interfaces/IKernelComponents.sol";

/// @notice A worker's state, packed in one slot.
/// @param stake Staked EAI.
/// @param until End of the jail or of the unbonding period (seconds), zero when Active.
/// @param status Life stage.
/// @param capacity Prompts it runs at once (each unit of capacity needs its own minimum stake).
/// @param busy Prompts it is assigned now.
/// @param modelCount Models it serves (kept here so that a pool update reads no array length).
/// @param poolBusy `busy` as the draw pool sees it: releases of blocks after a pending draw's anchor wait in the
/// pool's change log (see {GPUManagement}).
struct WorkerState {
    uint128 stake;
    uint64 until;
    WorkerStatus status;
    uint16 capacity;
    uint16 busy;
    uint8 modelCount;
    uint16 poolBusy;
}

/// @notice A worker's standing in the draw pools, as of the last applied pool change.
/// @param slots Capacity slots it offers while Active, else 0: its weight in the pool of every model it serves is
/// `slots - poolBusy`, one unit per free slot (each slot backed by at least the minimum stake).
/// @param pending Its changes still waiting in the change log.
/// @param leaves Its leaf in the pool of each model it serves, 12 bits per model in served order.
struct PoolMember {
    uint32 slots;
    uint32 pending;
    uint192 leaves;
}

/// @notice The per-model draw pool: a tree of weights (free stake-backed capacity slots) over the model's workers.
/// @param total Sum of the weights (free slots).
/// @param members Workers with a non-zero weight.
/// @param leaves Leaves handed out (one per worker that ever served the model; a worker keeps its leaf).
/// @param free Workers free to take a prompt now (live state, for admission; the tree lags behind while draws wait).
/// @param seats Free capacity slots of those workers.
/// @param depth Tree levels. (The slot never returns to zero: `leaves` only grows.)
struct PoolCounts {
    uint64 total;
    uint32 members;
    uint32 leaves;
    uint32 free;
    uint32 seats;
    uint8 depth;
}

/// @title GPUManagement
/// @notice The registry of staked worker nodes (stake, hardware, models served, capacity, status) and the per-model
/// draw pools committees are drawn from.
/// @dev Draw pools. Each model has a tree (8-ary, one level per factor of 8 workers, at most 4 levels and 4,096
/// leaves) of worker weights: a worker's weight is the number of its free capacity slots while it is Active, else
/// zero. Capacity is bought with stake (each slot needs the minimum stake), so seats follow the stake that backs
/// capacity; stake beyond that is collateral, not weight. Every seat taken or freed moves the weight by the same one
/// unit whoever holds it, so prompts that fill capacity take slots from everyone in proportion and cannot leave a
/// later prompt's pool skewed towards whoever bought cheap slots. A draw lays the workers
/// on a line in an order shuffled for that draw (every node's eight children in one of sixteen layouts, chosen per
/// node and draw, so nobody chooses its neighbours by when it registered) and takes k points spaced total/k apart from one random
/// offset (systematic sampling): each worker's inclusion probability is k * weight / total. A worker heavier than
/// the spacing is seated once and the other seats are drawn again over the rest (each stake counts at most
/// total/k). A draw reads one tree slot per level and point: 1 level up to 8 workers, 2 up to 64, 4 at 4,096.
///
/// Pools are fixed at a draw's anchor block. The scheduler freezes the pools at the anchor of the oldest prompt
/// awaiting its draw; from the next block on, every pool change (stake, status, a released slot) goes into an
/// ordered change log instead of the trees, and a draw first applies the log up to its anchor. Nothing done in or
/// after the block whose hash seeds a draw can shape the pool that draw sees. Draws themselves happen in anchor
/// order, so the slots they take are part of the pool at every later anchor.
contract GPUManagement is IGPUManagement, Ownable {
    using SafeERC20 for IERC20;

    /// @notice Most models one worker may serve (bounds the cost of status changes).
    uint256 public constant MAX_MODELS_PER_WORKER = 16;
    /// @notice Most prompts one worker may run at once.
    uint16 public constant MAX_CAPACITY = 256;
    /// @notice Most workers that can ever join one model's pool (leaves of its tree).
    uint256 public constant MAX_POOL_LEAVES = 4096;
    /// @notice Most logged pool changes one call applies.
    uint256 public constant MAX_APPLY_PER_CALL = 16;
    /// @notice Basis points denominator.
    uint16 private constant BPS = 10_000;
    /// @notice Least minimum stake: 1 EAI (a zero minimum would make Sybil workers free).
    uint256 private constant MIN_MIN_STAKE = 1 ether;
    /// @notice Longest unbonding period: 30 days (a longer one could lock every stake for good).
    uint64 private constant MAX_UNBONDING = 30 days;
    /// @notice Bits of one weight field; eight fields and a marker bit fill a node slot.
    uint256 private constant FIELD_BITS = 31;
    uint256 private constant FIELD_MASK = 0x7fffffff;
    /// @notice Set in every written node so that a node whose subtree is all busy stays a non-zero slot (rewriting
    /// a zero slot costs 20,000 gas instead of 2,900).
    uint256 private constant NODE_MARKER = 1 << 255;
    /// @notice Layouts 0 to 7 of a node's children on a draw's line, 32 bits each (see {_childOrder}); layout 0 is
    /// the identity.
    uint256 private constant LAYOUTS_LOW = 0x3107452625416307047316524712036560214753516734206427015376543210;
    /// @notice Layouts 8 to 15.
    uint256 private constant LAYOUTS_HIGH = 0x4573012614253607456230175670142350367214510362472631045703412765;
    /// @notice Bits of one leaf index in {PoolMember-leaves}.
    uint256 private constant LEAF_BITS = 12;
    /// @notice Change-log entry kinds.
    uint8 private constant SET_SLOTS = 0;
    uint8 private constant RELEASE = 1;
    /// @notice `_frozenSince` when no draw is pending.
    uint64 private constant NOT_FROZEN = type(uint64).max;

    IERC20 private immutable _stakeToken;
    IModelFileSystem private immutable _models;

    address private _kernel;
    address private _scheduler;
    address private _treasury;
    uint256 private _minStake;
    uint64 private _unbondingPeriod;

    /// @dev Change log: entries [head, tail); pools frozen at block `frozenSince` ({NOT_FROZEN}: not frozen, a
    /// non-zero value so that the slot is never rewritten from zero).
    uint64 private _logHead;
    uint64 private _logTail;
    uint64 private _frozenSince;

    mapping(address worker => WorkerState) private _workers;
    mapping(address worker => Hardware) private _hardware;
    /// @dev Models served, indices [0, WorkerState.modelCount); entries past the count are stale.
    mapping(address worker => mapping(uint256 index => uint256 modelId)) private _servedModels;
    mapping(address worker => PoolMember) private _members;
    mapping(uint256 modelId => PoolCounts) private _pools;
    /// @dev Tree nodes by key (height << 32 | index): height 1 holds leaf weights, each level up eight child sums per
    /// slot (31 bits each, plus {NODE_MARKER}); the root sits at height `depth`.
    mapping(uint256 modelId => mapping(uint256 key => uint256 node)) private _nodes;
    mapping(uint256 modelId => mapping(address worker => uint256 leafPlusOne)) private _leafOf;
    mapping(uint256 modelId => mapping(uint256 leaf => address worker)) private _leafWorker;
    /// @dev Entry: worker | kind << 160 | slots << 168 | block << 200.
    mapping(uint256 sequence => uint256 entry) private _log;

    /// @notice The kernel and scheduler were wired (once).
    event KernelSet(address indexed kernel, address indexed scheduler);
    /// @notice Staking parameters changed.
    event StakingParamsUpdated(uint256 minStake, uint64 unbondingPeriod, address treasury);
    /// @notice A worker registered.
    event WorkerRegistered(
        address indexed worker, uint256 stake, uint16 capacity, uint256[] models, string gpuModel, uint64 memoryMb, string engine
    );
    /// @notice A paused worker changed its hardware record, capacity or models.
    event WorkerUpdated(
        address indexed worker, uint16 capacity, uint256[] models, string gpuModel, uint64 memoryMb, string engine
    );
    /// @notice A worker left the pool by its own choice.
    event WorkerPaused(address indexed worker);
    /// @notice A paused worker came back.
    event WorkerResumed(address indexed worker);
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
    /// @notice The kernel gave a worker back stake it had lost for an answer a challenge proved right.
    event StakeRestored(address indexed worker, uint256 amount, uint256 stake);
    /// @notice A pool change waits in the log until the prompts anchored before it are drawn.
    event PoolChangeLogged(address indexed worker, uint64 sequence);

    /// @notice The caller is not the kernel (or the scheduler, for draws).
    error GPUManagementUnauthorized(address caller);
    /// @notice The kernel is already wired.
    error GPUManagementKernelAlreadySet();
    /// @notice The zero address was given.
    error GPUManagementZeroAddress();
    /// @notice The stake is below the minimum (the minimum stake times the capacity).
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
    /// @notice A staking parameter is out of its bounds (minimum stake at least 1 EAI, unbonding at most 30 days).
    error GPUManagementInvalidParameter(string name);
    /// @notice The model's pool has handed out all {MAX_POOL_LEAVES} leaves.
    error GPUManagementPoolFull(uint256 modelId);
    /// @notice A subtree of the model's pool would exceed 2^31 - 1 EAI of weight.
    error GPUManagementPoolOverflow(uint256 modelId);
    /// @notice The worker's earlier pool changes still wait in the log (they are applied after pending draws).
    error GPUManagementPoolChangePending(address worker, uint32 pending);

    /// @param initialOwner Sets staking parameters and wires the kernel.
    /// @param stakeToken_ EAI.
    /// @param models_ The model registry.
    /// @param treasury_ Receives slashed stake.
    /// @param minStake_ Least stake per unit of capacity, to register, resume and leave jail.
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
        _frozenSince = NOT_FROZEN;
        _setStakingParams(minStake_, unbondingPeriod_, treasury_);
    }

    modifier onlyKernel() {
        if (msg.sender != _kernel) revert GPUManagementUnauthorized(msg.sender);
        _;
    }

    modifier onlyScheduler() {
        if (msg.sender != _scheduler) revert GPUManagementUnauthorized(msg.sender);
        _;
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

    /// @notice Registers the caller as a worker with `stake` EAI (approved beforehand, at least the minimum stake
    /// times `capacity`), its hardware, the models it serves and its capacity. Also re-registers an exited worker.
    function register(Hardware calldata hardware, uint256[] calldata models, uint16 capacity, uint256 stake)
        external
    {
        WorkerState storage worker = _workers[msg.sender];
        if (worker.status != WorkerStatus.None && worker.status != WorkerStatus.Exited) {
            revert GPUManagementAlreadyRegistered(msg.sender);
        }
        uint32 pending = _members[msg.sender].pending;
        if (pending != 0) revert GPUManagementPoolChangePending(msg.sender, pending);
        _checkCapacity(capacity, stake);
        worker.stake = uint128(stake);
        worker.until = 0;
        worker.status = WorkerStatus.Active;
        worker.capacity = capacity;
        worker.busy = 0;
        worker.poolBusy = 0;
        _hardware[msg.sender] = hardware;
        _setModels(msg.sender, models, hardware.memoryMb);
        emit WorkerRegistered(
            msg.sender, stake, capacity, models, hardware.gpuModel, hardware.memoryMb, hardware.engine
        );
        _countFree(msg.sender, 0, 0);
        _poolChange(msg.sender, SET_SLOTS, capacity, 0);
        _stakeToken.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @notice Changes a paused worker's hardware record, capacity and models, without unbonding. The worker must
    /// have no prompt assigned and no pool change waiting; it joins the new models' pools when it resumes.
    function update(Hardware calldata hardware, uint256[] calldata models, uint16 capacity) external {
        WorkerState storage worker = _registered(msg.sender);
        if (worker.status != WorkerStatus.Paused) revert GPUManagementWrongStatus(msg.sender, worker.status);
        if (worker.busy != 0) revert GPUManagementWorkerBusy(msg.sender, worker.busy);
        uint32 pending = _members[msg.sender].pending;
        if (pending != 0) revert GPUManagementPoolChangePending(msg.sender, pending);
        _checkCapacity(capacity, worker.stake);
        worker.capacity = capacity;
        _hardware[msg.sender] = hardware;
        _setModels(msg.sender, models, hardware.memoryMb);
        emit WorkerUpdated(msg.sender, capacity, models, hardware.gpuModel, hardware.memoryMb, hardware.engine);
    }

    /// @notice Leaves the draw pools without penalty; prompts already assigned still have to be answered.
    function pause() external {
        WorkerState storage worker = _registered(msg.sender);
        if (worker.status != WorkerStatus.Active) revert GPUManagementWrongStatus(msg.sender, worker.status);
        uint256 seatsBefore = _seats(worker);
        worker.status = WorkerStatus.Paused;
        emit WorkerPaused(msg.sender);
        _countFree(msg.sender, seatsBefore, 0);
        _poolChange(msg.sender, SET_SLOTS, 0, 0);
    }

    /// @notice Rejoins the draw pools after {pause}, if the stake still backs the capacity.
    function resume() external {
        WorkerState storage worker = _registered(msg.sender);
        if (worker.status != WorkerStatus.Paused) revert GPUManagementWrongStatus(msg.sender, worker.status);
        _checkCapacity(worker.capacity, worker.stake);
        worker.status = WorkerStatus.Active;
        emit WorkerResumed(msg.sender);
        _countFree(msg.sender, 0, 0);
        _poolChange(msg.sender, SET_SLOTS, worker.capacity, 0);
    }

    /// @notice Adds `amount` EAI (approved beforehand) to the caller's stake.
    function addStake(uint256 amount) external {
        if (amount == 0) revert GPUManagementZeroAmount();
        WorkerState storage worker = _registered(msg.sender);
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.Exited) revert GPUManagementWrongStatus(msg.sender, status);
        uint256 stake = worker.stake + amount;
        worker.stake = uint128(stake);
        emit StakeAdded(msg.sender, amount, stake);
        _stakeToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Stops taking prompts and starts the unbonding period. A jailed worker may unbond too; its
    /// withdrawal waits for the later of the jail end and the unbonding end.
    function requestUnstake() external {
        WorkerState storage worker = _registered(msg.sender);
        WorkerStatus status = worker.status;
        if (status != WorkerStatus.Active && status != WorkerStatus.Jailed && status != WorkerStatus.Paused) {
            revert GPUManagementWrongStatus(msg.sender, status);
        }
        uint256 seatsBefore = _seats(worker);
        uint64 until = uint64(block.timestamp) + _unbondingPeriod;
        if (status == WorkerStatus.Jailed && worker.until > until) until = worker.until;
        worker.status = WorkerStatus.Unbonding;
        worker.until = until;
        emit UnstakeRequested(msg.sender, until);
        _countFree(msg.sender, seatsBefore, 0);
        if (status == WorkerStatus.Active) _poolChange(msg.sender, SET_SLOTS, 0, 0);
    }

    /// @notice Withdraws the whole stake once unbonding has ended, no prompt is assigned and the pools have seen the
    /// unstake (no change of the worker waits in the log); the worker exits.
    function withdraw() external {
        WorkerState storage worker = _registered(msg.sender);
        WorkerStatus status = worker.status;
        if (status != WorkerStatus.Unbonding) revert GPUManagementWrongStatus(msg.sender, status);
        if (block.timestamp < worker.until) revert GPUManagementUnbondingNotOver(worker.until, block.timestamp);
        if (worker.busy != 0) revert GPUManagementWorkerBusy(msg.sender, worker.busy);
        // Until its unstake reached the pools, a pending draw may still seat it: it stays staked.
        uint32 pending = _members[msg.sender].pending;
        if (pending != 0) revert GPUManagementPoolChangePending(msg.sender, pending);
        uint256 amount = worker.stake;
        worker.stake = 0;
        worker.until = 0;
        worker.status = WorkerStatus.Exited;
        emit Withdrawn(msg.sender, amount);
        _stakeToken.safeTransfer(msg.sender, amount);
    }

    /// @notice Leaves jail once the term is over, if the stake still backs the capacity (add stake first if not).
    function unjail() external {
        WorkerState storage worker = _registered(msg.sender);
        WorkerStatus status = worker.status;
        if (status != WorkerStatus.Jailed) revert GPUManagementWrongStatus(msg.sender, status);
        if (block.timestamp < worker.until) revert GPUManagementStillJailed(worker.until, block.timestamp);
        _checkCapacity(worker.capacity, worker.stake);
        worker.status = WorkerStatus.Active;
        worker.until = 0;
        emit WorkerUnjailed(msg.sender);
        _countFree(msg.sender, 0, 0);
        _poolChange(msg.sender, SET_SLOTS, worker.capacity, 0);
    }

    /// @notice Applies up to `max` logged pool changes that no pending draw still has to ignore. Anyone may call (a
    /// draw applies them too, {MAX_APPLY_PER_CALL} at a time).
    function applyPoolChanges(uint256 max) external returns (uint256 applied) {
        return _applyLog(_frozenSince, max);
    }

    // ------------------------------------------------------------------ scheduler and kernel

    /// @inheritdoc IGPUManagement
    function drawCommittee(
        uint256 modelId,
        uint256 committeeSize,
        bytes32 seed,
        uint64 anchor,
        uint64 nextAnchor,
        address[] calldata excluded,
        bool strict
    ) external onlyScheduler returns (bool ready, address[] memory committee) {
        _applyLog(anchor, MAX_APPLY_PER_CALL);
        // More changes up to the anchor than one call applies: the next call goes on (nothing is drawn yet).
        if (_logHead != _logTail && uint64(_log[_logHead] >> 200) <= anchor) return (false, committee);
        ready = true;
        committee = _sample(modelId, committeeSize, seed, excluded, strict);
        for (uint256 i = 0; i < committee.length; ++i) {
            _occupy(committee[i], modelId);
        }
        _freezeAt(nextAnchor);
    }

    /// @inheritdoc IGPUManagement
    function freeze(uint64 anchor) external onlyScheduler {
        _freezeAt(anchor);
    }

    /// @inheritdoc IGPUManagement
    function release(uint256 modelId, address[] calldata workers) external onlyKernel {
        for (uint256 i = 0; i < workers.length; ++i) {
            WorkerState storage worker = _workers[workers[i]];
            uint256 seatsBefore = _seats(worker);
            uint16 busy = worker.busy - 1;
            worker.busy = busy;
            _countFree(workers[i], seatsBefore, modelId);
            _poolChange(workers[i], RELEASE, 0, modelId);
        }
    }

    /// @inheritdoc IGPUManagement
    function penalize(address worker_, uint16 slashBps, uint64 jailFor)
        external
        onlyKernel
        returns (uint256 slashed, uint64 jailedUntil)
    {
        (slashed, jailedUntil) = _penalize(worker_, slashBps, jailFor);
        if (slashed != 0) _stakeToken.safeTransfer(_treasury, slashed);
    }

    /// @inheritdoc IGPUManagement
    function forfeit(address worker_, uint16 slashBps, uint64 jailFor) external onlyKernel returns (uint256 slashed) {
        (slashed,) = _penalize(worker_, slashBps, jailFor);
        if (slashed != 0) _stakeToken.safeTransfer(msg.sender, slashed);
    }

    /// @inheritdoc IGPUManagement
    function restore(address worker_, uint256 amount, uint64 jailedUntil) external onlyKernel {
        WorkerState storage worker = _workers[worker_];
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.Exited || status == WorkerStatus.None) {
            if (amount != 0) _stakeToken.safeTransfer(worker_, amount);
            return;
        }
        // The stake token's supply is far below 2^128.
        uint256 stake = worker.stake + amount;
        worker.stake = uint128(stake);
        emit StakeRestored(worker_, amount, stake);
        if (
            status != WorkerStatus.Jailed || worker.until != jailedUntil || worker.capacity == 0
                || stake < _minStake * worker.capacity
        ) return;
        worker.status = WorkerStatus.Active;
        worker.until = 0;
        emit WorkerUnjailed(worker_);
        _countFree(worker_, 0, 0);
        _poolChange(worker_, SET_SLOTS, worker.capacity, 0);
    }

    /// @dev Slashes and jails (see {penalize}); the caller moves the slashed tokens.
    function _penalize(address worker_, uint16 slashBps, uint64 jailFor)
        private
        returns (uint256 slashed, uint64 jailedUntil)
    {
        WorkerState storage worker = _workers[worker_];
        uint256 seatsBefore = _seats(worker);
        uint256 stake = worker.stake;
        slashed = stake * slashBps / BPS;
        // Cannot underflow: slashBps <= BPS (checked by the kernel's parameter setter), so slashed <= stake.
        unchecked {
            stake -= slashed;
        }
        worker.stake = uint128(stake);
        uint64 until = uint64(block.timestamp) + jailFor;
        WorkerStatus status = worker.status;
        if (status == WorkerStatus.Active || status == WorkerStatus.Jailed || status == WorkerStatus.Paused) {
            if (status == WorkerStatus.Jailed && worker.until > until) until = worker.until;
            worker.status = WorkerStatus.Jailed;
            worker.until = until;
            jailedUntil = until;
            emit WorkerJailed(worker_, until);
        } else if (status == WorkerStatus.Unbonding && worker.until < until) {
            // An unbonding worker cannot escape the jail term by withdrawing early.
            worker.until = until;
            emit WorkerJailed(worker_, until);
        }
        if (slashed != 0) {
            emit WorkerSlashed(worker_, slashed, stake);
        }
        _countFree(worker_, seatsBefore, 0);
        if (status == WorkerStatus.Active) _poolChange(worker_, SET_SLOTS, 0, 0);
    }

    // ------------------------------------------------------------------ views

    /// @notice Number of workers free to take a prompt of `modelId` now (Active, busy below capacity).
    function freeCount(uint256 modelId) external view returns (uint256) {
        return _pools[modelId].free;
    }

    /// @inheritdoc IGPUManagement
    function availability(uint256 modelId) external view returns (uint256 workers, uint256 seats) {
        PoolCounts memory pool = _pools[modelId];
        return (pool.free, pool.seats);
    }

    /// @notice Whether the worker can take a prompt of the model now (live state; draws see the pool at their anchor).
    function isFree(uint256 modelId, address worker) external view returns (bool) {
        WorkerState storage state = _workers[worker];
        if (_seats(state) == 0) return false;
        for (uint256 i = 0; i < state.modelCount; ++i) {
            if (_servedModels[worker][i] == modelId) return true;
        }
        return false;
    }

    /// @notice The model's draw pool as of the last applied change: total weight (free slots), workers with a
    /// non-zero weight, leaves handed out.
    function poolOf(uint256 modelId) external view returns (uint256 total, uint256 members, uint256 leaves) {
        PoolCounts memory pool = _pools[modelId];
        return (pool.total, pool.members, pool.leaves);
    }

    /// @notice The worker's weight in the model's draw pool (zero when it is not in the pool).
    function poolWeight(uint256 modelId, address worker) external view returns (uint256) {
        uint256 leafPlusOne = _leafOf[modelId][worker];
        if (leafPlusOne == 0) return 0;
        return _leafWeight(modelId, leafPlusOne - 1);
    }

    /// @notice The committee a draw with `seed` would seat from the model's pool as it stands (changes still in the
    /// log not applied), leaving out `excluded` when enough others remain. A draw of a prompt seats exactly this
    /// when the log holds nothing up to its anchor; its seed is keccak256(abi.encode(randomness of the anchor block,
    /// promptId, attempt)).
    function previewDraw(uint256 modelId, uint256 committeeSize, bytes32 seed, address[] calldata excluded)
        external
        view
        returns (address[] memory committee)
    {
        return _sample(modelId, committeeSize, seed, excluded, false);
    }

    /// @notice The change log: entries waiting, and the block the pools are frozen at (0: not frozen).
    function poolChangeLog() external view returns (uint256 pending, uint64 frozenSince) {
        uint64 frozen = _frozenSince;
        return (_logTail - _logHead, frozen == NOT_FROZEN ? 0 : frozen);
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

    /// @notice Staking parameters: minimum stake (per unit of capacity), unbonding period, treasury.
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

    // ------------------------------------------------------------------ internal: workers

    function _setStakingParams(uint256 minStake_, uint64 unbondingPeriod_, address treasury_) private {
        if (treasury_ == address(0)) revert GPUManagementZeroAddress();
        if (minStake_ < MIN_MIN_STAKE) revert GPUManagementInvalidParameter("minStake");
        if (unbondingPeriod_ > MAX_UNBONDING) revert GPUManagementInvalidParameter("unbondingPeriod");
        _minStake = minStake_;
        _unbondingPeriod = unbondingPeriod_;
        _treasury = treasury_;
        emit StakingParamsUpdated(minStake_, unbondingPeriod_, treasury_);
    }

    function _registered(address account) private view returns (WorkerState storage worker) {
        worker = _workers[account];
        if (worker.status == WorkerStatus.None) revert GPUManagementNotRegistered(account);
    }

    /// @dev Capacity is bought with stake: each unit needs the minimum stake.
    function _checkCapacity(uint16 capacity, uint256 stake) private view {
        if (capacity == 0 || capacity > MAX_CAPACITY) revert GPUManagementInvalidCapacity(capacity);
        uint256 need = _minStake * capacity;
        if (stake < need) revert GPUManagementInsufficientStake(stake, need);
    }

    /// @dev Validates and records the served models, handing the worker a leaf in each new model's pool.
    function _setModels(address account, uint256[] calldata models, uint64 memoryMb) private {
        if (models.length == 0 || models.length > MAX_MODELS_PER_WORKER) {
            revert GPUManagementInvalidModelCount(models.length);
        }
        mapping(uint256 index => uint256 modelId) storage served = _servedModels[account];
        uint256 leaves;
        for (uint256 i = 0; i < models.length; ++i) {
            uint256 modelId = models[i];
            for (uint256 j = 0; j < i; ++j) {
                if (models[j] == modelId) revert GPUManagementDuplicateModel(modelId);
            }
            ModelTerms memory terms = _models.modelTerms(modelId);
            if (terms.retired) revert GPUManagementModelRetired(modelId);
            if (memoryMb < terms.minMemoryMb) {
                revert GPUManagementHardwareBelowMinimum(modelId, memoryMb, terms.minMemoryMb);
            }
            served[i] = modelId;
            uint256 leafPlusOne = _leafOf[modelId][account];
            if (leafPlusOne == 0) leafPlusOne = _newLeaf(modelId, account);
            leaves |= (leafPlusOne - 1) << (LEAF_BITS * i);
        }
        // Fits: 16 models of 12 bits.
        _members[account].leaves = uint192(leaves);
        // models.length <= MAX_MODELS_PER_WORKER = 16.
        _workers[account].modelCount = uint8(models.length);
    }

    /// @dev Hands the worker the model's next leaf, adding a level on top when the tree is full.
    function _newLeaf(uint256 modelId, address account) private returns (uint256 leafPlusOne) {
        PoolCounts storage pool = _pools[modelId];
        uint256 leaf = pool.leaves;
        if (leaf == MAX_POOL_LEAVES) revert GPUManagementPoolFull(modelId);
        uint256 depth = pool.depth;
        if (depth == 0) {
            pool.depth = 1;
        } else if (leaf == 1 << (3 * depth)) {
            // The old root becomes the first child of a new one, whose field must hold its total.
            if (pool.total > FIELD_MASK) revert GPUManagementPoolOverflow(modelId);
            _nodes[modelId][(depth + 1) << 32] = uint256(pool.total) | NODE_MARKER;
            pool.depth = uint8(depth + 1);
        }
        pool.leaves = uint32(leaf + 1);
        leafPlusOne = leaf + 1;
        _leafOf[modelId][account] = leafPlusOne;
        _leafWorker[modelId][leaf] = account;
    }

    /// @dev Free capacity slots (zero unless Active).
    function _seats(WorkerState storage worker) private view returns (uint256) {
        return worker.status == WorkerStatus.Active ? worker.capacity - worker.busy : 0;
    }

    /// @dev The worker's `index`-th model of `count`; `known` is a model it is known to serve (0: none), which saves the
    /// read when it serves one model only.
    function _modelAt(address account, uint256 index, uint256 count, uint256 known) private view returns (uint256) {
        return count == 1 && known != 0 ? known : _servedModels[account][index];
    }

    /// @dev Updates the live free counts of the worker's models after a change of its status or load; `seatsBefore`
    /// is {_seats} before the change, `known` as in {_modelAt}.
    function _countFree(address account, uint256 seatsBefore, uint256 known) private {
        WorkerState storage worker = _workers[account];
        uint256 seats = _seats(worker);
        if (seats == seatsBefore) return;
        uint256 count = worker.modelCount;
        for (uint256 i = 0; i < count; ++i) {
            PoolCounts storage pool = _pools[_modelAt(account, i, count, known)];
            // Free workers are those with a free seat; seat counts stay below 2^32 (capacity 256 per worker).
            if (seatsBefore == 0) ++pool.free;
            else if (seats == 0) --pool.free;
            pool.seats = uint32(pool.seats + seats - seatsBefore);
        }
    }

    /// @dev Takes one capacity slot of a drawn worker, live and in the pools.
    function _occupy(address account, uint256 modelId) private {
        WorkerState storage worker = _workers[account];
        // Cannot overflow: the worker is in the pool, so poolBusy < capacity <= MAX_CAPACITY; busy trails poolBusy
        // only by releases still in the log.
        uint256 seatsBefore = _seats(worker);
        uint16 busy = worker.busy + 1;
        uint16 poolBusy = worker.poolBusy + 1;
        worker.busy = busy;
        worker.poolBusy = poolBusy;
        _countFree(account, seatsBefore, modelId);
        _setLeaves(account, _members[account].slots - poolBusy, modelId);
    }

    // ------------------------------------------------------------------ internal: change log

    /// @dev Freezes the pools at `anchor`; 0 unfreezes them and applies what waited (up to {MAX_APPLY_PER_CALL}).
    function _freezeAt(uint64 anchor) private {
        if (anchor != 0) {
            _frozenSince = anchor;
            return;
        }
        _frozenSince = NOT_FROZEN;
        _applyLog(NOT_FROZEN, MAX_APPLY_PER_CALL);
    }

    /// @dev Applies a pool change now, or logs it when the pools are frozen at an earlier block (or older changes
    /// still wait, to keep the order).
    function _poolChange(address account, uint8 kind, uint32 slots, uint256 known) private {
        uint64 frozen = _frozenSince;
        uint64 tail = _logTail;
        if (_logHead == tail && block.number <= frozen) {
            _applyChange(account, kind, slots, known);
            return;
        }
        _log[tail] = uint256(uint160(account)) | uint256(kind) << 160 | uint256(slots) << 168 | block.number << 200;
        _logTail = tail + 1;
        ++_members[account].pending;
        emit PoolChangeLogged(account, tail);
    }

    /// @dev Applies up to `max` logged changes made in blocks up to `limit`, in order.
    function _applyLog(uint64 limit, uint256 max) private returns (uint256 applied) {
        uint64 head = _logHead;
        uint64 tail = _logTail;
        while (head != tail && applied < max) {
            uint256 entry = _log[head];
            if (uint64(entry >> 200) > limit) break;
            address account = address(uint160(entry));
            --_members[account].pending;
            _applyChange(account, uint8(entry >> 160), uint32(entry >> 168), 0);
            ++head;
            ++applied;
        }
        if (applied != 0) _logHead = head;
    }

    /// @dev A SET_SLOTS change sets the slots the worker offers (its capacity, or 0 out of the pool); a RELEASE frees
    /// one. The leaves get the free slots: offered minus taken, zero when out of the pool while still busy.
    function _applyChange(address account, uint8 kind, uint32 slots, uint256 known) private {
        WorkerState storage worker = _workers[account];
        PoolMember storage member = _members[account];
        uint256 poolBusy = worker.poolBusy;
        if (kind == SET_SLOTS) {
            member.slots = slots;
        } else {
            slots = member.slots;
            // Cannot underflow: a release follows the seat that raised poolBusy.
            worker.poolBusy = uint16(--poolBusy);
        }
        _setLeaves(account, slots > poolBusy ? uint32(slots - poolBusy) : 0, known);
    }

    // ------------------------------------------------------------------ internal: trees

    function _setLeaves(address account, uint32 weight, uint256 known) private {
        uint256 count = _workers[account].modelCount;
        uint256 leaves = _members[account].leaves;
        for (uint256 i = 0; i < count; ++i) {
            _setLeaf(_modelAt(account, i, count, known), leaves >> (LEAF_BITS * i) & (MAX_POOL_LEAVES - 1), weight);
        }
    }

    /// @dev Sets a leaf's weight and every sum above it.
    function _setLeaf(uint256 modelId, uint256 leaf, uint256 weight) private {
        mapping(uint256 key => uint256 node) storage nodes = _nodes[modelId];
        PoolCounts storage pool = _pools[modelId];
        uint256 depth = pool.depth;
        uint256 old = nodes[1 << 32 | leaf >> 3] >> (FIELD_BITS * (leaf & 7)) & FIELD_MASK;
        if (old == weight) return;
        for (uint256 height = 1; height <= depth; ++height) {
            uint256 key = height << 32 | leaf >> (3 * height);
            uint256 fieldShift = FIELD_BITS * (leaf >> (3 * (height - 1)) & 7);
            uint256 node = nodes[key];
            uint256 field = (node >> fieldShift & FIELD_MASK) + weight - old;
            if (field > FIELD_MASK) revert GPUManagementPoolOverflow(modelId);
            nodes[key] = node & ~(FIELD_MASK << fieldShift) | field << fieldShift | NODE_MARKER;
        }
        pool.total = uint64(pool.total + weight - old);
        if (old == 0) ++pool.members;
        else if (weight == 0) --pool.members;
    }

    /// @dev The leaf's weight (zero when it is not in the pool).
    function _leafWeight(uint256 modelId, uint256 leaf) private view returns (uint256) {
        return _nodes[modelId][1 << 32 | leaf >> 3] >> (FIELD_BITS * (leaf & 7)) & FIELD_MASK;
    }

    /// @dev keccak256(abi.encode(seed, salt)), computed in the scratch space.
    function _random(bytes32 seed, uint256 salt) private pure returns (uint256 random) {
        assembly ("memory-safe") {
            mstore(0x00, seed)
            mstore(0x20, salt)
            random := keccak256(0x00, 0x40)
        }
    }

    /// @dev The order in which a draw with `seed` lays out the eight children of the node `key`: eight 4-bit entries,
    /// entry p naming the child at place p. It is one of sixteen fixed layouts ({LAYOUTS_LOW}, {LAYOUTS_HIGH}),
    /// chosen by the low four bits of keccak256(abi.encode(seed, key)); in them any two children stand at any given
    /// offset from each other in at most four. Choosing every node's layout per draw keeps a worker from choosing
    /// which others sit at the spacing from it (and so are drawn with it) by when it registered.
    function _childOrder(bytes32 seed, uint256 key) private pure returns (uint256) {
        uint256 pick = _random(seed, key) & 15;
        uint256 layouts = pick < 8 ? LAYOUTS_LOW : LAYOUTS_HIGH;
        return layouts >> (32 * (pick & 7)) & 0xffffffff;
    }

    /// @dev Where `leaf` starts on the draw's line (the leaves in the shuffled order of {_childOrder}) and its weight.
    function _prefix(uint256 modelId, uint256 depth, bytes32 seed, uint256 leaf)
        private
        view
        returns (uint256 start, uint256 weight)
    {
        mapping(uint256 key => uint256 node) storage nodes = _nodes[modelId];
        for (uint256 height = depth; height > 0; --height) {
            uint256 key = height << 32 | leaf >> (3 * height);
            uint256 node = nodes[key];
            uint256 order = _childOrder(seed, key);
            uint256 child = leaf >> (3 * (height - 1)) & 7;
            for (uint256 place = 0; place < 8; ++place) {
                uint256 c = order >> (4 * place) & 15;
                if (c == child) break;
                start += node >> (FIELD_BITS * c) & FIELD_MASK;
            }
            weight = node >> (FIELD_BITS * child) & FIELD_MASK;
        }
    }

    /// @dev The leaf whose interval of the draw's line holds `point` (< total), its start and weight. `cache` keeps the
    /// child order of the last node read at each height (key and order), for the next point.
    function _find(uint256 modelId, uint256 depth, bytes32 seed, uint256 point, uint256[] memory cache)
        private
        view
        returns (uint256 leaf, uint256 start, uint256 weight)
    {
        mapping(uint256 key => uint256 node) storage nodes = _nodes[modelId];
        uint256 rest = point;
        // Heights, places and 31-bit fields: nothing here can overflow, and `rest` only drops below a field it
        // exceeds.
        unchecked {
            for (uint256 height = depth; height > 0; --height) {
                uint256 key = height << 32 | leaf;
                // An order is a permutation of 0..7, never 0, so 0 marks an empty cache slot.
                uint256 order = cache[2 * height] == key ? cache[2 * height + 1] : 0;
                if (order == 0) {
                    order = _childOrder(seed, key);
                    cache[2 * height] = key;
                    cache[2 * height + 1] = order;
                }
                uint256 node = nodes[key];
                uint256 child;
                // `point` < total, so some child holds it; the bound only guards the loop.
                for (uint256 place = 0; place < 8; ++place) {
                    child = order >> (4 * place) & 15;
                    weight = node >> (FIELD_BITS * child) & FIELD_MASK;
                    if (rest < weight || place == 7) break;
                    rest -= weight;
                }
                leaf = leaf << 3 | child;
            }
        }
        start = point - rest;
    }

    // ------------------------------------------------------------------ internal: sampling

    /// @dev Systematic sampling over the model's pool without the workers in `holes`; see the contract's notes.
    function _sample(uint256 modelId, uint256 committeeSize, bytes32 seed, address[] calldata excluded, bool strict)
        private
        view
        returns (address[] memory committee)
    {
        PoolCounts memory pool = _pools[modelId];
        if (pool.members < committeeSize) return committee;
        // Holes: intervals of the cumulative weights taken out of the draw, sorted by start.
        uint256[] memory holeStart = new uint256[](committeeSize + excluded.length);
        uint256[] memory holeWeight = new uint256[](committeeSize + excluded.length);
        uint256 holes;
        uint256 holeTotal;
        if (excluded.length != 0 && (strict || pool.members >= committeeSize + excluded.length)) {
            for (uint256 i = 0; i < excluded.length; ++i) {
                uint256 leafPlusOne = _leafOf[modelId][excluded[i]];
                if (leafPlusOne == 0) continue;
                (uint256 start, uint256 weight) = _prefix(modelId, pool.depth, seed, leafPlusOne - 1);
                if (weight == 0) continue;
                holes = _insertHole(holeStart, holeWeight, holes, start, weight);
                holeTotal += weight;
            }
            // Strict: too few workers with weight besides the excluded ones.
            if (pool.members - holes < committeeSize) return committee;
        }
        committee = new address[](committeeSize);
        uint256[] memory cache = new uint256[](2 * pool.depth + 2);
        uint256 seated;
        for (uint256 round = 0; seated < committeeSize; ++round) {
            uint256 need = committeeSize - seated;
            uint256 remaining = pool.total - holeTotal;
            uint256 offset = _random(seed, round) % remaining;
            uint256[] memory leaves = new uint256[](need);
            uint256[] memory starts = new uint256[](need);
            uint256[] memory weights = new uint256[](need);
            bool heavy;
            for (uint256 j = 0; j < need; ++j) {
                uint256 point;
                // Weights are 31-bit fields summing to at most 2^64: no product or sum here can overflow.
                unchecked {
                    point = (offset + j * remaining) / need;
                    for (uint256 h = 0; h < holes && holeStart[h] <= point; ++h) {
                        point += holeWeight[h];
                    }
                }
                (leaves[j], starts[j], weights[j]) = _find(modelId, pool.depth, seed, point, cache);
                if (weights[j] * need > remaining) heavy = true;
            }
            if (!heavy) {
                // Every interval is at most the spacing, so no two points share a worker.
                for (uint256 j = 0; j < need; ++j) {
                    committee[seated++] = _leafWorker[modelId][leaves[j]];
                }
                break;
            }
            // Workers heavier than the spacing are always hit: seat each once, then draw the other seats again over
            // the rest (each stake counts at most total/k).
            for (uint256 j = 0; j < need; ++j) {
                if (weights[j] * need <= remaining || (j != 0 && starts[j] == starts[j - 1])) continue;
                committee[seated++] = _leafWorker[modelId][leaves[j]];
                holes = _insertHole(holeStart, holeWeight, holes, starts[j], weights[j]);
                holeTotal += weights[j];
            }
        }
    }

    function _insertHole(
        uint256[] memory holeStart,
        uint256[] memory holeWeight,
        uint256 holes,
        uint256 start,
        uint256 weight
    ) private pure returns (uint256) {
        uint256 i = holes;
        while (i > 0 && holeStart[i - 1] > start) {
            holeStart[i] = holeStart[i - 1];
            holeWeight[i] = holeWeight[i - 1];
            --i;
        }
        holeStart[i] = start;
        holeWeight[i] = weight;
        return holes + 1;
    }
}
