// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice Where the bytes of a prompt's input (or extra context) live.
/// @dev `Onchain`: the bytes travel in the request and are emitted in {IAIKernel-PromptData}; the kernel
/// stores only their sha256 and length. `Storage`: the request carries the sha256 digest and length of
/// content held in off-chain storage (IPFS, Arweave, HTTP...), addressed by that digest. Either way the
/// prompt records the sha256 of the bytes, so a verifier checks both kinds the same way.
enum DataKind {
    Onchain,
    Storage
}

/// @notice A prompt's input or extra context, given inline or by reference.
/// @param kind Onchain (use `data`) or Storage (use `digest` and `length`).
/// @param data The bytes themselves when `kind == Onchain`; must be empty for Storage.
/// @param digest sha256 of the content when `kind == Storage`; ignored (must be zero) for Onchain.
/// @param length Byte length of the content when `kind == Storage` (at most MAX_STORAGE_BYTES, one IPFS block, so
/// the raw CIDv1 of `digest` is its IPFS id); ignored (must be zero) for Onchain.
struct DataRef {
    DataKind kind;
    bytes data;
    bytes32 digest;
    uint64 length;
}

/// @notice The shape the answer must take. Canonical output bytes per kind (DESIGN §5.3):
/// Text: UTF-8; Bool: abi.encode(bool); Choice: abi.encode(uint256 index); Uint: abi.encode(uint256);
/// Int: abi.encode(int256).
enum FormatKind {
    Text,
    Bool,
    Choice,
    Uint,
    Int
}

/// @notice An output format with its options.
/// @param kind The format.
/// @param options Empty for Text and Bool; abi.encode(string[] choices) with 2..=256 non-empty choices for
/// Choice; abi.encode(uint256 min, uint256 max) for Uint; abi.encode(int256 min, int256 max) for Int,
/// with min <= max.
struct OutputFormat {
    FormatKind kind;
    bytes options;
}

/// @notice Greedy decoding, or sampling with temperature and nucleus (top-p) under a seed.
enum SamplingMode {
    Greedy,
    Sample
}

/// @notice Sampling parameters. Temperature and top-p are in thousandths (1000 = 1.0).
/// @dev For Greedy all other fields must be zero, so one request has one meaning.
struct Sampling {
    SamplingMode mode;
    uint32 temperatureMilli;
    uint32 topPMilli;
    uint64 seed;
}

/// @notice When the requester's callback runs. Immediate: at finalization, as soon as the committee agreed.
/// Optimistic: only once the answer can no longer be challenged (see {IAIKernel-challenge}): after the challenge
/// window, through {IAIKernel-deliver}, or at the end of a challenge with the answer it leaves standing (the corrected
/// one when the challenge overturned the committee's). A contract that moves value on the answer should choose
/// Optimistic: an Immediate callback acts on an answer a colluding committee majority may have made up, and a
/// correction cannot undo what the callback did.
enum Finality {
    Immediate,
    Optimistic
}

/// @notice Everything a prompt needs. The requester (msg.sender of {IAIKernel-infer}) owns the topic.
/// @param modelId Model in the ModelFileSystem.
/// @param topic The conversation, scoped to the requester: topic id = keccak256(abi.encode(requester, topic)).
/// @param input The user message (must not be empty).
/// @param extra Optional extra context (empty Onchain data means none).
/// @param format Output format and options.
/// @param maxTokens Most output tokens the model may produce; the fee is charged on this many.
/// @param feePerToken Bid per output token: zero means the model's price; otherwise at least the model's
/// price. Under the fee-priority policy a higher bid is served first when workers are scarce.
/// @param sampling Decoding rule.
/// @param callbackGasLimit Gas given to the requester's `onInferenceResult`; zero means no callback.
/// @param finality When the callback runs (see {Finality}).
struct InferenceRequest {
    uint256 modelId;
    string topic;
    DataRef input;
    DataRef extra;
    OutputFormat format;
    uint32 maxTokens;
    uint128 feePerToken;
    Sampling sampling;
    uint32 callbackGasLimit;
    Finality finality;
}

