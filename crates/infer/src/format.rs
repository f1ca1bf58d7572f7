//! Output formats: constrained decoding and the canonical encodings of DESIGN §5.3.
//!
//! A format says which byte strings are complete outputs and which are prefixes of one. During
//! generation only tokens that keep the output a valid prefix are allowed (control tokens never
//! are), an end-of-generation token only once the output is complete, and generation stops as
//! soon as the output is complete and nothing can extend it. So the text always parses, and the
//! result is encoded canonically:
//!
//! | format | text | bytes |
//! |---|---|---|
//! | `text` | anything | the UTF-8 text (invalid UTF-8 replaced by U+FFFD) |
//! | `bool` | `true` / `false` | `abi.encode(bool)` |
//! | `choice(a\|b\|…)` | one option verbatim | `abi.encode(uint256 index)` |
//! | `uint(min,max)` | decimal, no sign, no leading zeros | `abi.encode(uint256)` |
//! | `int(min,max)` | decimal, `-` for negatives, no leading zeros, no `-0` | `abi.encode(int256)` |
//!
//! Bounds are decimal strings of any size within the 256-bit ABI types.

use crate::{Error, Result};
use std::cmp::Ordering;
use std::fmt;

/// What shape the answer must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// Free text.
    Text,
    /// `true` or `false`.
    Bool,
    /// One of the options, verbatim.
    Choice(Vec<String>),
    /// An unsigned decimal in `[min, max]`.
    Uint {
        /// Lower bound, canonical decimal.
        min: String,
        /// Upper bound, canonical decimal.
        max: String,
    },
    /// A signed decimal in `[min, max]`.
    Int {
        /// Lower bound, canonical decimal (may start with `-`).
        min: String,
        /// Upper bound, canonical decimal.
        max: String,
    },
}

/// 2²⁵⁶ − 1, the largest uint256.
const UINT256_MAX: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";
/// 2²⁵⁵, the magnitude of the smallest int256; int256 max is one less.
const INT256_MIN_MAG: &str =
    "57896044618658097711785492504343953926634992332820282019728792003956564819968";

/// A signed decimal: sign and canonical magnitude.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signed {
    negative: bool,
    magnitude: String,
}

