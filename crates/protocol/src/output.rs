//! Output formats (DESIGN §5.3) and the canonical bytes of an answer.

use alloy_primitives::{B256, Bytes, I256, U256};
use alloy_sol_types::SolValue;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The shape an answer must take (DESIGN §5.3), with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Free UTF-8 text.
    Text,
    /// `true` or `false`.
    Bool,
    /// One of 2..=256 non-empty, distinct options; the answer is the option's index.
    Choice(Vec<String>),
    /// An unsigned integer in `[min, max]`.
    Uint {
        /// Smallest allowed value.
        min: U256,
        /// Largest allowed value.
        max: U256,
    },
    /// A signed integer in `[min, max]`.
    Int {
        /// Smallest allowed value.
        min: I256,
        /// Largest allowed value.
        max: I256,
    },
}

impl OutputFormat {
    /// The format's tag in the contracts' `FormatKind` enum.
    pub const fn kind(&self) -> u8 {
        match self {
            Self::Text => 0,
            Self::Bool => 1,
            Self::Choice(_) => 2,
            Self::Uint { .. } => 3,
            Self::Int { .. } => 4,
        }
    }

    /// The format's name, as used in messages.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Bool => "bool",
            Self::Choice(_) => "choice",
            Self::Uint { .. } => "uint",
            Self::Int { .. } => "int",
        }
    }

    /// The `options` bytes of the request: empty for text and bool, `abi.encode(string[])` for a
    /// choice, `abi.encode(min, max)` for integers.
    pub fn options(&self) -> Vec<u8> {
        match self {
            Self::Text | Self::Bool => Vec::new(),
            Self::Choice(choices) => choices.abi_encode(),
            Self::Uint { min, max } => (*min, *max).abi_encode_params(),
            Self::Int { min, max } => (*min, *max).abi_encode_params(),
        }
    }

    /// Reads a format from its contract tag and options, accepting exactly what the kernel's
    /// `infer` accepts (`_checkFormat`, `choiceCount`): no options for text and bool;
    /// `abi.encode(string[])` of 2 to [`MAX_CHOICES`](crate::MAX_CHOICES) non-empty options for a
    /// choice; exactly two words with `min ≤ max` for integers. Options the kernel cannot afford
    /// to check (two equal choices) are left to [`OutputFormat::validate`].
    pub fn from_parts(kind: u8, options: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidFormat { reason };
        let format = match kind {
            0 | 1 if !options.is_empty() => {
                return Err(invalid(format!(
                    "format {kind} takes no options, got {} bytes",
                    options.len()
                )));
            }
            0 => Self::Text,
            1 => Self::Bool,
            2 => {
                // Solidity's `string` is any bytes: options that are not UTF-8 are read with
                // U+FFFD in place of each bad sequence, the same on every worker (two options
                // that become equal so are then refused by `validate`).
                let choices: Vec<String> = Vec::<Bytes>::abi_decode(options)
                    .map_err(|e| {
                        invalid(format!("choice options are not abi.encode(string[]): {e}"))
                    })?
                    .iter()
                    .map(|option| String::from_utf8_lossy(option).into_owned())
                    .collect();
                if !(2..=crate::MAX_CHOICES).contains(&choices.len()) {
                    return Err(invalid(format!(
                        "a choice needs 2 to {} options, got {}",
                        crate::MAX_CHOICES,
                        choices.len()
                    )));
                }
                if let Some(i) = choices.iter().position(String::is_empty) {
                    return Err(invalid(format!("choice option {i} is empty")));
                }
                Self::Choice(choices)
            }
            3 | 4 if options.len() != 64 => {
                return Err(invalid(format!(
                    "integer options are two 32-byte words, got {} bytes",
                    options.len()
                )));
            }
            3 => {
                let (min, max) = <(U256, U256)>::abi_decode_params(options)
                    .map_err(|e| invalid(format!("uint options are not (uint256,uint256): {e}")))?;
                Self::Uint { min, max }
            }
            4 => {
                let (min, max) = <(I256, I256)>::abi_decode_params(options)
                    .map_err(|e| invalid(format!("int options are not (int256,int256): {e}")))?;
                Self::Int { min, max }
            }
            other => return Err(Error::UnknownFormatKind(other)),
        };
        if let Self::Uint { .. } | Self::Int { .. } = format {
            format.validate()?;
        }
        Ok(format)
    }
}

/// A decoded answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputValue {
    /// Text output.
    Text(String),
    /// Bool output.
    Bool(bool),
    /// Index of the chosen option.
    Choice(u64),
    /// Unsigned integer output.
    Uint(U256),
    /// Signed integer output.
    Int(I256),
}