/// @notice Where a prompt is in its life.
/// @dev Final states: Finalized (a quorum agreed; the answer may be a canonical failure answer, see
/// {AIKernelConsumer-_failureCode}), Refunded (no quorum twice, or cancelled while queued: the whole fee back) and
/// Unavailable (fewer than a quorum of the committee committed, e.g. its input was never published: nobody is
/// penalized, the committers keep `unavailableShareBps` of the fee and the rest is refunded, see {IAIKernel-refundOf}).
/// A challenged prompt (see {IAIKernel-challenge}) goes back to Queued and Committing, with attempt 2, while its
/// challenge committee is drawn and works, and is Finalized again when the challenge ends.
enum PromptStatus {
    None,
    Queued,
    Committing,
    Finalized,
    Refunded,
    Unavailable
}

/// @notice Why a committee member was penalized at finalization.
/// @dev Absent: it never committed although a quorum did. Withheld: it committed but never revealed (punished like
/// a wrong output, so committing a guess and hiding it when it loses costs as much as revealing it). Wrong: it
/// revealed an output other than the quorum's. Overturned: it was in the majority whose answer a challenge committee
/// overturned (see {IAIKernel-challenge}).
enum Penalty {
    Absent,
    Withheld,
    Wrong,
    Overturned
}

/// @notice Where a challenge is. Pending: its committee is queued, drawn or at work. Upheld: its committee agreed with
/// the answer (the bond paid the committee and the treasury). Overturned: its committee agreed on another answer, which
/// replaced the first. Inconclusive: its committee reached no quorum (the answer stands; the bond, less the
/// finalization's gas, went back). Cancelled: no committee could be drawn before the queue timeout (the bond went
/// back).
enum ChallengeStatus {
    None,
    Pending,
    Upheld,
    Overturned,
    Inconclusive,
    Cancelled
}

/// @notice A prompt's challenge as {IAIKernel-getChallenge} shows it.
/// @param challenger Who paid the bond.
/// @param status Where it is.
/// @param bond The bond paid. (The disputed output hash is in the ChallengeOpened event.)
struct ChallengeRecord {
    address challenger;
    ChallengeStatus status;
    uint128 bond;
}