/// Compares canonical unsigned decimals.
fn cmp_mag(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_signed(a: &Signed, b: &Signed) -> Ordering {
    match (a.negative, b.negative) {
        (false, false) => cmp_mag(&a.magnitude, &b.magnitude),
        (true, true) => cmp_mag(&b.magnitude, &a.magnitude),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// Whether `s` is a canonical unsigned decimal (digits, no leading zero unless "0").
fn is_canonical_uint(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn parse_signed(s: &str) -> Option<Signed> {
    let (negative, mag) = match s.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, s),
    };
    (is_canonical_uint(mag) && !(negative && mag == "0"))
        .then(|| Signed { negative, magnitude: mag.to_string() })
}

impl OutputFormat {
    /// Parses `text`, `bool`, `choice(a|b|c)`, `uint(min,max)` or `int(min,max)`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidRequest(format!("output format '{spec}': {why}"));
        let spec_t = spec.trim();
        if spec_t == "text" {
            return Ok(Self::Text);
        }
        if spec_t == "bool" {
            return Ok(Self::Bool);
        }
        let (name, args) =
            spec_t.strip_suffix(')').and_then(|s| s.split_once('(')).ok_or_else(|| {
                bad("expected text, bool, choice(a|b), uint(min,max) or int(min,max)")
            })?;
        match name {
            "choice" => {
                let options: Vec<String> = args.split('|').map(str::to_string).collect();
                Self::choice(options).map_err(|e| bad(&e.to_string()))
            }
            "uint" | "int" => {
                let (min, max) = args.split_once(',').ok_or_else(|| bad("expected two bounds"))?;
                let (min, max) = (min.trim(), max.trim());
                let parsed =
                    if name == "uint" { Self::uint(min, max) } else { Self::int(min, max) };
                parsed.map_err(|e| bad(&e.to_string()))
            }
            _ => Err(bad("unknown format name")),
        }
    }

    /// A choice among `options` (non-empty, distinct, none empty).
    pub fn choice(options: Vec<String>) -> Result<Self> {
        if options.is_empty() || options.iter().any(String::is_empty) {
            return Err(Error::InvalidRequest("choice options must be non-empty".into()));
        }
        for (i, o) in options.iter().enumerate() {
            if options[..i].contains(o) {
                return Err(Error::InvalidRequest(format!("choice option '{o}' appears twice")));
            }
        }
        Ok(Self::Choice(options))
    }

    /// An unsigned range; bounds are canonical decimals with `min ≤ max ≤ 2²⁵⁶−1`.
    pub fn uint(min: &str, max: &str) -> Result<Self> {
        for b in [min, max] {
            if !is_canonical_uint(b) || cmp_mag(b, UINT256_MAX).is_gt() {
                return Err(Error::InvalidRequest(format!(
                    "uint bound '{b}' is not a canonical decimal in the uint256 range"
                )));
            }
        }
        if cmp_mag(min, max).is_gt() {
            return Err(Error::InvalidRequest(format!("uint range min {min} > max {max}")));
        }
        Ok(Self::Uint { min: min.into(), max: max.into() })
    }

    /// A signed range; bounds are canonical decimals within int256 with `min ≤ max`.
    pub fn int(min: &str, max: &str) -> Result<Self> {
        let mut parsed = Vec::new();
        for b in [min, max] {
            let s = parse_signed(b).filter(|s| {
                let limit = cmp_mag(&s.magnitude, INT256_MIN_MAG);
                if s.negative { limit.is_le() } else { limit.is_lt() }
            });
            parsed.push(s.ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "int bound '{b}' is not a canonical decimal in the int256 range"
                ))
            })?);
        }
        if cmp_signed(&parsed[0], &parsed[1]).is_gt() {
            return Err(Error::InvalidRequest(format!("int range min {min} > max {max}")));
        }
        Ok(Self::Int { min: min.into(), max: max.into() })
    }

    /// Whether generation is constrained at all.
    pub fn is_constrained(&self) -> bool {
        !matches!(self, Self::Text)
    }

    /// Whether a token with these bytes could ever be part of an output (a cheap pre-filter of
    /// the vocabulary before the exact prefix check).
    pub(crate) fn token_may_appear(&self, bytes: &[u8]) -> bool {
        match self {
            Self::Text => true,
            Self::Bool => !bytes.is_empty() && bytes.iter().all(|b| b"truefals".contains(b)),
            Self::Choice(opts) => {
                !bytes.is_empty() && opts.iter().any(|o| contains(o.as_bytes(), bytes))
            }
            Self::Uint { .. } => !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit),
            Self::Int { .. } => {
                !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'-')
            }
        }
    }

    /// Whether `out` can still be extended (or is) a complete output.
    pub fn is_valid_prefix(&self, out: &[u8]) -> bool {
        match self {
            Self::Text => true,
            Self::Bool => b"true".starts_with(out) || b"false".starts_with(out),
            Self::Choice(opts) => opts.iter().any(|o| o.as_bytes().starts_with(out)),
            Self::Uint { min, max } => {
                let Ok(p) = std::str::from_utf8(out) else { return false };
                out.is_empty()
                    || (p.bytes().all(|b| b.is_ascii_digit()) && uint_prefix_reaches(p, min, max))
            }
            Self::Int { min, max } => {
                let Ok(p) = std::str::from_utf8(out) else { return false };
                let (min, max) =
                    (parse_signed(min).expect("checked"), parse_signed(max).expect("checked"));
                match p.strip_prefix('-') {
                    _ if p.is_empty() => true,
                    Some("") => min.negative,
                    Some(m) => {
                        m.bytes().all(|b| b.is_ascii_digit())
                            && signed_prefix_reaches(m, true, &min, &max)
                    }
                    None => {
                        p.bytes().all(|b| b.is_ascii_digit())
                            && signed_prefix_reaches(p, false, &min, &max)
                    }
                }
            }
        }
    }

    /// Whether `out` is a complete output.
    pub fn is_complete(&self, out: &[u8]) -> bool {
        match self {
            Self::Text => true,
            Self::Bool => out == b"true" || out == b"false",
            Self::Choice(opts) => opts.iter().any(|o| o.as_bytes() == out),
            Self::Uint { min, max } => std::str::from_utf8(out).is_ok_and(|s| {
                is_canonical_uint(s) && cmp_mag(s, min).is_ge() && cmp_mag(s, max).is_le()
            }),
            Self::Int { min, max } => {
                std::str::from_utf8(out).ok().and_then(parse_signed).is_some_and(|v| {
                    let (min, max) =
                        (parse_signed(min).expect("checked"), parse_signed(max).expect("checked"));
                    cmp_signed(&v, &min).is_ge() && cmp_signed(&v, &max).is_le()
                })
            }
        }
    }

    /// Whether a complete `out` could still be extended into another complete output (if not,
    /// generation stops without asking the model).
    pub(crate) fn can_extend(&self, out: &[u8]) -> bool {
        match self {
            Self::Text => true,
            Self::Bool => false,
            Self::Choice(opts) => {
                opts.iter().any(|o| o.len() > out.len() && o.as_bytes().starts_with(out))
            }
            Self::Uint { .. } | Self::Int { .. } => (0..10u8).any(|d| {
                let mut longer = out.to_vec();
                longer.push(b'0' + d);
                self.is_valid_prefix(&longer)
            }),
        }
    }

    /// The canonical encoding of a complete output `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u8>> {
        let incomplete = || Error::Constraint {
            format: self.to_string(),
            reason: format!("output '{text}' is not a complete value"),
        };
        if !self.is_complete(text.as_bytes()) {
            return Err(incomplete());
        }
        Ok(match self {
            Self::Text => text.as_bytes().to_vec(),
            Self::Bool => word_from_u64(u64::from(text == "true")).to_vec(),
            Self::Choice(opts) => {
                let index = opts.iter().position(|o| o == text).ok_or_else(incomplete)?;
                word_from_u64(index as u64).to_vec()
            }
            Self::Uint { .. } => word_from_decimal(text).to_vec(),
            Self::Int { .. } => {
                let v = parse_signed(text).ok_or_else(incomplete)?;
                let mut w = word_from_decimal(&v.magnitude);
                if v.negative {
                    negate(&mut w);
                }
                w.to_vec()
            }
        })
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text => f.write_str("text"),
            Self::Bool => f.write_str("bool"),
            Self::Choice(o) => write!(f, "choice({})", o.join("|")),
            Self::Uint { min, max } => write!(f, "uint({min},{max})"),
            Self::Int { min, max } => write!(f, "int({min},{max})"),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether some completion of digit prefix `p` (no sign) lies in `[min, max]` (unsigned).
