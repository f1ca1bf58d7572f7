// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {
    IGPUManagement,
    IKernelAssignments,
    IModelFileSystem,
    IPromptScheduler,
    SchedulingPolicy
} from "../interfaces/IKernelComponents.sol";

/// @notice A prompt waiting in a queue.
/// @param committeeSize Workers it needs.
/// @param attempt 0 for a first committee, 1 for a retry (changes the seed).
/// @param queued True while it is in a queue and not cancelled.
/// @param modelId The model whose queue holds it.
struct QueuedPrompt {
    uint8 committeeSize;
    uint8 attempt;
    bool queued;
    uint64 modelId;
}

/// @notice How many prompts wait for a model, in one slot so that a finalization with nothing queued reads one
/// slot to know it.
/// @param live Prompts waiting and not cancelled.
/// @param stored Entries in the model's heap and requester FIFOs, cancelled ones not yet dropped included.
/// @param touched Always true once set: keeps the slot non-zero when the queue drains (a zero slot costs 20,000
/// gas to write again).
struct QueueCounts {
    uint64 live;
    uint64 stored;
    bool touched;
}

/// @notice One requester's FIFO of queued prompt ids for one model, and its place in the model's ring.
struct RequesterQueue {
    uint64 head;
    uint64 tail;
    uint64 ringPositionPlusOne;
}