/// @notice Parameters of the deployment, changeable by the owner within the bounds below, which setParams enforces.
/// Times are seconds of block time. Bounds: commitWindow and revealWindow 1 s..1 day; queueTimeout at most 7 days;
/// minerShareBps + verifierShareBps at most 95 % (the treasury keeps at least 5 %); unavailableShareBps at most
/// 50 %; slashWrongBps at most 50 % and slashAbsentBps at most slashWrongBps; jail terms at most 30 days;
/// initialReward at most 1,000 EAI; halvingInterval at least 1; maxInputBytes 1..64 KiB; maxTokens 1..32,768;
/// maxCallbackGas at most 5,000,000; pumpOnFinalize at most 8; gasPrice at most 10,000 gwei; finalizeGas at most
/// 2,000,000; treasury not zero; challengeWindow at most 7 days; slashChallengedBps from slashWrongBps to 100 %;
/// challengeRewardBps at most 100 %; challengeBond at most 1,000 ether, and not zero while challengeWindow is not;
/// jailChallenged at most 30 days. The fields fill five storage slots (a finalization reads them all; a submission
/// reads the first, third and fourth).
/// @param commitWindow Time a committee has to commit, from its assignment.
/// @param revealWindow Time to reveal, after the commit deadline.
/// @param queueTimeout Time a queued prompt waits before its requester may cancel it for a refund.
/// @param minerShareBps Miner's share of the fee; verifierShareBps is split among the other agreeing members;
/// the treasury takes the rest (and the verifier share when there are no verifiers).
/// @param unavailableShareBps Share of the fee of an Unavailable prompt (fewer than a quorum committed) kept and split
/// among the members that committed (the treasury's when none did); the rest is refunded. At most 50 %. It makes a
/// prompt whose input was never published cost its requester, and pays the members that did the work.
/// @param slashWrongBps Stake slashed from a member that revealed a losing output; jailWrong: its jail term.
/// @param slashAbsentBps Stake slashed from a member that did not commit or reveal; jailAbsent: its jail term.
/// @param initialReward EAI minted to the miner per finalized prompt before any halving, at most what the prompt's
/// treasury share backs at DecentralizedInference.EAI_PER_WEI.
/// @param halvingInterval Fully rewarded prompts between halvings of the block reward: a prompt whose reward the
/// backing or the supply cap cut to a part of the full reward counts as that part.
/// @param maxInputBytes Largest onchain input or extra context.
/// @param maxTokens Largest maxTokens of a request.
/// @param maxCallbackGas Largest callbackGasLimit of a request.
/// @param pumpOnFinalize Queued prompts a finalization may assign from the freed capacity.
/// @param gasPrice Wei per gas at which every fee pays for the finalization and the callback (see {IAIKernel-gasFee}), so that
/// finalizing never costs a worker money.
/// @param finalizeGas Gas a finalization is paid for, besides the callback's gas limit.
/// @param treasury Receives the treasury share of fees.
/// @param challengeWindow Time after a prompt's finalization during which anyone may challenge its answer (0: no
/// challenges); an Optimistic callback waits for it.
/// @param slashChallengedBps Stake slashed from each member of a majority whose answer a challenge overturned.
/// @param challengeRewardBps Share of that slashed stake, after the honest minority got back what it lost, paid to the
/// challenger; the challenge committee's agreeing members split the rest.
/// @param challengeBond Native coin a challenge must pay (exactly).
/// @param jailChallenged Jail term of each member of an overturned majority.
struct KernelParams {
    uint32 commitWindow;
    uint32 revealWindow;
    uint32 queueTimeout;
    uint16 minerShareBps;
    uint16 verifierShareBps;
    uint16 unavailableShareBps;
    uint16 slashWrongBps;
    uint64 gasPrice;
    uint32 finalizeGas;
    uint16 slashAbsentBps;
    uint64 jailWrong;
    uint64 jailAbsent;
    uint32 challengeWindow;
    uint16 slashChallengedBps;
    uint16 challengeRewardBps;
    uint128 initialReward;
    uint64 halvingInterval;
    uint32 maxInputBytes;
    uint32 maxTokens;
    uint32 maxCallbackGas;
    uint8 pumpOnFinalize;
    address treasury;
    uint128 challengeBond;
    uint64 jailChallenged;
}

/// @notice A prompt as {DecentralizedInference-getPrompt} shows it: the permanent record joined with the prompt's
/// lane while it is open. Once the prompt is Finalized or Refunded its lane serves other prompts, and the fields
/// that lived there (deadlines, topicId, inputHash, turnSnapshot, maxTokens, callbackGasLimit, masks, commit
/// order) read as zero: they are in the PromptSubmitted and PromptData events for good.
/// @param commitDeadline While Queued: the time from which the requester may cancel. While Committing: the
/// last second to commit.
/// @param commitSequence Member indices in commit order, 4 bits each, first committer in the low bits.
struct PromptRecord {
    address requester;
    uint32 modelId;
    PromptStatus status;
    uint8 attempt;
    uint8 committeeSize;
    uint8 minerIndex;
    uint128 fee;
    uint64 commitDeadline;
    uint64 revealDeadline;
    bytes32 topicId;
    bytes32 inputHash;
    uint64 turnSnapshot;
    uint32 maxTokens;
    uint32 callbackGasLimit;
    uint16 committedMask;
    uint16 revealedMask;
    uint64 commitSequence;
    uint8 commitCount;
    Finality finality;
}

