//! Answers as text: the spec syntax of formats, the text form of every answer, and the prefix
//! rule constrained decoding follows.
//!
//! | format | text of an answer | canonical bytes ([`OutputValue::encode`]) |
//! |---|---|---|
//! | `text` | anything | the UTF-8 text |
//! | `bool` | `true` / `false` | `abi.encode(bool)` |
//! | `choice(a\|b\|…)` | one option verbatim | `abi.encode(uint256 index)` |
//! | `uint(min,max)` | decimal, no sign, no leading zeros | `abi.encode(uint256)` |
//! | `int(min,max)` | decimal, `-` for negatives, no leading zeros, no `-0` | `abi.encode(int256)` |
//!
//! A model generates text; a token is allowed only while the text stays a prefix of some answer
//! ([`OutputFormat::is_valid_prefix`]), the end of generation only once it is one
//! ([`OutputFormat::is_complete`]), and [`OutputValue::from_text`] turns it into the value whose
//! bytes are committed. Integers are checked with 256-bit arithmetic, so bounds may be anything
//! the ABI types hold.

use std::{fmt, str::FromStr};

use alloy_primitives::{I256, U256};

use crate::{Error, OutputFormat, OutputValue, Result};

/// 2²⁵⁵: the magnitude of int256's minimum, and the offset that orders int256 values as
/// unsigned keys (`key(v) = v + 2²⁵⁵`).
const SIGN_BIT: U256 = U256::from_limbs([0, 0, 0, 1 << 63]);

/// A canonical decimal magnitude: ASCII digits, no leading zero unless it is `0`, within 256
/// bits.
fn magnitude(digits: &[u8]) -> Option<U256> {
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits == b"0" || digits[0] != b'0');
    if !canonical {
        return None;
    }
    digits.iter().try_fold(U256::ZERO, |value, &d| {
        value.checked_mul(U256::from(10))?.checked_add(U256::from(d - b'0'))
    })
}

/// The canonical decimal text of an int256, or `None`.
fn signed(text: &[u8]) -> Option<I256> {
    match text.strip_prefix(b"-") {
        Some(digits) => {
            let m = magnitude(digits).filter(|m| !m.is_zero() && *m <= SIGN_BIT)?;
            Some(I256::from_raw(m.wrapping_neg()))
        }
        None => magnitude(text).filter(|m| *m < SIGN_BIT).map(I256::from_raw),
    }
}

/// Orders int256 values as unsigned integers.
fn key(value: I256) -> U256 {
    value.into_raw() ^ SIGN_BIT
}

/// Whether some answer that starts with the digits `prefix` (not empty, no sign) has a
/// magnitude in the range `reaches` accepts: `prefix` itself, or `prefix` followed by k more
/// digits, which covers `[p·10ᵏ, p·10ᵏ + 10ᵏ − 1]`. No answer's magnitude exceeds `limit`, so
/// the search stops there (constrained decoding asks this for every candidate token).
fn digits_reach(prefix: &[u8], limit: U256, reaches: impl Fn(U256, U256) -> bool) -> bool {
    let Some(p) = magnitude(prefix) else { return false };
    if p.is_zero() {
        return reaches(p, p); // "0" cannot be extended
    }
    let mut scale = U256::from(1);
    loop {
        let Some(low) = p.checked_mul(scale).filter(|low| *low <= limit) else { return false };
        let high = low.saturating_add(scale - U256::from(1));
        if reaches(low, high) {
            return true;
        }
        match scale.checked_mul(U256::from(10)) {
            Some(next) => scale = next,
            None => return false,
        }
    }
}

impl OutputFormat {
    /// A choice among `options`: 2 to 256 options, none empty, no two alike.
    pub fn choice(options: Vec<String>) -> Result<Self> {
        let format = Self::Choice(options);
        format.validate()?;
        Ok(format)
    }

    /// An unsigned range; `min ≤ max`.
    pub fn uint(min: U256, max: U256) -> Result<Self> {
        let format = Self::Uint { min, max };
        format.validate()?;
        Ok(format)
    }

