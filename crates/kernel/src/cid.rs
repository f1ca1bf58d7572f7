//! Content ids (DESIGN §5.1): the sha256 of the bytes, shown as a CIDv1 with the raw codec.
//!
//! Binary layout: `0x01` (CID v1), `0x55` (multicodec raw), `0x12 0x20` (multihash sha2-256,
//! 32 bytes), then the digest; rendered in multibase base32 lower-case without padding (prefix
//! `b`), so every id starts with `bafkrei`. IPFS gives a raw block the same id, so the digest the
//! chain stores is also an IPFS address.

use std::{fmt, str::FromStr};

use alloy::primitives::B256;
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The four bytes before the digest in a CIDv1 raw sha2-256 id.
const PREFIX: [u8; 4] = [0x01, 0x55, 0x12, 0x20];

/// The id of a piece of content: its sha256 digest, displayed as `bafkrei…`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId(B256);

impl ContentId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(B256::from(<[u8; 32]>::from(Sha256::digest(bytes))))
    }

    /// The id of content whose sha256 is `digest` (as stored onchain).
    pub const fn from_digest(digest: B256) -> Self {
        Self(digest)
    }

    /// The sha256 digest, as the contracts store it.
    pub const fn digest(&self) -> B256 {
        self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut binary = [0u8; 36];
        binary[..4].copy_from_slice(&PREFIX);
        binary[4..].copy_from_slice(self.0.as_slice());
        write!(f, "b{}", BASE32_NOPAD.encode(&binary).to_ascii_lowercase())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidContentId { id: id.to_owned(), reason };
        let body =
            id.strip_prefix('b').ok_or_else(|| invalid("not multibase base32 (prefix b)"))?;
        if body.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("base32 must be lower-case"));
        }
        let binary = BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| invalid("not valid base32"))?;
        if binary.len() != 36 || binary[..4] != PREFIX {
            return Err(invalid("not a CIDv1 raw sha2-256 id"));
        }
        Ok(Self(B256::from_slice(&binary[4..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_content_has_the_well_known_ipfs_id() {
        // The CIDv1 raw id of zero bytes, as `ipfs add --raw-leaves --cid-version 1` prints it.
        let id = ContentId::of(b"");
        assert_eq!(id.to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        assert_eq!(
            id.digest().to_string(),
            "0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn display_and_parse_round_trip() {
        let id = ContentId::of(b"hello world");
        let text = id.to_string();
        assert!(text.starts_with("bafkrei"), "{text}");
        assert_eq!(text.parse::<ContentId>().unwrap(), id);
    }

    #[test]
    fn parse_rejects_wrong_prefix_case_and_codec() {
        let text = ContentId::of(b"x").to_string();
        for bad in [&text[1..], &text.to_ascii_uppercase(), "bafybeigdyrzt", "b!!!!"] {
            let err = bad.parse::<ContentId>().unwrap_err();
            assert!(err.to_string().contains("invalid content id"), "{err}");
        }
    }
}