/// @notice What a worker declares about its machine.
/// @param gpuModel E.g. "NVIDIA H100" or "cpu-x86_64".
/// @param memoryMb Memory available to models, in MiB; must meet each served model's minimum.
/// @param engine Engine and driver id, e.g. "aik-infer/llama-gguf/1".
struct Hardware {
    string gpuModel;
    uint64 memoryMb;
    string engine;
}

/// @title IAIKernelEvents
/// @notice The events and errors of the kernel (DecentralizedInference and the extension its fallback serves).
interface IAIKernelEvents {
    /// @notice A prompt was accepted and paid for.
    /// @param promptId Its id (sequential from 1).
    /// @param requester Who asked and owns the topic.
    /// @param modelId The model.
    /// @param topicId keccak256(abi.encode(requester, topic)).
    /// @param fee The escrowed fee (the excess over it was refunded).
    event PromptSubmitted(
        uint256 indexed promptId, address indexed requester, uint256 indexed modelId, bytes32 topicId, uint256 fee
    );

    /// @notice The full request as submitted, so workers and verifiers can rebuild it from logs alone.
    /// @param promptId The prompt.
    /// @param request The request (onchain input bytes included).
    /// @param inputHash sha256 of the input bytes.
    /// @param extraHash sha256 of the extra context bytes (sha256 of empty bytes when there is none).
    /// @param turnSnapshot Number of finalized turns of the topic the prompt's context includes.
    /// @param systemPromptRevision Revision of the topic's system prompt in force (0: none).
    /// @param window Turns of history the context includes.
    /// @param corrections Corrections of the topic's turns the context applies: those made before the submission
    /// (see ContextManager.correctionCount).
    event PromptData(
        uint256 indexed promptId,
        InferenceRequest request,
        bytes32 inputHash,
        bytes32 extraHash,
        uint64 turnSnapshot,
        uint32 systemPromptRevision,
        uint16 window,
        uint32 corrections
    );

    /// @notice Fewer than k eligible workers were free; the prompt waits in the model's queue.
    event PromptQueued(uint256 indexed promptId, uint256 indexed modelId);

    /// @notice A committee was drawn for the prompt (on submission, from the queue, or on retry).
    /// @param attempt 0 for the first committee, 1 for the retry, 2 for a challenge's committee.
    event CommitteeAssigned(
        uint256 indexed promptId, address[] committee, uint8 attempt, uint64 commitDeadline, uint64 revealDeadline
    );

    /// @notice A committee member committed to an output hash.
    event OutputCommitted(uint256 indexed promptId, address indexed worker, bytes32 commitment);

    /// @notice A committee member revealed. `output` is the onchain output, or empty for a storage reference.
    event OutputRevealed(uint256 indexed promptId, address indexed worker, bytes32 outputHash, bytes output);

    /// @notice The committee agreed and the result is final.
    /// @param miner The earliest committer of the winning output.
    /// @param outputHash sha256 of the canonical output bytes.
    /// @param minerPay Native coin credited to the miner; verifierPay to each other agreeing member.
    /// @param blockReward EAI minted to the miner.
    event PromptFinalized(
        uint256 indexed promptId,
        address indexed miner,
        bytes32 outputHash,
        uint256 minerPay,
        uint256 verifierPay,
        uint256 treasuryPay,
        uint256 blockReward
    );

    /// @notice No output reached quorum; the prompt goes back to the scheduler for a fresh committee.
    event PromptRetried(uint256 indexed promptId, uint8 attempt);

    /// @notice The prompt ended without a result and its fee was credited back to the requester.
    event PromptRefunded(uint256 indexed promptId, address indexed requester, uint256 amount);

    /// @notice A committee member was penalized, for the reason given.
    event WorkerPenalized(uint256 indexed promptId, address indexed worker, Penalty reason);

