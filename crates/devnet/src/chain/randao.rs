//! The source of each block's `prevrandao` (the header's `mix_hash`).
//!
//! A value derived from public data (such as `keccak256(parent hash)`) would let anyone predict
//! the next block's prevrandao, and with it the hash of the block their own transaction lands in:
//! the dev chain mines one block per transaction, so a submitter could grind that hash.
//! Contracts use `blockhash` of such blocks as randomness, so the value must be unpredictable.
//!
//! Each block therefore takes the next 32 bytes of a ChaCha20 stream keyed by a secret 32-byte
//! seed drawn from the operating system when the chain is created. The seed and the stream
//! position are persisted with the chain's other metadata (see `store`), so a chain reloaded
//! from its state dir continues the same stream instead of repeating values; they are never
//! served over JSON-RPC and never printed (`Debug` is redacted).

use std::fmt;

use alloy::primitives::B256;
use rand_chacha::{
    ChaCha20Rng,
    rand_core::{RngCore, SeedableRng},
};

use crate::{Error, Result};

/// Persisted form of a [`Randao`]: the secret seed and how far the stream has been read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RandaoState {
    /// The ChaCha20 key. Secret.
    pub(crate) seed: [u8; 32],
    /// Position in the stream, in 32-bit words.
    pub(crate) word_pos: u128,
}

impl RandaoState {
    /// Encoded length: seed ‖ word position (16 bytes, big-endian).
    pub(crate) const LEN: usize = 48;

    pub(crate) fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(&self.seed);
        out[32..].copy_from_slice(&self.word_pos.to_be_bytes());
        out
    }

    /// `None` when `bytes` is not an encoded state.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        let seed = bytes[..32].try_into().expect("32 bytes");
        let word_pos = u128::from_be_bytes(bytes[32..].try_into().expect("16 bytes"));
        Some(Self { seed, word_pos })
    }
}

impl fmt::Debug for RandaoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandaoState")
            .field("seed", &"<secret>")
            .field("word_pos", &self.word_pos)
            .finish()
    }
}

/// The chain's secret prevrandao stream. See the module docs.
#[derive(Clone)]
pub(crate) struct Randao {
    rng: ChaCha20Rng,
}

impl Randao {
    /// A fresh stream keyed by operating-system randomness.
    pub(crate) fn from_os() -> Result<Self> {
        let rng = ChaCha20Rng::try_from_os_rng()
            .map_err(|e| Error::Config(format!("cannot read OS randomness for prevrandao: {e}")))?;
        Ok(Self { rng })
    }

    /// Resumes a persisted stream where it stopped.
    pub(crate) fn restore(state: RandaoState) -> Self {
        let mut rng = ChaCha20Rng::from_seed(state.seed);
        rng.set_word_pos(state.word_pos);
        Self { rng }
    }

    /// What to persist to resume this stream later.
    pub(crate) fn state(&self) -> RandaoState {
        RandaoState { seed: self.rng.get_seed(), word_pos: self.rng.get_word_pos() }
    }

    /// The prevrandao of the next block: the next 32 bytes of the stream.
    pub(crate) fn next_value(&mut self) -> B256 {
        let mut out = B256::ZERO;
        self.rng.fill_bytes(out.as_mut_slice());
        out
    }
}

impl fmt::Debug for Randao {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Randao").field("word_pos", &self.rng.get_word_pos()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_stream_continues_where_it_stopped() {
        let mut original = Randao::from_os().unwrap();
        original.next_value();
        let state = original.state();
        let mut restored = Randao::restore(RandaoState::from_bytes(&state.to_bytes()).unwrap());
        for _ in 0..5 {
            assert_eq!(restored.next_value(), original.next_value());
        }
    }

    #[test]
    fn debug_does_not_print_the_seed() {
        let randao = Randao::from_os().unwrap();
        let state = randao.state();
        let hex = B256::from(state.seed).to_string();
        for printed in [format!("{randao:?}"), format!("{state:?}")] {
            assert!(!printed.contains(&hex[2..10]), "{printed}");
            assert!(!printed.contains(&format!("{:?}", state.seed)), "{printed}");
        }
    }
}
