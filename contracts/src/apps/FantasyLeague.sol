// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AIKernelConsumer} from "../AIKernelConsumer.sol";
import {PayoutCredits} from "./PayoutCredits.sol";
import {
    DataKind,
    DataRef,
    FormatKind,
    IAIKernel,
    Finality,
    InferenceRequest,
    OutputFormat,
    Sampling,
    SamplingMode
} from "../interfaces/IAIKernel.sol";

/// @title FantasyLeague
/// @notice The whitepaper's first example: a fantasy sports league that asks the model which of two teams
/// wins a matchup instead of hard-coding scoring rules. The creator of a matchup puts up a prize; the kernel's
/// answer (a Choice between the two team names) decides which team's owner receives it.
/// @dev The prize is held while the prompt is pending. If the prompt ends without the callback acting on it
/// (refunded by the kernel, or finalized with a callback that failed), {reclaim} returns the prize, and the
/// fee when the kernel refunded it, to the creator; a prompt stuck in the kernel's queue past its timeout can be
/// cancelled with {cancel} first. A winner that cannot take the prize within {PAYOUT_GAS} is credited instead
/// and withdraws it with {withdraw}, so the verdict always stands.
contract FantasyLeague is AIKernelConsumer, PayoutCredits {
    /// @notice Where a matchup is.
    enum MatchupStatus {
        None,
        Pending,
        Decided,
        Reclaimed
    }

    /// @notice A matchup between two teams.
    /// @param creator Who created it and put up the prize.
    /// @param owners The owners of team 0 and team 1; the winner's owner receives the prize.
    /// @param prize Native coin paid to the winner's owner.
    /// @param fee The kernel fee paid for the judging prompt.
    /// @param promptId The judging prompt.
    /// @param winner Index of the winning team (valid once Decided).
    /// @param status Where the matchup is.
    struct Matchup {
        address creator;
        address[2] owners;
        uint256 prize;
        uint256 fee;
        uint256 promptId;
        uint8 winner;
        MatchupStatus status;
    }

    /// @notice Output tokens the judging prompt may use (enough for either team name).
    uint32 public constant MAX_TOKENS = 16;
    /// @notice Gas the kernel gives the callback.
    uint32 public constant CALLBACK_GAS = 200_000;
    /// @notice Longest team name or stats text, in bytes.
    uint256 public constant MAX_TEXT_BYTES = 1024;

    /// @notice The model that judges matchups.
    uint256 public immutable modelId;
    /// @notice Matchups by id (sequential from 1).
    mapping(uint256 matchupId => Matchup) private _matchups;
    /// @notice The matchup each judging prompt belongs to.
    mapping(uint256 promptId => uint256 matchupId) public matchupOfPrompt;
    /// @notice Number of matchups created.
    uint256 public matchupCount;

    /// @notice A matchup was created and sent to the kernel for judging.
    event MatchupCreated(
        uint256 indexed matchupId, uint256 indexed promptId, address indexed creator, string teamA, string teamB
    );
    /// @notice The kernel's answer decided a matchup and the prize was paid to the winner's owner.
    event MatchupDecided(uint256 indexed matchupId, uint8 winner, address indexed winnerOwner, uint256 prize);
    /// @notice A matchup whose prompt ended without a verdict returned its prize (and refunded fee).
    event MatchupReclaimed(uint256 indexed matchupId, address indexed creator, uint256 amount);

    /// @notice msg.value does not cover the kernel fee.
    error FantasyLeagueFeeNotCovered(uint256 value, uint256 fee);
    /// @notice A team name is empty or a name or stats text is too long.
    error FantasyLeagueInvalidTeam(uint256 team);
    /// @notice The two team names are equal.
    error FantasyLeagueSameTeams();
    /// @notice A team owner is the zero address.
    error FantasyLeagueZeroOwner(uint256 team);
    /// @notice No such matchup.
    error FantasyLeagueUnknownMatchup(uint256 matchupId);
    /// @notice The matchup is not pending.
    error FantasyLeagueNotPending(uint256 matchupId, MatchupStatus status);
    /// @notice The matchup's prompt is still running.
    error FantasyLeaguePromptRunning(uint256 matchupId, uint256 promptId);
    /// @notice Sending native coin failed.
    error FantasyLeagueTransferFailed(address to, uint256 amount);

    /// @param kernel_ The kernel.
    /// @param modelId_ The model that judges matchups.
    constructor(IAIKernel kernel_, uint256 modelId_) AIKernelConsumer(kernel_) {
        modelId = modelId_;
    }

    /// @notice Receives refunded fees from the kernel.
    receive() external payable {}

    /// @notice The kernel fee for judging one matchup; send it plus the prize to {createMatchup}.
    function judgingFee() public view returns (uint256) {
        return _feeFor(modelId, MAX_TOKENS, CALLBACK_GAS);
    }

    /// @notice Creates a matchup and asks the kernel who wins. msg.value = prize + {judgingFee}.
    /// @param teams The two team names (the model answers with one of them).
    /// @param stats Each team's stats, as text the model reads.
    /// @param owners Each team's owner (receives the prize if the team wins).
    /// @return matchupId The new matchup.
    function createMatchup(string[2] calldata teams, string[2] calldata stats, address[2] calldata owners)
        external
        payable
        nonReentrant
        returns (uint256 matchupId)
    {
        for (uint256 i = 0; i < 2; ++i) {
            if (bytes(teams[i]).length == 0 || bytes(teams[i]).length > MAX_TEXT_BYTES) {
                revert FantasyLeagueInvalidTeam(i);
            }
            if (bytes(stats[i]).length > MAX_TEXT_BYTES) revert FantasyLeagueInvalidTeam(i);
            if (owners[i] == address(0)) revert FantasyLeagueZeroOwner(i);
        }
        if (keccak256(bytes(teams[0])) == keccak256(bytes(teams[1]))) revert FantasyLeagueSameTeams();
        uint256 fee = judgingFee();
        if (msg.value < fee) revert FantasyLeagueFeeNotCovered(msg.value, fee);

        matchupId = ++matchupCount;
        Matchup storage matchup = _matchups[matchupId];
        matchup.creator = msg.sender;
        matchup.owners = owners;
        matchup.prize = msg.value - fee;
        matchup.fee = fee;
        matchup.status = MatchupStatus.Pending;

        string[] memory choices = new string[](2);
        choices[0] = teams[0];
        choices[1] = teams[1];
        bytes memory input = abi.encodePacked(
            "Fantasy matchup. Which team wins? Answer with the team name.\n",
            teams[0],
            ": ",
            stats[0],
            "\n",
            teams[1],
            ": ",
            stats[1]
        );
        (uint256 promptId,) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: "fantasy-league",
                input: DataRef(DataKind.Onchain, input, bytes32(0), 0),
                extra: DataRef(DataKind.Onchain, "", bytes32(0), 0),
                format: OutputFormat(FormatKind.Choice, abi.encode(choices)),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                finality: Finality.Immediate
            })
        );
        matchup.promptId = promptId;
        matchupOfPrompt[promptId] = matchupId;
        emit MatchupCreated(matchupId, promptId, msg.sender, teams[0], teams[1]);
    }

    /// @notice Returns the prize, and the fee when the kernel refunded it, to the creator of a matchup whose
    /// prompt ended without a verdict (refunded, or finalized with a failed callback). Anyone may call.
    function reclaim(uint256 matchupId) external nonReentrant {
        Matchup storage matchup = _pending(matchupId);
        uint256 promptId = matchup.promptId;
        if (!_promptEnded(promptId)) revert FantasyLeaguePromptRunning(matchupId, promptId);
        uint256 amount = matchup.prize;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            _collectKernelCredits();
            amount += refunded;
        }
        matchup.status = MatchupStatus.Reclaimed;
        address creator = matchup.creator;
        emit MatchupReclaimed(matchupId, creator, amount);
        _send(creator, amount);
    }

    /// @notice Cancels the judging prompt of a matchup still waiting in the kernel's queue after its timeout
    /// (the kernel refunds the fee); {reclaim} then returns the prize and the fee. Anyone may call.
    function cancel(uint256 matchupId) external {
        _cancelQueued(_pending(matchupId).promptId);
    }

    /// @notice A matchup by id.
    function getMatchup(uint256 matchupId) external view returns (Matchup memory) {
        return _matchups[matchupId];
    }

    /// @dev The kernel's verdict: pay the prize to the winning team's owner (credited if the push fails). Not
    /// behind the lock, so a locked call elsewhere cannot make the verdict fail; state is final before the push.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        uint256 matchupId = matchupOfPrompt[promptId];
        Matchup storage matchup = _pending(matchupId);
        uint8 winner = uint8(_decodeChoice(output, 2));
        matchup.winner = winner;
        matchup.status = MatchupStatus.Decided;
        address winnerOwner = matchup.owners[winner];
        uint256 prize = matchup.prize;
        emit MatchupDecided(matchupId, winner, winnerOwner, prize);
        _payOrCredit(winnerOwner, prize);
    }

    function _pending(uint256 matchupId) private view returns (Matchup storage matchup) {
        matchup = _matchups[matchupId];
        if (matchup.status == MatchupStatus.None) revert FantasyLeagueUnknownMatchup(matchupId);
        if (matchup.status != MatchupStatus.Pending) revert FantasyLeagueNotPending(matchupId, matchup.status);
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert FantasyLeagueTransferFailed(to, amount);
    }
}