    /// @notice Fewer than a quorum of the committee committed by the commit deadline: the prompt closed without a
    /// result and nobody was penalized.
    /// @param committed Members that committed.
    /// @param kept The part of the fee credited to the committers (to the treasury when nobody committed).
    /// @param refunded The rest of the fee, credited back to the requester.
    event PromptUnavailable(uint256 indexed promptId, uint8 committed, uint256 kept, uint256 refunded);

    /// @notice The requester's callback ran. `success` false means it reverted or ran out of gas.
    event CallbackResult(uint256 indexed promptId, address indexed requester, bool success);

    /// @notice Someone challenged a finalized prompt's answer; a challenge committee will recompute it (its
    /// CommitteeAssigned event has attempt 2).
    /// @param originalHash The output hash the challenge disputes.
    event ChallengeOpened(uint256 indexed promptId, address indexed challenger, uint256 bond, bytes32 originalHash);

    /// @notice A challenge ended.
    /// @param outcome Upheld, Overturned, Inconclusive or Cancelled.
    /// @param outputHash The prompt's output hash from now on (the corrected one when Overturned).
    /// @param slashed Stake slashed from the overturned majority (EAI, zero unless Overturned).
    /// @param challengerReward Of that stake, paid to the challenger.
    event ChallengeResolved(
        uint256 indexed promptId,
        ChallengeStatus outcome,
        bytes32 outputHash,
        uint256 slashed,
        uint256 challengerReward
    );

    /// @notice A member of an overturned committee's minority had revealed the answer the challenge committee agreed
    /// on: the stake it lost for it was given back (as far as the majority's slashed stake covers it) and its jail for
    /// it lifted.
    event PenaltyReversed(uint256 indexed promptId, address indexed worker, uint256 restored);

    /// @notice EAI from slashed stake was paid to an account (a challenger or a challenge committee member).
    event StakeAwarded(uint256 indexed promptId, address indexed account, uint256 amount);

    /// @notice Native coin was credited to an account's claimable balance.
    event Credited(address indexed account, uint256 amount);

    /// @notice An account withdrew its claimable balance.
    event Claimed(address indexed account, address indexed to, uint256 amount);
    /// @notice A worker published (or, with an empty URL, withdrew) the gateway it serves its content store on.
    event StoreGatewaySet(address indexed worker, string url);

