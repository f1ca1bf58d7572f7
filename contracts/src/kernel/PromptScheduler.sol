// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {
    IGPUManagement,
    IKernelAssignments,
    IModelFileSystem,
    IPromptScheduler,
    IRandomness,
    SchedulingPolicy
} from "../interfaces/IKernelComponents.sol";

/// @notice A prompt waiting in a queue.
/// @param committeeSize Workers it needs.
/// @param attempt 0 for a first committee, 1 for a retry, 2 for a challenge (changes the seed, and leaves out the
/// previous committee: a retry's when enough others remain, a challenge's always).
/// @param queued True while it is in a queue and not cancelled.
/// @param modelId The model whose queue holds it.
struct QueuedPrompt {
    uint8 committeeSize;
    uint8 attempt;
    bool queued;
    uint64 modelId;
}

/// @notice A prompt anchored for its committee draw, one slot in the draw FIFO.
/// @param promptId The prompt (ids are sequential, far below 2^64).
/// @param modelId Its model.
/// @param anchor The block whose randomness draws its committee.
/// @param committeeSize Workers it needs.
/// @param attempt 0, 1 (the retry) or 2 (a challenge).
/// @param cancelled True once the kernel cancelled it (its draw skips it).
struct DrawEntry {
    uint64 promptId;
    uint64 modelId;
    uint64 anchor;
    uint8 committeeSize;
    uint8 attempt;
    bool cancelled;
}

/// @notice How many prompts wait for a model, in one slot so that a finalization with nothing queued reads one
/// slot to know it.
/// @param live Prompts waiting in the queue and not cancelled.
/// @param stored Entries in the model's heap and requester FIFOs, cancelled ones not yet dropped included.
/// @param reserved Workers that anchored prompts of the model will take when drawn (committee sizes summed).
/// @param touched Always true once set: keeps the slot non-zero when the queue drains (a zero slot costs 20,000
/// gas to write again).
struct QueueCounts {
    uint64 live;
    uint64 stored;
    uint64 reserved;
    bool touched;
}

/// @notice One requester's FIFO of queued prompt ids for one model, and its place in the model's ring.
struct RequesterQueue {
    uint64 head;
    uint64 tail;
    uint64 ringPositionPlusOne;
}