    /// A signed range; `min ≤ max`.
    pub fn int(min: I256, max: I256) -> Result<Self> {
        let format = Self::Int { min, max };
        format.validate()?;
        Ok(format)
    }

    /// Whether an answer of this format can be told apart from every other: what the kernel
    /// checks at submission ([`OutputFormat::from_parts`]) plus distinct choice options, which
    /// the kernel does not check (it would cost gas quadratic in the options). A format that
    /// fails here is answered with [`Failure::InvalidFormat`](crate::Failure::InvalidFormat).
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidFormat { reason });
        match self {
            Self::Text | Self::Bool => Ok(()),
            Self::Choice(options) => {
                if !(2..=crate::MAX_CHOICES).contains(&options.len()) {
                    return invalid(format!(
                        "a choice needs 2 to {} options, got {}",
                        crate::MAX_CHOICES,
                        options.len()
                    ));
                }
                for (i, option) in options.iter().enumerate() {
                    if option.is_empty() {
                        return invalid(format!("choice option {i} is empty"));
                    }
                    if options[..i].contains(option) {
                        return invalid(format!("choice option '{option}' appears twice"));
                    }
                }
                Ok(())
            }
            Self::Uint { min, max } if min > max => invalid(format!("uint range {min} > {max}")),
            Self::Int { min, max } if min > max => invalid(format!("int range {min} > {max}")),
            Self::Uint { .. } | Self::Int { .. } => Ok(()),
        }
    }

    /// Whether generation is constrained at all.
    pub const fn is_constrained(&self) -> bool {
        !matches!(self, Self::Text)
    }

    /// Whether a token with these bytes could ever be part of an answer (a cheap filter of the
    /// vocabulary before the exact prefix check).
    pub fn token_may_appear(&self, bytes: &[u8]) -> bool {
        !bytes.is_empty()
            && match self {
                Self::Text => true,
                Self::Bool => bytes.iter().all(|b| b"truefals".contains(b)),
                Self::Choice(options) => {
                    options.iter().any(|o| o.as_bytes().windows(bytes.len()).any(|w| w == bytes))
                }
                Self::Uint { .. } => bytes.iter().all(u8::is_ascii_digit),
                Self::Int { .. } => bytes.iter().all(|b| b.is_ascii_digit() || *b == b'-'),
            }
    }

    /// Whether `text` is an answer or can be extended into one.
    pub fn is_valid_prefix(&self, text: &[u8]) -> bool {
        match self {
            Self::Text => true,
            Self::Bool => b"true".starts_with(text) || b"false".starts_with(text),
            Self::Choice(options) => options.iter().any(|o| o.as_bytes().starts_with(text)),
            Self::Uint { min, max } => {
                text.is_empty() || digits_reach(text, *max, |low, high| low <= *max && high >= *min)
            }
            Self::Int { min, max } => {
                let (min, max) = (key(*min), key(*max));
                match text.strip_prefix(b"-") {
                    _ if text.is_empty() => true,
                    Some([]) => min < SIGN_BIT,
                    // −high..=−low, with magnitudes up to 2²⁵⁵.
                    // Magnitudes of negatives reach |min|; of positives, max.
                    Some(digits) => {
                        digits_reach(digits, SIGN_BIT.saturating_sub(min), |low, high| {
                            !low.is_zero()
                                && low <= SIGN_BIT
                                && SIGN_BIT - high.min(SIGN_BIT) <= max
                                && SIGN_BIT - low >= min
                        })
                    }
                    None => digits_reach(text, max.saturating_sub(SIGN_BIT), |low, high| {
                        low < SIGN_BIT
                            && SIGN_BIT + low <= max
                            && SIGN_BIT + high.min(SIGN_BIT - U256::from(1)) >= min
                    }),
                }
            }
        }
    }

    /// Whether `text` is a complete answer.
    pub fn is_complete(&self, text: &[u8]) -> bool {
        OutputValue::from_text(self, text).is_ok()
    }

    /// Whether the answer `text` could still be extended into another answer (if not,
    /// generation stops without asking the model).
    pub fn can_extend(&self, text: &[u8]) -> bool {
        match self {
            Self::Text => true,
            Self::Bool => false,
            Self::Choice(options) => {
                options.iter().any(|o| o.len() > text.len() && o.as_bytes().starts_with(text))
            }
            Self::Uint { .. } | Self::Int { .. } => (b'0'..=b'9').any(|d| {
                let mut longer = text.to_vec();
                longer.push(d);
                self.is_valid_prefix(&longer)
            }),
        }
    }
}

