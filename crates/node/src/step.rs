//! A worker's decisions as one pure function of its job, the chain's record of the prompt and
//! the block time: [`next_step`]. It mirrors the kernel's timing rules exactly (commit until the
//! commit deadline; reveal once every member committed or the commit deadline passed, until the
//! reveal deadline; finalize once the outcome cannot change or the reveal deadline passed), so
//! the worker never sends a transaction the kernel must refuse, and every prompt it sat on gets
//! closed even when it could not answer.

use aik_kernel::{PromptRecord, PromptStatus, quorum};

use crate::{Job, Stage};

/// What a worker does next for one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing until the chain or the clock moves.
    Wait,
    /// Compute the answer (or see whether the running computation finished).
    Compute,
    /// Send the commitment of the saved answer.
    Commit,
    /// Send the reveal.
    Reveal,
    /// Close the prompt: finalize is open (whether it is this worker's turn is the caller's
    /// rule, see `Worker::finalize`).
    Finalize,
    /// The commit deadline passed without a commitment from this worker: it abstains, and
    /// closes the prompt once finalize opens.
    Abstain,
    /// The prompt closed or moved to another attempt: the job is over.
    Done,
}

/// The next step for `job` given the prompt's `record` on chain at block time `now`.
pub fn next_step(job: &Job, record: &PromptRecord, now: u64) -> Step {
    if record.status != PromptStatus::Committing || record.attempt != job.attempt {
        return Step::Done;
    }
    let bit = 1u16 << job.member;
    let everyone = (1u16 << record.committee_size) - 1;
    let commit_open = now <= record.commit_deadline;
    let reveals_begun = record.committed_mask == everyone || !commit_open;
    let committed = record.committed_mask & bit != 0;
    let revealed = record.revealed_mask & bit != 0;
    let finalize_open = unavailable(record, now)
        || (reveals_begun && record.revealed_mask == record.committed_mask)
        || now > record.reveal_deadline;
    match job.stage {
        Stage::Assigned if commit_open => Step::Compute,
        Stage::Assigned => Step::Abstain,
        Stage::Computed if committed => Step::Reveal.or_wait(reveals_begun, now, record),
        Stage::Computed if commit_open => Step::Commit,
        Stage::Computed => Step::Abstain,
        Stage::Committed if !revealed => Step::Reveal.or_wait(reveals_begun, now, record),
        Stage::Committed | Stage::Revealed | Stage::Abstained if finalize_open => Step::Finalize,
        Stage::Committed | Stage::Revealed | Stage::Abstained => Step::Wait,
        Stage::Done | Stage::Failed => Step::Done,
    }
}

/// Whether the prompt is settled as unavailable: its commit deadline passed with fewer than a
/// quorum of commitments (the kernel then closes it at once, penalizing nobody).
pub(crate) fn unavailable(record: &PromptRecord, now: u64) -> bool {
    now > record.commit_deadline
        && (record.committed_mask.count_ones() as usize)
            < quorum(usize::from(record.committee_size))
}

impl Step {
    /// A reveal when reveals are open, else a wait (or a finalize once the reveal window closed
    /// without this member's reveal: nothing else is left to do).
    fn or_wait(self, reveals_begun: bool, now: u64, record: &PromptRecord) -> Self {
        if now > record.reveal_deadline {
            Self::Finalize
        } else if reveals_begun {
            self
        } else {
            Self::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, B256, U256};

    use super::*;

    const COMMIT: u64 = 100;
    const REVEAL: u64 = 200;

    fn record(committed: u16, revealed: u16) -> PromptRecord {
        PromptRecord {
            requester: Address::ZERO,
            model_id: 1,
            status: PromptStatus::Committing,
            attempt: 0,
            committee_size: 3,
            fee: 1,
            commit_deadline: COMMIT,
            reveal_deadline: REVEAL,
            topic_id: B256::ZERO,
            input_hash: B256::ZERO,
            turn_snapshot: 0,
            max_tokens: 1,
            callback_gas_limit: 0,
            committed_mask: committed,
            revealed_mask: revealed,
        }
    }

    fn job(stage: Stage) -> Job {
        Job {
            prompt_id: U256::from(1),
            attempt: 0,
            member: 1,
            commit_deadline: COMMIT,
            reveal_deadline: REVEAL,
            stage,
            output: Vec::new(),
            salt: B256::ZERO,
            error: None,
        }
    }

    /// (stage, committed mask, revealed mask, now) -> step, member 1 of 3 (bit 0b010).
    #[test]
    fn every_stage_follows_the_kernels_timing_rules() {
        use Stage::*;
        use Step as S;
        let cases: &[(Stage, u16, u16, u64, Step)] = &[
            // Computing while commits are open; abstaining once they closed.
            (Assigned, 0b000, 0, 50, S::Compute),
            (Assigned, 0b000, 0, COMMIT, S::Compute),
            (Assigned, 0b101, 0, COMMIT + 1, S::Abstain),
            // A computed answer is committed in time, else abstained.
            (Computed, 0b000, 0, 50, S::Commit),
            (Computed, 0b000, 0, COMMIT + 1, S::Abstain),
            // Committed (the record shows it, e.g. after a restart): reveal when reveals open.
            (Computed, 0b010, 0, 50, S::Wait),
            (Computed, 0b111, 0, 50, S::Reveal),
            (Committed, 0b011, 0, 50, S::Wait),
            (Committed, 0b111, 0, 50, S::Reveal),
            (Committed, 0b011, 0, COMMIT + 1, S::Reveal),
            (Committed, 0b011, 0b001, REVEAL, S::Reveal),
            (Committed, 0b011, 0b001, REVEAL + 1, S::Finalize),
            // Revealed: finalize once every committer revealed, or the reveal deadline passed.
            (Revealed, 0b111, 0b110, 50, S::Wait),
            (Revealed, 0b111, 0b111, 50, S::Finalize),
            (Revealed, 0b011, 0b011, 50, S::Wait),
            (Revealed, 0b011, 0b011, COMMIT + 1, S::Finalize),
            (Revealed, 0b111, 0b110, REVEAL + 1, S::Finalize),
            // Abstained: close at once when too few committed, else with everyone else.
            (Abstained, 0b001, 0, COMMIT + 1, S::Finalize),
            (Abstained, 0b000, 0, COMMIT + 1, S::Finalize),
            (Abstained, 0b101, 0, COMMIT + 1, S::Wait),
            (Abstained, 0b101, 0b100, COMMIT + 1, S::Wait),
            (Abstained, 0b101, 0b101, COMMIT + 1, S::Finalize),
            (Abstained, 0b101, 0, REVEAL + 1, S::Finalize),
            (Done, 0, 0, 50, S::Done),
            (Failed, 0, 0, 50, S::Done),
        ];
        for &(stage, committed, revealed, now, expected) in cases {
            let step = next_step(&job(stage), &record(committed, revealed), now);
            assert_eq!(
                step, expected,
                "{stage:?} committed {committed:03b} revealed {revealed:03b} at {now}"
            );
        }
    }

    #[test]
    fn a_closed_prompt_or_another_attempt_ends_the_job() {
        for status in [PromptStatus::Finalized, PromptStatus::Refunded, PromptStatus::Unavailable] {
            let closed = PromptRecord { status, ..record(0b111, 0b111) };
            assert_eq!(next_step(&job(Stage::Revealed), &closed, 50), Step::Done);
        }
        let retried = PromptRecord { attempt: 1, ..record(0, 0) };
        assert_eq!(next_step(&job(Stage::Committed), &retried, 50), Step::Done);
    }
}