    /// @notice The finalizer's output bytes do not hash to the winning output hash.
    error DecentralizedInferenceOutputMismatch(uint256 promptId, bytes32 expected, bytes32 computed);
    /// @notice Too little gas was sent to run the requester's callback with its full gas limit.
    error DecentralizedInferenceInsufficientGas(uint256 available, uint256 needed);
    /// @notice The bid per token is below the model's price.
    error DecentralizedInferenceBidTooLow(uint256 feePerToken, uint256 price);
    /// @notice The model does not exist.
    error DecentralizedInferenceUnknownModel(uint256 modelId);
    /// @notice The model is retired and takes no new prompts.
    error DecentralizedInferenceModelRetired(uint256 modelId);
    /// @notice msg.value is below the fee.
    error DecentralizedInferenceFeeTooLow(uint256 paid, uint256 fee);
    /// @notice The input is empty.
    error DecentralizedInferenceEmptyInput();
    /// @notice Onchain input or extra context is longer than the limit.
    error DecentralizedInferenceInputTooLarge(uint256 length, uint256 limit);
    /// @notice A DataRef is malformed (e.g. Storage with inline bytes or a zero digest).
    error DecentralizedInferenceInvalidDataRef();
    /// @notice maxTokens is zero.
    error DecentralizedInferenceZeroMaxTokens();
    /// @notice maxTokens is above the limit.
    error DecentralizedInferenceMaxTokensTooLarge(uint256 maxTokens, uint256 limit);
    /// @notice The format options do not fit the format kind.
    error DecentralizedInferenceInvalidFormatOptions(FormatKind kind);
    /// @notice The sampling parameters are out of range.
    error DecentralizedInferenceInvalidSampling();
    /// @notice The callback gas limit is above the limit.
    error DecentralizedInferenceCallbackGasTooHigh(uint256 gasLimit, uint256 limit);
    /// @notice The prompt does not exist.
    error DecentralizedInferenceUnknownPrompt(uint256 promptId);
    /// @notice The prompt is not in the status the action needs.
    error DecentralizedInferenceWrongStatus(uint256 promptId, PromptStatus status);
    /// @notice The caller is not on the prompt's committee.
    error DecentralizedInferenceNotAssigned(uint256 promptId, address caller);
    /// @notice The commit deadline has passed.
    error DecentralizedInferenceCommitDeadlinePassed(uint256 promptId, uint256 deadline, uint256 nowTime);
    /// @notice The caller has already committed.
    error DecentralizedInferenceAlreadyCommitted(uint256 promptId, address worker);
    /// @notice The commitment is zero.
    error DecentralizedInferenceZeroCommitment();
    /// @notice Reveals open once everyone committed or the commit deadline passed.
    error DecentralizedInferenceRevealNotOpen(uint256 promptId, uint256 opensAt);
    /// @notice The reveal deadline has passed.
    error DecentralizedInferenceRevealDeadlinePassed(uint256 promptId, uint256 deadline, uint256 nowTime);
    /// @notice The caller did not commit, so has nothing to reveal.
    error DecentralizedInferenceNotCommitted(uint256 promptId, address worker);
    /// @notice The caller has already revealed.
    error DecentralizedInferenceAlreadyRevealed(uint256 promptId, address worker);
    /// @notice keccak256(abi.encode(promptId, attempt, worker, outputHash, salt)) differs from the commitment.
    error DecentralizedInferenceRevealMismatch(uint256 promptId, bytes32 commitment, bytes32 computed);
    /// @notice The onchain output is longer than the limit.
    error DecentralizedInferenceOutputTooLarge(uint256 length, uint256 limit);
    /// @notice Finalize opens once everyone revealed or the reveal deadline passed.
    error DecentralizedInferenceFinalizeTooEarly(uint256 promptId, uint256 opensAt);
    /// @notice A queued prompt can be cancelled only after the queue timeout.
    error DecentralizedInferenceQueueTimeoutNotReached(uint256 promptId, uint256 cancellableAt);
    /// @notice There is nothing to claim.
    error DecentralizedInferenceNothingToClaim(address account);
    /// @notice Sending the native coin failed.
    error DecentralizedInferenceTransferFailed(address to, uint256 amount);
    /// @notice Only the scheduler may call this.
    error DecentralizedInferenceUnauthorized(address caller);
    /// @notice An owner-set parameter is out of range.
    error DecentralizedInferenceInvalidParameter(string name);
    /// @notice The zero address was given where an account is needed.
    error DecentralizedInferenceZeroAddress();
    /// @notice The prompt cannot be challenged: its challenge window ended at `deadline` (its finalization when
    /// challenges are off; zero once its lane serves another prompt).
    error DecentralizedInferenceChallengeClosed(uint256 promptId, uint256 deadline);
    /// @notice The prompt was challenged before; a prompt can be challenged once.
    error DecentralizedInferenceAlreadyChallenged(uint256 promptId);
    /// @notice A challenge must pay exactly the bond.
    error DecentralizedInferenceWrongBond(uint256 paid, uint256 bond);
    /// @notice The prompt has no callback waiting for delivery (not Optimistic, no callback, or delivered).
    error DecentralizedInferenceNothingToDeliver(uint256 promptId);
    /// @notice An Optimistic callback is delivered once the challenge window has passed.
    error DecentralizedInferenceDeliveryTooEarly(uint256 promptId, uint256 opensAt);
    /// @notice Only a worker registered in GPUManagement publishes a store gateway.
    error DecentralizedInferenceNotAWorker(address caller);
    /// @notice A store gateway URL must be empty or an http:// or https:// URL of at most 200 printable ASCII
    /// characters; `at` is the first offending byte (0 when the scheme is wrong, the length when too long).
    error DecentralizedInferenceInvalidGateway(uint256 at);
}