impl OutputValue {
    /// The value whose text is `text` under `format`, or why there is none.
    pub fn from_text(format: &OutputFormat, text: &[u8]) -> Result<Self> {
        let shown = String::from_utf8_lossy(text);
        let invalid = |why: &str| Error::InvalidOutput {
            format: format.name(),
            reason: format!("'{shown}' {why}"),
        };
        match format {
            OutputFormat::Text => std::str::from_utf8(text)
                .map(|t| Self::Text(t.to_owned()))
                .map_err(|_| invalid("is not UTF-8")),
            OutputFormat::Bool => match text {
                b"true" => Ok(Self::Bool(true)),
                b"false" => Ok(Self::Bool(false)),
                _ => Err(invalid("is not true or false")),
            },
            OutputFormat::Choice(options) => options
                .iter()
                .position(|o| o.as_bytes() == text)
                .map(|index| Self::Choice(index as u64))
                .ok_or_else(|| invalid("is not one of the options")),
            OutputFormat::Uint { min, max } => {
                let value = magnitude(text).ok_or_else(|| invalid("is not a canonical decimal"))?;
                if value < *min || value > *max {
                    return Err(invalid(&format!("is outside [{min}, {max}]")));
                }
                Ok(Self::Uint(value))
            }
            OutputFormat::Int { min, max } => {
                let value =
                    signed(text).ok_or_else(|| invalid("is not a canonical int256 decimal"))?;
                if value < *min || value > *max {
                    return Err(invalid(&format!("is outside [{min}, {max}]")));
                }
                Ok(Self::Int(value))
            }
        }
    }

    /// The value as text under `format` (the inverse of [`OutputValue::from_text`]): what a
    /// later turn of a topic shows as the assistant's message.
    pub fn to_text(&self, format: &OutputFormat) -> String {
        match (self, format) {
            (Self::Text(text), _) => text.clone(),
            (Self::Bool(value), _) => value.to_string(),
            (Self::Choice(index), OutputFormat::Choice(options)) => {
                options.get(*index as usize).cloned().unwrap_or_else(|| index.to_string())
            }
            (Self::Choice(index), _) => index.to_string(),
            (Self::Uint(value), _) => value.to_string(),
            (Self::Int(value), _) => value.to_string(),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text => f.write_str("text"),
            Self::Bool => f.write_str("bool"),
            Self::Choice(options) => write!(f, "choice({})", options.join("|")),
            Self::Uint { min, max } => write!(f, "uint({min},{max})"),
            Self::Int { min, max } => write!(f, "int({min},{max})"),
        }
    }
}