impl OutputValue {
    /// The canonical bytes revealed and hashed (DESIGN §5.3): UTF-8 for text,
    /// `abi.encode(bool)`, `abi.encode(uint256 index)`, `abi.encode(uint256)`,
    /// `abi.encode(int256)`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Text(text) => text.as_bytes().to_vec(),
            Self::Bool(value) => value.abi_encode(),
            Self::Choice(index) => U256::from(*index).abi_encode(),
            Self::Uint(value) => value.abi_encode(),
            Self::Int(value) => value.abi_encode(),
        }
    }

    /// Decodes canonical bytes under `format`, rejecting anything that is not the exact
    /// canonical encoding of a value the format allows (so two different byte strings never
    /// mean the same answer). A [failure answer](crate::Failure) is not a value of any format.
    pub fn decode(format: &OutputFormat, bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidOutput { format: format.name(), reason };
        if let OutputFormat::Text = format {
            return String::from_utf8(bytes.to_vec())
                .map(Self::Text)
                .map_err(|e| invalid(format!("not UTF-8: {e}")));
        }
        let word: [u8; 32] = bytes.try_into().map_err(|_| {
            invalid(format!("expected one 32-byte word, got {} bytes", bytes.len()))
        })?;
        let unsigned = U256::from_be_bytes(word);
        match format {
            OutputFormat::Text => unreachable!("handled above"),
            OutputFormat::Bool if unsigned > U256::from(1) => {
                Err(invalid(format!("{unsigned} is not 0 or 1")))
            }
            OutputFormat::Bool => Ok(Self::Bool(unsigned == U256::from(1))),
            OutputFormat::Choice(choices) => {
                if unsigned >= U256::from(choices.len()) {
                    return Err(invalid(format!(
                        "index {unsigned} is out of {} options",
                        choices.len()
                    )));
                }
                Ok(Self::Choice(unsigned.to::<u64>()))
            }
            OutputFormat::Uint { min, max } => {
                if unsigned < *min || unsigned > *max {
                    return Err(invalid(format!("{unsigned} is outside [{min}, {max}]")));
                }
                Ok(Self::Uint(unsigned))
            }
            OutputFormat::Int { min, max } => {
                let signed = I256::from_raw(unsigned);
                if signed < *min || signed > *max {
                    return Err(invalid(format!("{signed} is outside [{min}, {max}]")));
                }
                Ok(Self::Int(signed))
            }
        }
    }
}

/// sha256 of canonical output bytes: what a worker commits to and reveals.
pub fn output_hash(output: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(output)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encodings_are_abi_words() {
        assert_eq!(OutputValue::Bool(true).encode(), U256::from(1).to_be_bytes::<32>().to_vec());
        assert_eq!(OutputValue::Choice(2).encode(), U256::from(2).to_be_bytes::<32>().to_vec());
        assert_eq!(OutputValue::Int(I256::MINUS_ONE).encode(), vec![0xff; 32]);
        assert_eq!(OutputValue::Text("héllo".into()).encode(), "héllo".as_bytes());
    }

    #[test]
    fn decode_accepts_only_canonical_values_in_range() {
        let uint = OutputFormat::Uint { min: U256::from(1), max: U256::from(10) };
        assert_eq!(
            OutputValue::decode(&uint, &OutputValue::Uint(U256::from(7)).encode()).unwrap(),
            OutputValue::Uint(U256::from(7))
        );
        let err =
            OutputValue::decode(&uint, &OutputValue::Uint(U256::from(11)).encode()).unwrap_err();
        assert_eq!(err.to_string(), "invalid uint output: 11 is outside [1, 10]");
        let err =
            OutputValue::decode(&OutputFormat::Bool, &U256::from(2).abi_encode()).unwrap_err();
        assert_eq!(err.to_string(), "invalid bool output: 2 is not 0 or 1");
        let err = OutputValue::decode(&OutputFormat::Bool, &[1]).unwrap_err();
        assert_eq!(err.to_string(), "invalid bool output: expected one 32-byte word, got 1 bytes");
        let choice = OutputFormat::Choice(vec!["a".into(), "b".into()]);
        assert!(OutputValue::decode(&choice, &OutputValue::Choice(2).encode()).is_err());
        let int =
            OutputFormat::Int { min: I256::try_from(-5).unwrap(), max: I256::try_from(5).unwrap() };
        let minus_three = OutputValue::Int(I256::try_from(-3).unwrap());
        assert_eq!(OutputValue::decode(&int, &minus_three.encode()).unwrap(), minus_three);
        assert!(OutputValue::decode(&OutputFormat::Text, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn format_options_round_trip() {
        for format in [
            OutputFormat::Text,
            OutputFormat::Bool,
            OutputFormat::Choice(vec!["yes".into(), "no".into(), "maybe".into()]),
            OutputFormat::Uint { min: U256::ZERO, max: U256::from(100) },
            OutputFormat::Int { min: I256::try_from(-1).unwrap(), max: I256::ONE },
        ] {
            assert_eq!(OutputFormat::from_parts(format.kind(), &format.options()).unwrap(), format);
        }
        assert_eq!(OutputFormat::Uint { min: U256::ZERO, max: U256::from(1) }.options().len(), 64);
    }
}