/// @title IAIKernel
/// @notice The front door of AI Kernel: submit a prompt for an LLM, pay in the native coin, and get an answer
/// agreed by a staked committee (Proof-of-Compute), delivered by callback and readable with {getResult}.
interface IAIKernel is IAIKernelEvents {
    /// @notice Submit a prompt. Pays the fee from msg.value; any excess is refunded in the same call (or
    /// credited to the caller's claimable balance if sending it back fails).
    /// @return promptId The new prompt's id.
    function infer(InferenceRequest calldata request) external payable returns (uint256 promptId);

    /// @notice The fee for a prompt on `modelId` producing at most `maxTokens` tokens, called back with
    /// `callbackGasLimit` gas (0: no callback).
    /// @dev fee = pricePerToken(model) * maxTokens + gasFee(callbackGasLimit). Reverts for unknown or retired models.
    function estimateFee(uint256 modelId, uint32 maxTokens, uint32 callbackGasLimit)
        external
        view
        returns (uint256 fee);

    /// @notice The part of every fee that pays the finalization at the parameters' gas price:
    /// gasPrice * (finalizeGas + callbackGasLimit), credited to whoever finalizes (the callback's part only when
    /// the callback runs; otherwise it stays in the fee the committee and the treasury share), so finalizing never
    /// costs a worker money. A retry pays its finalization again out of the fee. A bid adds bid * maxTokens.
    function gasFee(uint32 callbackGasLimit) external view returns (uint256);

    /// @notice Closes a prompt (anyone may call), at the latest one second after its reveal deadline, so every
    /// prompt ends within commitWindow + revealWindow of its committee's assignment. Opens early once the outcome
    /// is settled: every committer revealed after reveals opened, or the commit deadline passed with fewer than a
    /// quorum of commitments. Fewer than a quorum committed: the prompt is Unavailable (see {PromptStatus}) and
    /// nobody is penalized. Otherwise absent, withholding and wrong members are penalized (see {Penalty}); with an
    /// output revealed by a quorum the committee is paid, the topic's turn appended and the requester called back;
    /// without one the prompt is retried once with a fresh committee, then refunded.
    /// @param output The winning output bytes, needed when the requester is a contract with a callback
    /// (they must hash to the winning sha256; every output is revealed onchain, so they are in the
    /// OutputRevealed events); ignored otherwise.
    function finalize(uint256 promptId, bytes calldata output) external;

    /// @notice Cancels a prompt still queued after the queue timeout and credits its fee back to the requester.
    /// Anyone may call, so no prompt waits in a queue longer than the timeout whatever its requester does. A challenge
    /// still waiting for its committee after the queue timeout is cancelled the same way: the bond goes back to the
    /// challenger and the answer stands.
    function cancelQueued(uint256 promptId) external;

    /// @notice Disputes a Finalized prompt's answer, within the challenge window after its finalization, paying exactly
    /// the challenge bond. A fresh committee of 2k + 1 members (at most 15), none of them on the committee that
    /// answered, is drawn by the same rules as any committee (it waits in the queue while too few such workers are
    /// free) and recomputes the prompt from its recorded context; its commitments are bound to attempt 2, and
    /// {finalize} closes it. If its quorum agrees on another answer, the answering committee's majority is slashed
    /// `slashChallengedBps` and jailed `jailChallenged`, members of its minority that had revealed the new answer get
    /// back what they lost for it, the challenger gets its bond back (less the finalization's gas: twice
    /// `finalizeGas` at `gasPrice`, paid to whoever finalizes) plus
    /// `challengeRewardBps` of the rest of the slashed stake, the challenge committee's agreeing members split what
    /// remains, and the new answer replaces the old as the prompt's result, its miner and its topic's turn (a correction
    /// that prompts submitted afterwards see, see ContextManager). If it agrees with the answer, the bond, less the
    /// finalization's gas, pays the agreeing members their share (minerShareBps + verifierShareBps) and the treasury the
    /// rest. Without a quorum the answer stands and the bond, less the gas, goes back. A prompt can be challenged once.
    function challenge(uint256 promptId) external payable;