/// @title PromptScheduler
/// @notice Chooses committees and queues prompts. A committee is k distinct workers drawn uniformly at random
/// from the model's free set, seeded by keccak256(abi.encode(block.prevrandao, promptId)) (a retry adds the
/// attempt number to the seed), at O(k) cost whatever the number of workers. When fewer than k workers are
/// free the prompt waits in the model's queue, ordered by the model's policy.
/// @dev Fee priority is a binary max-heap of keys (feePerToken << 128 | (2^64-1 - sequence) << 64 | promptId):
/// higher fee first, then lower sequence (FIFO). Round robin is a ring of requesters, each with a FIFO; the
/// cursor serves one prompt per requester per round. Cancelled prompts are removed lazily when they reach
/// the front. A model's queue is drained in its current policy's structure first, then the other one (which
/// holds prompts only if the owner switched the policy while prompts waited).
contract PromptScheduler is IPromptScheduler, Ownable {
    IGPUManagement private immutable _gpu;
    IModelFileSystem private immutable _models;

    address private _kernel;
    uint64 private _sequence;

    mapping(uint256 promptId => QueuedPrompt) private _queuedPrompts;
    mapping(uint256 modelId => QueueCounts) private _queueCounts;
    mapping(uint256 modelId => uint256[]) private _heaps;
    mapping(uint256 modelId => address[]) private _rings;
    mapping(uint256 modelId => uint256) private _cursors;
    mapping(uint256 modelId => mapping(address requester => RequesterQueue)) private _requesterQueues;
    mapping(uint256 modelId => mapping(address requester => mapping(uint64 index => uint256 promptId))) private
        _requesterItems;

    /// @notice The kernel was wired (once).
    event KernelSet(address indexed kernel);
    /// @notice A prompt joined its model's queue.
    event Enqueued(uint256 indexed promptId, uint256 indexed modelId, address indexed requester, uint256 feePerToken);
    /// @notice A queued prompt left the queue with a committee.
    event Dequeued(uint256 indexed promptId, uint256 indexed modelId);
    /// @notice A queued prompt was cancelled.
    event Cancelled(uint256 indexed promptId);

    /// @notice The caller is not the kernel.
    error PromptSchedulerUnauthorized(address caller);
    /// @notice The kernel is already wired.
    error PromptSchedulerKernelAlreadySet();
    /// @notice The zero address was given.
    error PromptSchedulerZeroAddress();
    /// @notice The prompt is not queued.
    error PromptSchedulerNotQueued(uint256 promptId);
    /// @notice Sampling needs 1 <= k <= n.
    error PromptSchedulerInvalidSample(uint256 n, uint256 k);

    /// @param initialOwner Wires the kernel.
    /// @param gpu_ The worker registry (free sets).
    /// @param models_ The model registry (policies).
    constructor(address initialOwner, IGPUManagement gpu_, IModelFileSystem models_) Ownable(initialOwner) {
        if (address(gpu_) == address(0) || address(models_) == address(0)) revert PromptSchedulerZeroAddress();
        _gpu = gpu_;
        _models = models_;
    }

    /// @notice Wires the kernel (DecentralizedInference). Callable once, by the owner.
    function setKernel(address kernel_) external onlyOwner {
        if (_kernel != address(0)) revert PromptSchedulerKernelAlreadySet();
        if (kernel_ == address(0)) revert PromptSchedulerZeroAddress();
        _kernel = kernel_;
        emit KernelSet(kernel_);
    }

    /// @inheritdoc IPromptScheduler
    function schedule(
        uint256 promptId,
        uint256 modelId,
        uint8 committeeSize,
        uint8 attempt,
        SchedulingPolicy policy,
        address requester,
        uint256 feePerToken
    ) external returns (address[] memory committee) {
        if (msg.sender != _kernel) revert PromptSchedulerUnauthorized(msg.sender);
        if (_queueCounts[modelId].live == 0 && _gpu.freeCount(modelId) >= committeeSize) {
            return _draw(modelId, committeeSize, promptId, attempt);
        }
        _enqueue(promptId, modelId, committeeSize, attempt, policy, requester, feePerToken);
        // Capacity may be free while earlier prompts of another policy structure wait; let the queue move.
        _pump(modelId, 1);
    }

    /// @inheritdoc IPromptScheduler
    function cancel(uint256 promptId) external {
        if (msg.sender != _kernel) revert PromptSchedulerUnauthorized(msg.sender);
        QueuedPrompt storage queued = _queuedPrompts[promptId];
        if (!queued.queued) revert PromptSchedulerNotQueued(promptId);
        queued.queued = false;
        // The entry stays in its structure until it reaches the front (see {_pump}); the live count drops now.
        --_queueCounts[queued.modelId].live;
        emit Cancelled(promptId);
    }

    /// @inheritdoc IPromptScheduler
    /// @dev Anyone may call. Each queue entry looked at (assigned or skipped as cancelled) counts towards `max`.
    function pump(uint256 modelId, uint256 max) external returns (uint256 assigned) {
        return _pump(modelId, max);
    }

    /// @notice Live (not cancelled) prompts waiting for `modelId`.
    function queueLength(uint256 modelId) external view returns (uint256) {
        return _queueCounts[modelId].live;
    }

    /// @notice Whether the prompt waits in a queue.
    function isQueued(uint256 promptId) external view returns (bool) {
        return _queuedPrompts[promptId].queued;
    }

    /// @notice The wired kernel.
    function kernel() external view returns (address) {
        return _kernel;
    }

    /// @notice The committee seed of a prompt's attempt in the current block.
    function committeeSeed(uint256 promptId, uint8 attempt) public view returns (bytes32) {
        return attempt == 0
            ? keccak256(abi.encode(block.prevrandao, promptId))
            : keccak256(abi.encode(block.prevrandao, promptId, attempt));
    }

    /// @notice k distinct positions drawn uniformly from [0, n): a partial Fisher-Yates shuffle of the virtual
    /// array 0..n, where draw i swaps position i with i + (keccak256(abi.encode(seed, i)) mod (n - i)).
    /// @dev O(k^2) memory work, no storage: only the k swapped entries are remembered.
    function samplePositions(uint256 n, uint256 k, bytes32 seed) public pure returns (uint256[] memory positions) {
        if (k == 0 || k > n) revert PromptSchedulerInvalidSample(n, k);
        positions = new uint256[](k);
        // swappedAt[s] holds the value now at index swappedFrom[s]; at most one entry per draw.
        uint256[] memory swappedFrom = new uint256[](k);
        uint256[] memory swappedTo = new uint256[](k);
        uint256 swaps;
        for (uint256 i = 0; i < k; ++i) {
            uint256 j = i + uint256(keccak256(abi.encode(seed, i))) % (n - i);
            uint256 valueAtJ = j;
            uint256 valueAtI = i;
            uint256 slotOfJ = type(uint256).max;
            for (uint256 s = 0; s < swaps; ++s) {
                if (swappedFrom[s] == j) {
                    valueAtJ = swappedTo[s];
                    slotOfJ = s;
                }
                if (swappedFrom[s] == i) valueAtI = swappedTo[s];
            }
            positions[i] = valueAtJ;
            // Index i is never read again (later draws start above it); index j now holds the old value at i.
            if (slotOfJ == type(uint256).max) {
                swappedFrom[swaps] = j;
                swappedTo[swaps] = valueAtI;
                ++swaps;
            } else {
                swappedTo[slotOfJ] = valueAtI;
            }
        }
    }

    function _draw(uint256 modelId, uint8 committeeSize, uint256 promptId, uint8 attempt)
        private
        returns (address[] memory)
    {
        uint256[] memory positions =
            samplePositions(_gpu.freeCount(modelId), committeeSize, committeeSeed(promptId, attempt));
        return _gpu.occupy(modelId, positions);
    }

    function _enqueue(
        uint256 promptId,
        uint256 modelId,
        uint8 committeeSize,
        uint8 attempt,
        SchedulingPolicy policy,
        address requester,
        uint256 feePerToken
    ) private {
        // Model ids are sequential registry ids, far below 2^64.
        _queuedPrompts[promptId] =
            QueuedPrompt({committeeSize: committeeSize, attempt: attempt, queued: true, modelId: uint64(modelId)});
        QueueCounts storage counts = _queueCounts[modelId];
        ++counts.live;
        ++counts.stored;
        counts.touched = true;
        if (policy == SchedulingPolicy.FeePriority) {
            uint64 sequence = ++_sequence;
            // feePerToken < 2^128 (fees are uint128) and promptId < 2^64 (sequential), so fields do not overlap.
            _heapPush(_heaps[modelId], feePerToken << 128 | uint256(type(uint64).max - sequence) << 64 | promptId);
        } else {
            RequesterQueue storage fifo = _requesterQueues[modelId][requester];
            _requesterItems[modelId][requester][fifo.tail] = promptId;
            ++fifo.tail;
            if (fifo.ringPositionPlusOne == 0) {
                address[] storage ring = _rings[modelId];
                ring.push(requester);
                fifo.ringPositionPlusOne = uint64(ring.length);
            }
        }
        emit Enqueued(promptId, modelId, requester, feePerToken);
    }

    function _pump(uint256 modelId, uint256 max) private returns (uint256 assigned) {
        QueueCounts storage counts = _queueCounts[modelId];
        // Nothing stored means the heap and every requester FIFO (hence the ring) are empty.
        if (counts.live == 0 && counts.stored == 0) return 0;
        SchedulingPolicy policy = _models.modelTerms(modelId).policy;
        for (uint256 steps = 0; steps < max; ++steps) {
            (bool found, uint256 promptId, bool fromHeap) = _peek(modelId, policy);
            if (!found) break;
            QueuedPrompt memory queued = _queuedPrompts[promptId];
            if (queued.queued && _gpu.freeCount(modelId) < queued.committeeSize) break;
            _pop(modelId, fromHeap);
            --counts.stored;
            delete _queuedPrompts[promptId];
            // A cancelled prompt is dropped here, having already left the live count in {cancel}.
            if (!queued.queued) continue;
            --counts.live;
            address[] memory committee = _draw(modelId, queued.committeeSize, promptId, queued.attempt);
            emit Dequeued(promptId, modelId);
            IKernelAssignments(_kernel).onCommitteeAssigned(promptId, committee);
            ++assigned;
        }
    }

    /// @dev The front of the model's queue: the current policy's structure first, then the other one.
    function _peek(uint256 modelId, SchedulingPolicy policy)
        private
        view
        returns (bool found, uint256 promptId, bool fromHeap)
    {
        uint256[] storage heap = _heaps[modelId];
        address[] storage ring = _rings[modelId];
        bool heapFirst = policy == SchedulingPolicy.FeePriority;
        if (heap.length != 0 && (heapFirst || ring.length == 0)) {
            return (true, uint64(heap[0]), true);
        }
        if (ring.length != 0) {
            address requester = ring[_cursors[modelId]];
            uint64 head = _requesterQueues[modelId][requester].head;
            return (true, _requesterItems[modelId][requester][head], false);
        }
        return (false, 0, false);
    }

    /// @dev Removes the entry {_peek} returned.
    function _pop(uint256 modelId, bool fromHeap) private {
        if (fromHeap) {
            _heapPop(_heaps[modelId]);
            return;
        }
        address[] storage ring = _rings[modelId];
        uint256 cursor = _cursors[modelId];
        address requester = ring[cursor];
        RequesterQueue storage fifo = _requesterQueues[modelId][requester];
        uint64 head = fifo.head;
        delete _requesterItems[modelId][requester][head];
        // Cannot overflow: head < tail <= number of prompts ever queued.
        unchecked {
            ++head;
        }
        if (head == fifo.tail) {
            // The requester has nothing left: drop it from the ring. The last requester moves into the cursor's
            // place and is served next; it had not been served yet in this round (it sat after the cursor).
            delete _requesterQueues[modelId][requester];
            uint256 last = ring.length - 1;
            if (cursor != last) {
                address moved = ring[last];
                ring[cursor] = moved;
                _requesterQueues[modelId][moved].ringPositionPlusOne = uint64(cursor + 1);
            }
            ring.pop();
            if (cursor >= ring.length) _cursors[modelId] = 0;
        } else {
            fifo.head = head;
            _cursors[modelId] = cursor + 1 == ring.length ? 0 : cursor + 1;
        }
    }

    function _heapPush(uint256[] storage heap, uint256 key) private {
        heap.push(key);
        uint256 index = heap.length - 1;
        while (index > 0) {
            uint256 parent = (index - 1) / 2;
            uint256 parentKey = heap[parent];
            if (parentKey >= key) break;
            heap[index] = parentKey;
            index = parent;
        }
        heap[index] = key;
    }

    function _heapPop(uint256[] storage heap) private {
        uint256 last = heap[heap.length - 1];
        heap.pop();
        uint256 length = heap.length;
        if (length == 0) return;
        uint256 index = 0;
        while (true) {
            uint256 child = 2 * index + 1;
            if (child >= length) break;
            uint256 childKey = heap[child];
            if (child + 1 < length) {
                uint256 rightKey = heap[child + 1];
                if (rightKey > childKey) {
                    child += 1;
                    childKey = rightKey;
                }
            }
            if (last >= childKey) break;
            heap[index] = childKey;
            index = child;
        }
        heap[index] = last;
    }
}