fn uint_prefix_reaches(p: &str, min: &str, max: &str) -> bool {
    if p.len() > 1 && p.starts_with('0') {
        return false;
    }
    // Completions: p itself, or p followed by k ≥ 1 more digits: [p·10^k, p·10^k + 10^k − 1].
    // "0" cannot be extended.
    let max_extra = if p == "0" { 0 } else { max.len().saturating_sub(p.len()) };
    (0..=max_extra).any(|k| {
        let lo = format!("{p}{}", "0".repeat(k));
        let hi = format!("{p}{}", "9".repeat(k));
        cmp_mag(&lo, max).is_le() && cmp_mag(&hi, min).is_ge()
    })
}

/// Whether some completion of magnitude prefix `m` with the given sign lies in `[min, max]`.
fn signed_prefix_reaches(m: &str, negative: bool, min: &Signed, max: &Signed) -> bool {
    if m.len() > 1 && m.starts_with('0') {
        return false;
    }
    if negative && m == "0" {
        return false; // "-0" is not canonical, and "-0…" has a leading zero
    }
    let longest = min.magnitude.len().max(max.magnitude.len());
    let max_extra = if m == "0" { 0 } else { longest.saturating_sub(m.len()) };
    (0..=max_extra).any(|k| {
        let lo = Signed { negative, magnitude: format!("{m}{}", "0".repeat(k)) };
        let hi = Signed { negative, magnitude: format!("{m}{}", "9".repeat(k)) };
        // With a minus sign the larger magnitude is the smaller value.
        let (low, high) = if negative { (hi, lo) } else { (lo, hi) };
        cmp_signed(&low, max).is_le() && cmp_signed(&high, min).is_ge()
    })
}