    /// @notice Runs an Optimistic prompt's callback once its challenge window has passed (anyone may call; the caller
    /// is paid the callback's gas limit at the gas price of its finalization). `output` must hash to the prompt's output
    /// hash. A challenged prompt's callback runs when its challenge ends instead. Each callback runs once.
    function deliver(uint256 promptId, bytes calldata output) external;

    /// @notice The first second {deliver} accepts the prompt's Optimistic callback; zero when none waits (not
    /// Optimistic, no callback, delivered, or a challenge runs, which delivers it when it ends).
    function deliveryOpensAt(uint256 promptId) external view returns (uint256);

    /// @notice A prompt's challenge (status None when it has none).
    function getChallenge(uint256 promptId) external view returns (ChallengeRecord memory);

    /// @notice The end of a Finalized prompt's challenge window: zero when it can no longer be challenged (challenged
    /// already, window passed, or challenges off), else the last second a challenge is accepted.
    function challengeDeadline(uint256 promptId) external view returns (uint256);

    /// @notice The native coin credited back to the requester for a closed prompt: the whole fee when Refunded,
    /// the fee less the committers' share when Unavailable, zero otherwise.
    function refundOf(uint256 promptId) external view returns (uint256);

    /// @notice Withdraws the caller's claimable balance (fees earned, refunds of failed prompts) to `to`.
    function claim(address to) external;

    /// @notice Native coin `account` can withdraw with {claim}.
    function claimable(address account) external view returns (uint256);

    /// @notice The kernel's component contracts (the ContextManager holds topics' system prompts and windows).
    function components()
        external
        view
        returns (address models, address gpu, address context, address scheduler, address token);

    /// @notice A prompt's status and, once finalized, its winning output hash and miner (while a challenge runs: the
    /// answer it disputes; after an overturning challenge: the corrected answer and the challenge committee's miner).
    /// @return status Where the prompt is.
    /// @return outputHash sha256 of the canonical output (zero until finalized).
    /// @return miner The miner (zero until finalized).
    function getResult(uint256 promptId) external view returns (PromptStatus status, bytes32 outputHash, address miner);

    /// @notice The record of a prompt; the fields kept in its lane read as zero once it is closed (see
    /// {PromptRecord}).
    function getPrompt(uint256 promptId) external view returns (PromptRecord memory record);

    /// @notice The prompt's committee and, per member, its commitment (before it reveals) or its revealed output
    /// hash (after), while the prompt is Committing. Empty otherwise: while queued (a retry waits for a fresh
    /// committee) and once closed, when the CommitteeAssigned, OutputCommitted and OutputRevealed events are the
    /// record.
    function getCommittee(uint256 promptId) external view returns (address[] memory members, bytes32[] memory hashes);

    /// @notice The parameters.
    function getParams() external view returns (KernelParams memory);

    /// @notice Fees held for prompts not yet finalized or refunded.
    function openEscrow() external view returns (uint256);

    /// @notice Prompts submitted and prompts finalized so far.
    function counts() external view returns (uint256 submitted, uint256 finalized);

    /// @notice The full block reward the next finalized prompt may earn, before its backing (treasury share times
    /// the kernel's EAI_PER_WEI) and the supply cap.
    function currentBlockReward() external view returns (uint256);
}