/// `text`, `bool`, `choice(a|b|…)`, `uint(min,max)` or `int(min,max)`, bounds as canonical
/// decimals; the format must [validate](OutputFormat::validate).
impl FromStr for OutputFormat {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidSpec { spec: spec.to_owned(), reason };
        let trimmed = spec.trim();
        match trimmed {
            "text" => return Ok(Self::Text),
            "bool" => return Ok(Self::Bool),
            _ => {}
        }
        let (name, args) =
            trimmed.strip_suffix(')').and_then(|s| s.split_once('(')).ok_or_else(|| {
                bad("expected text, bool, choice(a|b), uint(min,max) or int(min,max)".into())
            })?;
        let bounds = || {
            let (min, max) =
                args.split_once(',').ok_or_else(|| bad("expected two bounds".into()))?;
            Ok::<_, Error>((min.trim().as_bytes(), max.trim().as_bytes()))
        };
        let not_decimal = |b: &[u8], kind: &str| {
            bad(format!("bound '{}' is not a canonical {kind} decimal", String::from_utf8_lossy(b)))
        };
        let format = match name {
            "choice" => Self::Choice(args.split('|').map(str::to_owned).collect()),
            "uint" => {
                let (min, max) = bounds()?;
                Self::Uint {
                    min: magnitude(min).ok_or_else(|| not_decimal(min, "uint256"))?,
                    max: magnitude(max).ok_or_else(|| not_decimal(max, "uint256"))?,
                }
            }
            "int" => {
                let (min, max) = bounds()?;
                Self::Int {
                    min: signed(min).ok_or_else(|| not_decimal(min, "int256"))?,
                    max: signed(max).ok_or_else(|| not_decimal(max, "int256"))?,
                }
            }
            other => return Err(bad(format!("unknown format name '{other}'"))),
        };
        format.validate().map_err(|e| bad(e.to_string()))?;
        Ok(format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> OutputFormat {
        spec.parse().unwrap()
    }

    #[test]
    fn specs_parse_and_print() {
        for spec in ["text", "bool", "choice(red|green|blue)", "uint(0,100)", "int(-5,5)"] {
            assert_eq!(parse(spec).to_string(), spec);
        }
        for bad in [
            "float",
            "uint(5,1)",
            "uint(01,3)",
            "int(-0,3)",
            "choice(a|a)",
            "choice()",
            "choice(a)",
            "uint(1)",
            "uint(+1,2)",
        ] {
            assert!(bad.parse::<OutputFormat>().is_err(), "{bad}");
        }
        let err = "uint(5,1)".parse::<OutputFormat>().unwrap_err().to_string();
        assert_eq!(err, "output format 'uint(5,1)': invalid format options: uint range 5 > 1");
        let max = U256::MAX.to_string();
        assert_eq!(
            parse(&format!("uint(0,{max})")),
            OutputFormat::Uint { min: U256::ZERO, max: U256::MAX }
        );
        assert!(format!("uint(0,{max}0)").parse::<OutputFormat>().is_err());
        let min = I256::MIN.to_string();
        assert_eq!(
            parse(&format!("int({min},0)")),
            OutputFormat::Int { min: I256::MIN, max: I256::ZERO }
        );
        assert!(format!("int(-{}1,0)", &min[1..]).parse::<OutputFormat>().is_err());
        assert!(format!("int(0,{})", &min[1..]).parse::<OutputFormat>().is_err());
    }

    #[test]
    fn text_answers_become_canonical_values() {
        let value = |spec: &str, text: &str| OutputValue::from_text(&parse(spec), text.as_bytes());
        assert_eq!(value("bool", "true").unwrap(), OutputValue::Bool(true));
        assert_eq!(value("choice(a|b|c)", "c").unwrap(), OutputValue::Choice(2));
        assert_eq!(value("uint(0,1000)", "258").unwrap(), OutputValue::Uint(U256::from(258)));
        let int = value("int(-300,300)", "-258").unwrap();
        assert_eq!(int.encode(), [vec![0xff; 30], vec![0xfe, 0xfe]].concat());
        let min = I256::MIN.to_string();
        let lowest = OutputValue::from_text(&parse(&format!("int({min},0)")), min.as_bytes());
        assert_eq!(lowest.unwrap().encode(), [vec![0x80], vec![0; 31]].concat());
        for (spec, text) in [
            ("uint(0,1000)", "1001"),
            ("uint(0,1000)", "007"),
            ("int(-5,5)", "-0"),
            ("bool", "True"),
        ] {
            assert!(value(spec, text).is_err(), "{spec} {text}");
        }
        let err = value("uint(0,1000)", "1001").unwrap_err().to_string();
        assert_eq!(err, "invalid uint output: '1001' is outside [0, 1000]");
        for (spec, text) in
            [("bool", "false"), ("choice(x|y)", "y"), ("uint(3,9)", "7"), ("int(-9,9)", "-7")]
        {
            let format = parse(spec);
            let value = OutputValue::from_text(&format, text.as_bytes()).unwrap();
            assert_eq!(value.to_text(&format), text);
        }
    }

    #[test]
    fn prefixes_follow_the_range() {
        let u = parse("uint(10,250)");
        for (p, ok) in [
            ("", true),
            ("1", true),
            ("2", true),
            ("25", true),
            ("26", true),
            ("260", false),
            ("3", true),
            ("30", true),
            ("300", false),
            ("0", false),
            ("2500", false),
        ] {
            assert_eq!(u.is_valid_prefix(p.as_bytes()), ok, "uint prefix {p}");
        }
        assert!(!u.is_complete(b"3") && u.is_complete(b"30") && !u.can_extend(b"30"));
        assert!(u.can_extend(b"25"));
        let i = parse("int(-20,5)");
        for (p, ok) in [
            ("-", true),
            ("-2", true),
            ("-20", true),
            ("-21", false),
            ("-3", true),
            ("-30", false),
            ("6", false),
            ("5", true),
            ("0", true),
            ("-0", false),
            ("-200", false),
        ] {
            assert_eq!(i.is_valid_prefix(p.as_bytes()), ok, "int prefix {p}");
        }
        assert!(!parse("int(3,7)").is_valid_prefix(b"-"));
        let c = parse("choice(yes|yes please|no)");
        assert!(c.is_complete(b"yes") && c.can_extend(b"yes") && !c.is_valid_prefix(b"yep"));
        assert!(
            OutputFormat::Bool.is_valid_prefix(b"fa") && !OutputFormat::Bool.is_valid_prefix(b"tx")
        );
    }

    #[test]
    fn prefixes_reach_the_ends_of_the_256_bit_ranges() {
        let full = OutputFormat::Uint { min: U256::ZERO, max: U256::MAX };
        let max = U256::MAX.to_string();
        assert!(full.is_valid_prefix(max.as_bytes()) && full.is_complete(max.as_bytes()));
        assert!(!full.can_extend(max.as_bytes()));
        let past = (U256::MAX / U256::from(10) + U256::from(1)).to_string();
        assert!(!full.is_valid_prefix(format!("{past}0").as_bytes()));
        let int = OutputFormat::Int { min: I256::MIN, max: I256::MAX };
        let (min, top) = (I256::MIN.to_string(), I256::MAX.to_string());
        assert!(int.is_complete(min.as_bytes()) && int.is_complete(top.as_bytes()));
        let below = format!("-{}", SIGN_BIT + U256::from(1));
        assert!(!int.is_valid_prefix(below.as_bytes()), "{below}");
        let above = (SIGN_BIT).to_string();
        assert!(!int.is_valid_prefix(above.as_bytes()), "{above}");
    }

    /// Every prefix of every answer is a valid prefix, and a prefix is valid only if some
    /// answer of up to a few more digits starts with it (checked by enumeration on small
    /// ranges).
    #[test]
    fn the_prefix_rule_matches_enumeration() {
        for (min, max) in
            [(-130i64, -7i64), (-12, 12), (0, 0), (5, 5), (-1, 0), (3, 1200), (-999, -100)]
        {
            let format = OutputFormat::Int {
                min: I256::try_from(min).unwrap(),
                max: I256::try_from(max).unwrap(),
            };
            let answers: Vec<String> = (min..=max).map(|v| v.to_string()).collect();
            let mut prefixes: Vec<String> = vec![String::new(), "-".into()];
            for n in 0..2000 {
                prefixes.push(n.to_string());
                prefixes.push(format!("-{n}"));
                prefixes.push(format!("0{n}"));
            }
            for p in &prefixes {
                let expected = answers.iter().any(|a| a.starts_with(p.as_str()));
                assert_eq!(format.is_valid_prefix(p.as_bytes()), expected, "{format} prefix '{p}'");
                let complete = answers.contains(p);
                assert_eq!(format.is_complete(p.as_bytes()), complete, "{format} answer '{p}'");
            }
            if min >= 0 {
                let unsigned = OutputFormat::Uint { min: U256::from(min), max: U256::from(max) };
                for p in &prefixes {
                    let expected = answers.iter().any(|a| a.starts_with(p.as_str()));
                    assert_eq!(
                        unsigned.is_valid_prefix(p.as_bytes()),
                        expected,
                        "{unsigned} prefix '{p}'"
                    );
                }
            }
        }
    }
}
