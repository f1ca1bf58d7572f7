//! `aik-protocol`: the protocol rules every worker, verifier and the SDK must compute alike.
//!
//! What it holds: the output formats and their canonical encodings ([`OutputFormat`],
//! [`OutputValue`]), the hash a worker commits to ([`output_hash`]), the commitment itself
//! ([`commitment`]), the canonical failure answers a committee agrees on when the chain itself
//! shows that a prompt cannot run ([`Failure`]), and the largest output a reveal carries
//! ([`MAX_OUTPUT_BYTES`]). Each rule has one definition here; the contracts implement the same
//! rules in Solidity and the kernel SDK's tests run both sides on the same cases.
//!
//! What it is not for: talking to a chain (`aik-kernel`) or running a model (`aik-infer`). It
//! depends only on `alloy-primitives`, `alloy-sol-types` and `sha2`.

mod commit;
mod error;
mod failure;
mod output;

pub use commit::commitment;
pub use error::{Error, Result};
pub use failure::Failure;
pub use output::{OutputFormat, OutputValue, output_hash};

/// Members of a committee of `committee_size` that must commit for a prompt to be judged (fewer:
/// it closes as unavailable), and reveal one output for it to win: ⌊k/2⌋ + 1, as the kernel's
/// `_quorum`.
pub const fn quorum(committee_size: usize) -> usize {
    committee_size / 2 + 1
}

/// Largest output a committee member may reveal, in bytes: the kernel's `MAX_OUTPUT_BYTES`.
/// A longer output is answered with [`Failure::OutputTooLong`] instead, so every honest member
/// holds an output it can reveal.
pub const MAX_OUTPUT_BYTES: usize = 16_384;
