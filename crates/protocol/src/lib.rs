//! `aik-protocol`: the protocol rules every worker, verifier and the SDK must compute alike.
//!
//! What it holds: the output formats, their text form and canonical encodings
//! ([`OutputFormat`], [`OutputValue`]), the hash a worker commits to ([`output_hash`]), the
//! commitment itself ([`commitment`]), the canonical failure answers a committee agrees on when
//! the chain itself shows that a prompt cannot run ([`Failure`]), the decoding rule a request
//! records ([`SamplingSpec`]), chat messages ([`Message`]), the context-assembly rule that turns
//! a prompt and its topic's history into them ([`PromptContext::assemble`]) and the plain-text
//! layout a base model runs them in ([`PromptLayout`], [`plain_text`]). Each rule has
//! one definition here; the contracts implement the same rules in Solidity and the kernel SDK's
//! tests run both sides on the same cases.
//!
//! What it is not for: talking to a chain (`aik-kernel`) or running a model (`aik-infer`). It
//! depends only on `alloy-primitives`, `alloy-sol-types` and `sha2`.

mod chat;
mod commit;
mod context;
mod error;
mod failure;
mod output;
mod sampling;
mod text;

pub use chat::{Message, PromptLayout, Role, plain_text};
pub use commit::{CHALLENGE_ATTEMPT, commitment};
pub use context::{PromptContext, Turn, output_text, user_message};
pub use error::{Error, Result};
pub use failure::Failure;
pub use output::{OutputFormat, OutputValue, output_hash};
pub use sampling::{MAX_TEMPERATURE_MILLI, MAX_TOP_P_MILLI, SamplingSpec};

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

/// Largest prompt data a request may hold in storage, in bytes: the kernel's `MAX_STORAGE_BYTES`,
/// one IPFS block (a 256 KiB UnixFS chunk), so the raw CIDv1 of its sha256 is its IPFS id.
pub const MAX_STORAGE_BYTES: u64 = 262_144;

/// Most options a choice format may list: the kernel's `MAX_CHOICES`.
pub const MAX_CHOICES: usize = 256;