/// A 32-byte big-endian ABI word holding `v`.
fn word_from_u64(v: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

/// A 32-byte big-endian ABI word from a canonical decimal (callers ensure it fits 256 bits).
fn word_from_decimal(s: &str) -> [u8; 32] {
    let mut w = [0u8; 32];
    for d in s.bytes() {
        // w = w · 10 + d, byte by byte from the least significant end.
        let mut carry = u32::from(d - b'0');
        for byte in w.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
    }
    w
}

/// Two's complement negation of a 256-bit big-endian word.
fn negate(w: &mut [u8; 32]) {
    let mut carry = 1u16;
    for byte in w.iter_mut().rev() {
        let v = u16::from(!*byte) + carry;
        *byte = v as u8;
        carry = v >> 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn parses_and_prints_every_format() {
        for s in ["text", "bool", "choice(red|green|blue)", "uint(0,100)", "int(-5,5)"] {
            assert_eq!(OutputFormat::parse(s).unwrap().to_string(), s);
        }
        for bad in
            ["float", "uint(5,1)", "uint(01,3)", "int(-0,3)", "choice(a|a)", "choice()", "uint(1)"]
        {
            assert!(OutputFormat::parse(bad).is_err(), "{bad}");
        }
        assert!(OutputFormat::uint("0", UINT256_MAX).is_ok());
        assert!(OutputFormat::uint("0", &format!("{UINT256_MAX}0")).is_err());
    }

    #[test]
    fn abi_encodings_are_canonical() {
        let b = OutputFormat::Bool;
        assert_eq!(hex(&b.encode("true").unwrap()), format!("{}01", "00".repeat(31)));
        assert_eq!(hex(&b.encode("false").unwrap()), "00".repeat(32));
        let c = OutputFormat::parse("choice(a|b|c)").unwrap();
        assert_eq!(hex(&c.encode("c").unwrap()), format!("{}02", "00".repeat(31)));
        let u = OutputFormat::parse("uint(0,1000)").unwrap();
        assert_eq!(hex(&u.encode("258").unwrap()), format!("{}0102", "00".repeat(30)));
        let i = OutputFormat::parse("int(-300,300)").unwrap();
        assert_eq!(hex(&i.encode("-1").unwrap()), "ff".repeat(32));
        assert_eq!(hex(&i.encode("-258").unwrap()), format!("{}fefe", "ff".repeat(30)));
        let max = OutputFormat::uint("0", UINT256_MAX).unwrap();
        assert_eq!(hex(&max.encode(UINT256_MAX).unwrap()), "ff".repeat(32));
        let min = format!("-{INT256_MIN_MAG}");
        let i = OutputFormat::int(&min, "0").unwrap();
        assert_eq!(hex(&i.encode(&min).unwrap()), format!("80{}", "00".repeat(31)));
        assert!(u.encode("1001").is_err() && u.encode("007").is_err());
    }

    #[test]
    fn prefixes_follow_the_range() {
        let u = OutputFormat::parse("uint(10,250)").unwrap();
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
        let i = OutputFormat::parse("int(-20,5)").unwrap();
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
        let pos = OutputFormat::parse("int(3,7)").unwrap();
        assert!(!pos.is_valid_prefix(b"-"));
        let c = OutputFormat::parse("choice(yes|yes please|no)").unwrap();
        assert!(c.is_complete(b"yes") && c.can_extend(b"yes") && !c.is_valid_prefix(b"yep"));
        assert!(
            OutputFormat::Bool.is_valid_prefix(b"fa") && !OutputFormat::Bool.is_valid_prefix(b"tx")
        );
    }
}
