//! Canonical failure answers: what an honest committee agrees on when a prompt cannot run.
//!
//! # The rule
//!
//! A prompt whose failure follows from what the chain records (its context, format and limits
//! and the registered model file) fails the same way on every honest worker, because the engine
//! is bit-identical. Such a prompt is answered, committed and revealed like any other, with the
//! five bytes `0xff "AIK" code` ([`Failure::encode`]), so the committee agrees, is paid, and the
//! requester pays the fee for the work. Those bytes are never UTF-8 and never one 32-byte word,
//! so no format's answer can be mistaken for one.
//!
//! A failure that depends on the worker (input never published or not fetchable by it, a model
//! file it cannot read, an RPC outage) is never a failure answer: the worker does not commit, and
//! the kernel closes a prompt that fewer than a quorum committed to as unavailable without
//! penalizing anyone. An attacker who serves the data to one member only therefore cannot split
//! an honest committee into "answer" and "failure" camps.

/// Why a prompt cannot run, as every honest worker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Failure {
    /// The prompt (without any history) plus `maxTokens` does not fit the model's context.
    ContextTooLong = 1,
    /// The output format cannot be answered by the model (e.g. a choice listing one option
    /// twice, which the kernel accepts but no answer can tell apart).
    InvalidFormat = 2,
    /// Constrained decoding ended without a complete value (`maxTokens` too small for any
    /// answer in range, or no token continues the answer).
    NoAnswer = 3,
    /// The output is longer than [`MAX_OUTPUT_BYTES`](crate::MAX_OUTPUT_BYTES).
    OutputTooLong = 4,
    /// The input cannot be processed: the tokenizer or chat template refuses it, or the forward
    /// pass produced a non-finite logit.
    Unprocessable = 5,
}

/// The prefix of every failure answer: `0xff` (never UTF-8) then `AIK`.
const PREFIX: [u8; 4] = [0xff, b'A', b'I', b'K'];

impl Failure {
    /// Every failure, in code order.
    pub const ALL: [Self; 5] = [
        Self::ContextTooLong,
        Self::InvalidFormat,
        Self::NoAnswer,
        Self::OutputTooLong,
        Self::Unprocessable,
    ];

    /// The failure's code (1..=5), as the consumer base's `_failureCode` returns it.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The canonical answer bytes: `0xff "AIK" code`.
    pub const fn encode(self) -> [u8; 5] {
        [PREFIX[0], PREFIX[1], PREFIX[2], PREFIX[3], self.code()]
    }

    /// The failure an output is, if it is one.
    pub fn decode(output: &[u8]) -> Option<Self> {
        let (prefix, code) = output.split_first_chunk::<4>()?;
        if *prefix != PREFIX || code.len() != 1 {
            return None;
        }
        Self::ALL.into_iter().find(|f| f.code() == code[0])
    }

    /// What the failure means, for people.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::ContextTooLong => "the prompt does not fit the model's context",
            Self::InvalidFormat => "the output format cannot be answered by the model",
            Self::NoAnswer => "no complete answer within max tokens",
            Self::OutputTooLong => "the output is longer than a reveal may carry",
            Self::Unprocessable => "the input cannot be processed by the model",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failure {}: {}", self.code(), self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OutputFormat, OutputValue};
    use alloy_primitives::{I256, U256};

    #[test]
    fn failure_answers_round_trip_and_reject_everything_else() {
        for failure in Failure::ALL {
            let bytes = failure.encode();
            assert_eq!(bytes[..4], [0xff, 0x41, 0x49, 0x4b]);
            assert_eq!(Failure::decode(&bytes), Some(failure));
            // One byte more or less, or another code, is not a failure answer.
            assert_eq!(Failure::decode(&bytes[..4]), None);
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert_eq!(Failure::decode(&longer), None);
        }
        assert_eq!(Failure::decode(&[0xff, b'A', b'I', b'K', 0]), None);
        assert_eq!(Failure::decode(&[0xff, b'A', b'I', b'K', 6]), None);
        assert_eq!(Failure::decode(b"hello"), None);
    }

    #[test]
    fn no_format_accepts_a_failure_answer() {
        let formats = [
            OutputFormat::Text,
            OutputFormat::Bool,
            OutputFormat::Choice(vec!["a".into(), "b".into()]),
            OutputFormat::Uint { min: U256::ZERO, max: U256::MAX },
            OutputFormat::Int { min: I256::MIN, max: I256::MAX },
        ];
        for failure in Failure::ALL {
            for format in &formats {
                assert!(
                    OutputValue::decode(format, &failure.encode()).is_err(),
                    "{failure} decodes as {}",
                    format.name()
                );
            }
        }
    }
}