/// @title PromptScheduler
/// @notice Queues prompts and draws their committees. A prompt that finds enough free workers (and no queue) is
/// anchored to the block of the transaction that schedules it; its committee is drawn in a later transaction, by
/// anyone calling {draw}, from randomness of the anchor block (its hash, built in; a chain with a VRF or a beacon plugs
/// in an {IRandomness}) and the pool as it stood at the end of that block. The hash of a block is unknown to every
/// transaction in it; only the block's producer can bias it, by withholding the block and losing its reward. No transaction that submits, pumps or finalizes
/// can see the committee it causes, and reverting and retrying the draw gives the same committee. Draws happen in
/// anchor order. When fewer workers are free than a committee needs, the prompt waits in its model's queue, ordered
/// by the model's policy, and is anchored when workers free up.
/// @dev Fee priority is a binary max-heap of keys (feePerToken << 128 | (2^64-1 - sequence) << 64 | promptId):
/// higher fee first, then lower sequence (FIFO). Round robin is a ring of requesters, each with a FIFO; the
/// cursor serves one prompt per requester per round. Cancelled prompts are removed lazily when they reach
/// the front. A model's queue is drained in its current policy's structure first, then the other one (which
/// holds prompts only if the owner switched the policy while prompts waited). Anchored prompts wait in one FIFO
/// across models; an anchor older than the randomness source remembers (256 blocks for block hashes) moves to
/// the block of the draw that finds it stale, a block whose hash that transaction cannot know either.
contract PromptScheduler is IPromptScheduler, Ownable {
    /// @notice The EIP-2935 block-hash history contract (Prague).
    address public constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    /// @notice Blocks the history contract serves.
    uint256 public constant HISTORY_WINDOW = 8191;

    IGPUManagement private immutable _gpu;
    IModelFileSystem private immutable _models;
    IRandomness private immutable _randomness;

    /// @dev One slot, never zero once wired: the kernel, the draw FIFO's bounds (entries [head, tail) of `_draws`,
    /// both back to 0 whenever it empties, so that entry slots are reused) and the fee-priority sequence.
    address private _kernel;
    uint32 private _drawHead;
    uint32 private _drawTail;
    uint32 private _sequence;

    mapping(uint256 promptId => QueuedPrompt) private _queuedPrompts;
    mapping(uint256 modelId => QueueCounts) private _queueCounts;
    mapping(uint256 modelId => uint256[]) private _heaps;
    mapping(uint256 modelId => address[]) private _rings;
    mapping(uint256 modelId => uint256) private _cursors;
    mapping(uint256 modelId => mapping(address requester => RequesterQueue)) private _requesterQueues;
    mapping(uint256 modelId => mapping(address requester => mapping(uint64 index => uint256 promptId))) private
        _requesterItems;
    mapping(uint256 index => DrawEntry) private _draws;

    /// @notice The kernel was wired (once).
    event KernelSet(address indexed kernel);
    /// @notice A prompt joined its model's queue.
    event Enqueued(uint256 indexed promptId, uint256 indexed modelId, address indexed requester, uint256 feePerToken);
    /// @notice A queued prompt left the queue (it is anchored next).
    event Dequeued(uint256 indexed promptId, uint256 indexed modelId);
    /// @notice A prompt awaits its committee draw from the randomness of the block of this event (drawable from the
    /// next block).
    event Anchored(uint256 indexed promptId);
    /// @notice A queued or anchored prompt was cancelled.
    event Cancelled(uint256 indexed promptId);

    /// @notice The caller is not the kernel.
    error PromptSchedulerUnauthorized(address caller);
    /// @notice The kernel is already wired.
    error PromptSchedulerKernelAlreadySet();
    /// @notice The zero address was given.
    error PromptSchedulerZeroAddress();
    /// @notice The prompt is not queued.
    error PromptSchedulerNotQueued(uint256 promptId);

    /// @param initialOwner Wires the kernel.
    /// @param gpu_ The worker registry (draw pools).
    /// @param models_ The model registry (policies).
    /// @param randomness_ Where committee randomness comes from: the zero address for the built-in block hashes, or a
    /// VRF or beacon source on a chain that has one.
    constructor(address initialOwner, IGPUManagement gpu_, IModelFileSystem models_, IRandomness randomness_)
        Ownable(initialOwner)
    {
        if (address(gpu_) == address(0) || address(models_) == address(0)) revert PromptSchedulerZeroAddress();
        _gpu = gpu_;
        _models = models_;
        _randomness = randomness_;
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
    ) external returns (bool anchored) {
        if (msg.sender != _kernel) revert PromptSchedulerUnauthorized(msg.sender);
        QueueCounts storage counts = _queueCounts[modelId];
        if (counts.live == 0 && _hasSeats(modelId, counts, committeeSize)) {
            _anchor(promptId, modelId, committeeSize, attempt, counts);
            return true;
        }
        // Model ids are sequential registry ids, far below 2^64.
        QueuedPrompt memory queued =
            QueuedPrompt({committeeSize: committeeSize, attempt: attempt, queued: true, modelId: uint64(modelId)});
        _enqueue(promptId, queued, policy, requester, feePerToken);
        // Capacity may be free while earlier prompts of another policy structure wait; let the queue move.
        _pump(modelId, 1);
    }

    /// @notice Draws the committees of up to `max` anchored prompts, oldest first, whose anchor block has passed.
    /// Anyone may call; workers do. Each entry looked at (drawn, re-anchored or skipped as cancelled) counts.
    /// @return drawn Committees drawn.
    function draw(uint256 max) external returns (uint256 drawn) {
        uint256 head = _drawHead;
        for (uint256 steps = 0; steps < max && head != _drawTail; ++steps) {
            DrawEntry memory entry = _draws[head];
            if (entry.anchor >= block.number) break;
            ++head;
            _drawHead = uint32(head);
            uint256 promptId = entry.promptId;
            if (entry.cancelled) {
                // No draw passes the pools on to the next anchor: move the freeze there (unfreeze when none).
                _gpu.freeze(_nextAnchor(head));
                continue;
            }
            QueueCounts storage counts = _queueCounts[entry.modelId];
            counts.reserved -= entry.committeeSize;
            bytes32 random = address(_randomness) == address(0)
                ? _blockRandomness(entry.anchor)
                : _randomness.randomness(entry.anchor);
            if (random == bytes32(0)) {
                // Too old for the source: anchor again to this block, at the back (anchors stay in order), and
                // keep the pools frozen at the oldest anchor still waiting.
                _anchor(promptId, entry.modelId, entry.committeeSize, entry.attempt, counts);
                _gpu.freeze(_nextAnchor(head));
                continue;
            }
            bytes32 seed = keccak256(abi.encode(random, promptId, entry.attempt));
            address[] memory excluded;
            if (entry.attempt != 0) excluded = IKernelAssignments(_kernel).previousMembers(promptId);
            // A challenge's committee never includes the committee whose answer it checks.
            (bool ready, address[] memory committee) = _gpu.drawCommittee(
                entry.modelId, entry.committeeSize, seed, entry.anchor, _nextAnchor(head), excluded, entry.attempt >= 2
            );
            if (!ready) {
                // The pools still had logged changes to apply up to the anchor; some were applied. The prompt
                // stays first: the next call goes on.
                --head;
                _drawHead = uint32(head);
                counts.reserved += entry.committeeSize;
                break;
            }
            if (committee.length == 0) {
                // The pool at the anchor was short (workers left in the anchor block, or too few besides a challenged
                // committee): anchor again.
                _anchor(promptId, entry.modelId, entry.committeeSize, entry.attempt, counts);
                continue;
            }
            IKernelAssignments(_kernel).onCommitteeAssigned(promptId, committee);
            ++drawn;
            _pump(entry.modelId, 1);
        }
        if (head == _drawTail && head != 0) {
            _drawHead = 0;
            _drawTail = 0;
        }
    }

    /// @inheritdoc IPromptScheduler
    function cancel(uint256 promptId, uint256 modelId, uint8 committeeSize) external {
        if (msg.sender != _kernel) revert PromptSchedulerUnauthorized(msg.sender);
        QueuedPrompt storage queued = _queuedPrompts[promptId];
        QueueCounts storage counts = _queueCounts[modelId];
        if (queued.queued) {
            // The entry stays in its structure until it reaches the front (see {_pump}).
            queued.queued = false;
            --counts.live;
        } else {
            // Anchored (the kernel cancels only prompts waiting for a committee): skipped when its draw comes.
            uint256 index = _drawIndex(promptId);
            if (index == type(uint256).max) revert PromptSchedulerNotQueued(promptId);
            _draws[index].cancelled = true;
            counts.reserved -= committeeSize;
        }
        emit Cancelled(promptId);
    }

    /// @inheritdoc IPromptScheduler
    /// @dev Anyone may call. Each queue entry looked at (anchored or skipped as cancelled) counts towards `max`.
    function pump(uint256 modelId, uint256 max) external returns (uint256 anchored) {
        return _pump(modelId, max);
    }

    /// @notice Live (not cancelled) prompts waiting in `modelId`'s queue (not those awaiting their draw).
    function queueLength(uint256 modelId) external view returns (uint256) {
        return _queueCounts[modelId].live;
    }

    /// @notice Whether the prompt waits in a queue (not yet anchored for its draw).
    function isQueued(uint256 promptId) external view returns (bool) {
        return _queuedPrompts[promptId].queued;
    }

    /// @notice The block whose randomness will draw the prompt's committee; 0 unless it awaits its draw.
    function anchorOf(uint256 promptId) external view returns (uint64) {
        uint256 index = _drawIndex(promptId);
        return index == type(uint256).max ? 0 : _draws[index].anchor;
    }

    /// @notice Prompts awaiting their draw (cancelled ones not yet skipped included), and how many of them can be
    /// drawn in the current block.
    function pendingDraws() external view returns (uint256 pending, uint256 drawable) {
        uint256 head = _drawHead;
        pending = _drawTail - head;
        for (uint256 i = head; i != _drawTail; ++i) {
            if (_draws[i].anchor >= block.number) break;
            ++drawable;
        }
    }

    /// @notice The wired kernel.
    function kernel() external view returns (address) {
        return _kernel;
    }

    /// @notice The randomness source (the zero address: the built-in block hashes).
    function randomness() external view returns (IRandomness) {
        return _randomness;
    }

    /// @dev The built-in randomness: the block's hash, from BLOCKHASH for the last 256 blocks and, where the chain has
    /// the EIP-2935 history contract, from its ring of the last 8,191 beyond that; zero when neither has it.
    function _blockRandomness(uint256 blockNumber) private view returns (bytes32 value) {
        value = blockhash(blockNumber);
        if (value != bytes32(0) || block.number - blockNumber > HISTORY_WINDOW || HISTORY.code.length == 0) {
            return value;
        }
        (bool ok, bytes memory returned) = HISTORY.staticcall(abi.encode(blockNumber));
        if (ok && returned.length == 32) value = abi.decode(returned, (bytes32));
    }

    /// @dev Whether the model has `committeeSize` free workers, and free capacity slots beyond those anchored prompts
    /// will take. A draw that still finds the pool short at its anchor anchors the prompt again.
    function _hasSeats(uint256 modelId, QueueCounts storage counts, uint256 committeeSize) private view returns (bool) {
        (uint256 workers, uint256 seats) = _gpu.availability(modelId);
        return workers >= committeeSize && seats >= counts.reserved + committeeSize;
    }

    /// @dev Anchors a prompt to this block and appends it to the draw FIFO; the pools freeze at the oldest anchor.
    function _anchor(uint256 promptId, uint256 modelId, uint8 committeeSize, uint8 attempt, QueueCounts storage counts)
        private
    {
        uint64 anchor = uint64(block.number);
        counts.reserved += committeeSize;
        counts.touched = true;
        uint256 tail = _drawTail;
        // Prompt and model ids are sequential, far below 2^64.
        _draws[tail] = DrawEntry({
            promptId: uint64(promptId),
            modelId: uint64(modelId),
            anchor: anchor,
            committeeSize: committeeSize,
            attempt: attempt,
            cancelled: false
        });
        _drawTail = uint32(tail + 1);
        if (_drawHead == tail) _gpu.freeze(anchor);
        emit Anchored(promptId);
    }

    /// @dev The draw FIFO index of the prompt's live (not cancelled) entry; type(uint256).max when there is none.
    function _drawIndex(uint256 promptId) private view returns (uint256) {
        for (uint256 i = _drawHead; i != _drawTail; ++i) {
            DrawEntry memory entry = _draws[i];
            if (entry.promptId == promptId && !entry.cancelled) return i;
        }
        return type(uint256).max;
    }

    /// @dev The anchor of the entry at `head` (0 when the FIFO ends there). A cancelled entry's anchor still counts:
    /// the pools stay frozen a little longer, which is safe.
    function _nextAnchor(uint256 head) private view returns (uint64) {
        return head == _drawTail ? 0 : _draws[head].anchor;
    }

    function _enqueue(
        uint256 promptId,
        QueuedPrompt memory queued,
        SchedulingPolicy policy,
        address requester,
        uint256 feePerToken
    ) private {
        uint256 modelId = queued.modelId;
        _queuedPrompts[promptId] = queued;
        QueueCounts storage counts = _queueCounts[modelId];
        ++counts.live;
        ++counts.stored;
        counts.touched = true;
        if (policy == SchedulingPolicy.FeePriority) {
            uint32 sequence = ++_sequence;
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

    function _pump(uint256 modelId, uint256 max) private returns (uint256 anchored) {
        QueueCounts storage counts = _queueCounts[modelId];
        // Nothing stored means the heap and every requester FIFO (hence the ring) are empty.
        if (counts.live == 0 && counts.stored == 0) return 0;
        SchedulingPolicy policy = _models.modelTerms(modelId).policy;
        for (uint256 steps = 0; steps < max; ++steps) {
            (bool found, uint256 promptId, bool fromHeap) = _peek(modelId, policy);
            if (!found) break;
            QueuedPrompt memory queued = _queuedPrompts[promptId];
            if (queued.queued && !_hasSeats(modelId, counts, queued.committeeSize)) break;
            _pop(modelId, fromHeap);
            --counts.stored;
            // A cancelled prompt is dropped here, having already left the live count in {cancel}.
            if (!queued.queued) {
                delete _queuedPrompts[promptId];
                continue;
            }
            --counts.live;
            delete _queuedPrompts[promptId];
            emit Dequeued(promptId, modelId);
            _anchor(promptId, modelId, queued.committeeSize, queued.attempt, counts);
            ++anchored;
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
