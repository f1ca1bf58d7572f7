//! Content ids: the sha256 of the bytes, written as a CIDv1 with the raw codec.
//!
//! Layout of the binary CID (every field an unsigned LEB128 varint, all of them one byte here):
//!
//! ```text
//! 0x01        CID version 1
//! 0x55        multicodec `raw` (the bytes themselves, no IPLD framing)
//! 0x12 0x20   multihash sha2-256, 32-byte digest
//! <32 bytes>  sha256(bytes)
//! ```
//!
//! rendered with multibase base32 lower-case without padding (prefix `b`), which makes every id
//! start with `bafkrei`. IPFS computes the same string for a raw block, so the id of a file that
//! fits in one IPFS block is also its IPFS address.

use std::{fmt, str::FromStr};

use data_encoding::{BASE32_NOPAD, HEXLOWER_PERMISSIVE};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// CID version byte.
const CID_V1: u64 = 0x01;
/// Multicodec of raw bytes.
const CODEC_RAW: u64 = 0x55;
/// Multihash code of sha2-256.
const MULTIHASH_SHA2_256: u64 = 0x12;
/// Digest length of sha2-256.
const SHA256_LEN: u64 = 32;

/// The id of a piece of content: its sha256 digest.
///
/// The digest is what the chain stores and what every download is checked against;
/// [`Display`](fmt::Display) and [`FromStr`] use the CIDv1 raw form (`bafkrei…`) so that the same
/// value addresses IPFS, and [`ContentId::to_hex`] gives the plain hex digest that `sha256sum`
/// prints.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId([u8; 32]);

impl ContentId {
    /// Wraps a digest that was computed elsewhere (for example read from a contract).
    pub const fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// Hashes `bytes`; for large inputs prefer [`ContentHasher`] and stream.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw sha256 digest.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex of the digest, as `sha256sum` prints it.
    pub fn to_hex(&self) -> String {
        HEXLOWER_PERMISSIVE.encode(&self.0)
    }

    /// Parses a 64-digit hex sha256 digest (either case, optional `0x` prefix).
    pub fn from_hex(hex: &str) -> Result<Self> {
        let digits = hex.strip_prefix("0x").unwrap_or(hex);
        if digits.len() != 64 {
            return Err(invalid(
                hex,
                format!("a sha256 hex digest has 64 digits, this has {}", digits.len()),
            ));
        }
        let bytes = HEXLOWER_PERMISSIVE
            .decode(digits.as_bytes())
            .map_err(|e| invalid(hex, format!("not hex: {e}")))?;
        Ok(Self(bytes.try_into().expect("64 hex digits decode to 32 bytes")))
    }

    /// The binary CID: version, codec, multihash header, digest.
    pub fn to_cid_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&[
            CID_V1 as u8,
            CODEC_RAW as u8,
            MULTIHASH_SHA2_256 as u8,
            SHA256_LEN as u8,
        ]);
        out[4..].copy_from_slice(&self.0);
        out
    }

    /// Parses a binary CID, accepting only CIDv1 + raw + sha2-256.
    pub fn from_cid_bytes(bytes: &[u8]) -> Result<Self> {
        let shown = format!("0x{}", HEXLOWER_PERMISSIVE.encode(bytes));
        Self::parse_binary(bytes).map_err(|reason| invalid(&shown, reason))
    }

    fn parse_binary(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes;
        let version = read_varint(&mut rest).ok_or("truncated CID version")?;
        if version != CID_V1 {
            return Err(format!("CID version {version} is not supported, only version 1"));
        }
        let codec = read_varint(&mut rest).ok_or("truncated codec")?;
        if codec != CODEC_RAW {
            return Err(format!(
                "codec 0x{codec:x} ({}) is not supported, only raw (0x55): the id must be the hash of the bytes themselves",
                codec_name(codec)
            ));
        }
        Self::parse_multihash(rest)
    }

    /// Reads a sha2-256 multihash that ends the input.
    fn parse_multihash(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes;
        let hash = read_varint(&mut rest).ok_or("truncated multihash code")?;
        if hash != MULTIHASH_SHA2_256 {
            return Err(format!(
                "multihash 0x{hash:x} ({}) is not supported, only sha2-256 (0x12)",
                hash_name(hash)
            ));
        }
        let len = read_varint(&mut rest).ok_or("truncated digest length")?;
        if len != SHA256_LEN {
            return Err(format!("sha2-256 digest length is {len}, expected 32"));
        }
        if rest.len() != 32 {
            return Err(format!("digest has {} bytes, expected 32", rest.len()));
        }
        Ok(Self(rest.try_into().expect("length checked")))
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The multibase base32 alphabet is RFC 4648's, lower-cased.
        let upper = BASE32_NOPAD.encode(&self.to_cid_bytes());
        write!(f, "b{}", upper.to_ascii_lowercase())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = Error;

    /// Parses the CIDv1 raw string form (`bafkrei…`).
    fn from_str(s: &str) -> Result<Self> {
        let bytes = multibase_base32(s)?;
        Self::parse_binary(&bytes).map_err(|reason| {
            let hint = if reason.contains("dag-pb") {
                "; a bafybei… id names a UnixFS file by its DAG, not by its sha256 (see `Cid`)"
            } else {
                ""
            };
            invalid(s, format!("{reason}{hint}"))
        })
    }
}

impl serde::Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Streaming sha256 for content that does not fit in memory at once.
#[derive(Clone, Default)]
pub struct ContentHasher {
    state: Sha256,
    len: u64,
}

impl fmt::Debug for ContentHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentHasher").field("len", &self.len).finish_non_exhaustive()
    }
}

impl ContentHasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes were fed so far.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// True until the first non-empty update.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The id of everything fed.
    pub fn finish(self) -> ContentId {
        ContentId(self.state.finalize().into())
    }
}

/// The codec of the block a [`Cid`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// Raw bytes (a whole small file, or one leaf of a large one).
    Raw,
    /// A dag-pb node (a UnixFS file node over its chunks, see [`crate::unixfs`]).
    DagPb,
}

/// Multicodec of dag-pb.
const CODEC_DAG_PB: u64 = 0x70;

impl Codec {
    const fn code(self) -> u64 {
        match self {
            Self::Raw => CODEC_RAW,
            Self::DagPb => CODEC_DAG_PB,
        }
    }
}

/// An IPFS block id: CIDv1, codec raw or dag-pb, multihash sha2-256, shown in base32
/// (`bafkrei…` raw, `bafybei…` dag-pb). A file's [UnixFS](crate::unixfs) root is one; a
/// [`ContentId`] is the raw case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    codec: Codec,
    digest: [u8; 32],
}

impl Cid {
    /// The raw block whose sha256 is `id`.
    pub const fn raw(id: ContentId) -> Self {
        Self { codec: Codec::Raw, digest: id.0 }
    }

    /// The dag-pb node whose sha256 is `digest`.
    pub const fn dag_pb(digest: [u8; 32]) -> Self {
        Self { codec: Codec::DagPb, digest }
    }

    /// The block's codec.
    pub const fn codec(&self) -> Codec {
        self.codec
    }

    /// sha256 of the block.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The content id of a raw block (the block is the content); `None` for a dag-pb node.
    pub const fn as_content_id(&self) -> Option<ContentId> {
        match self.codec {
            Codec::Raw => Some(ContentId(self.digest)),
            Codec::DagPb => None,
        }
    }

    /// The binary CID (36 bytes: version, codec, multihash header, digest).
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&[
            CID_V1 as u8,
            self.codec.code() as u8,
            MULTIHASH_SHA2_256 as u8,
            SHA256_LEN as u8,
        ]);
        out[4..].copy_from_slice(&self.digest);
        out
    }

    /// Whether `block` is the block this id names (its sha256 matches).
    pub fn verifies(&self, block: &[u8]) -> bool {
        <[u8; 32]>::from(Sha256::digest(block)) == self.digest
    }

    /// Parses a binary CID (CIDv1, raw or dag-pb, sha2-256), or says why it is not one.
    pub fn from_binary(bytes: &[u8]) -> Result<Self, String> {
        Self::parse_binary(bytes)
    }

    fn parse_binary(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes;
        let version = read_varint(&mut rest).ok_or("truncated CID version")?;
        if version != CID_V1 {
            return Err(format!("CID version {version} is not supported, only version 1"));
        }
        let codec = match read_varint(&mut rest).ok_or("truncated codec")? {
            CODEC_RAW => Codec::Raw,
            CODEC_DAG_PB => Codec::DagPb,
            other => {
                return Err(format!(
                    "codec 0x{other:x} ({}) is not supported, only raw (0x55) and dag-pb (0x70)",
                    codec_name(other)
                ));
            }
        };
        let id = ContentId::parse_multihash(rest)?;
        Ok(Self { codec, digest: id.0 })
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let upper = BASE32_NOPAD.encode(&self.to_bytes());
        write!(f, "b{}", upper.to_ascii_lowercase())
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = Error;

    /// Parses the CIDv1 base32 form (`bafkrei…` or `bafybei…`).
    fn from_str(s: &str) -> Result<Self> {
        let bytes = multibase_base32(s)?;
        Self::parse_binary(&bytes).map_err(|reason| invalid(s, reason))
    }
}

impl From<ContentId> for Cid {
    fn from(id: ContentId) -> Self {
        Self::raw(id)
    }
}

impl serde::Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The bytes of a multibase base32 lower-case string (`b…`), or why it is not one.
fn multibase_base32(s: &str) -> Result<Vec<u8>> {
    let Some(body) = s.strip_prefix('b') else {
        let reason = if s.starts_with("Qm") {
            "this is a CIDv0 (dag-pb, base58); only CIDv1 ids (bafk…, bafy…) are supported"
                .to_string()
        } else if s.is_empty() {
            "empty string".to_string()
        } else {
            format!(
                "multibase prefix '{}' is not supported, only 'b' (base32 lower-case)",
                s.chars().next().unwrap_or_default()
            )
        };
        return Err(invalid(s, reason));
    };
    if body.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            s,
            "multibase 'b' is lower-case base32; found upper-case letters".into(),
        ));
    }
    BASE32_NOPAD
        .decode(body.to_ascii_uppercase().as_bytes())
        .map_err(|e| invalid(s, format!("not base32: {e}")))
}

fn invalid(input: &str, reason: String) -> Error {
    Error::InvalidContentId { input: input.to_string(), reason }
}

/// Reads one unsigned LEB128 varint (at most 9 bytes, as multiformats requires).
pub(crate) fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(value);
        }
    }
    None
}

fn codec_name(codec: u64) -> &'static str {
    match codec {
        0x70 => "dag-pb",
        0x71 => "dag-cbor",
        0x0129 => "dag-json",
        0x0200 => "json",
        0x51 => "cbor",
        _ => "unknown codec",
    }
}

fn hash_name(code: u64) -> &'static str {
    match code {
        0x11 => "sha1",
        0x13 => "sha2-512",
        0x16 => "sha3-256",
        0x1b => "keccak-256",
        0x1e => "blake3",
        0xb220 => "blake2b-256",
        0x00 => "identity",
        _ => "unknown hash",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf '' | sha256sum`
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hex_digest_and_cid_agree_with_sha256sum() {
        let id = ContentId::of(b"");
        assert_eq!(id.to_hex(), EMPTY_SHA256);
        assert_eq!(ContentId::from_hex(EMPTY_SHA256).unwrap(), id);
        assert_eq!(ContentId::from_hex(&format!("0x{}", EMPTY_SHA256.to_uppercase())).unwrap(), id);
        let cid = id.to_string();
        assert!(cid.starts_with("bafkrei"), "{cid}");
        assert_eq!(cid.len(), 59);
        assert_eq!(cid.parse::<ContentId>().unwrap(), id);
    }

    #[test]
    fn round_trips_binary_and_text() {
        for input in [&b"a"[..], b"hello world", &[0u8; 1000]] {
            let id = ContentId::of(input);
            assert_eq!(ContentId::from_cid_bytes(&id.to_cid_bytes()).unwrap(), id);
            assert_eq!(id.to_string().parse::<ContentId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{id}\""));
            assert_eq!(serde_json::from_str::<ContentId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn streaming_hasher_matches_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut hasher = ContentHasher::new();
        for part in data.chunks(333) {
            hasher.update(part);
        }
        assert_eq!(hasher.len(), 10_000);
        assert_eq!(hasher.finish(), ContentId::of(&data));
    }

    fn err(input: &str) -> String {
        input.parse::<ContentId>().unwrap_err().to_string()
    }

    #[test]
    fn rejects_other_codecs_hashes_and_encodings() {
        let id = ContentId::of(b"x");
        let mut bytes = id.to_cid_bytes();
        bytes[1] = 0x70;
        let dag_pb = format!("b{}", BASE32_NOPAD.encode(&bytes).to_lowercase());
        let message = err(&dag_pb);
        assert!(message.contains("0x70 (dag-pb)") && message.contains(&dag_pb), "{message}");

        let mut bytes = id.to_cid_bytes();
        bytes[2] = 0x1b;
        let message = err(&format!("b{}", BASE32_NOPAD.encode(&bytes).to_lowercase()));
        assert!(message.contains("keccak-256"), "{message}");

        let mut bytes = id.to_cid_bytes().to_vec();
        bytes[0] = 0x00;
        assert!(ContentId::from_cid_bytes(&bytes).unwrap_err().to_string().contains("version 0"));
        bytes.truncate(20);
        bytes[0] = 0x01;
        assert!(
            ContentId::from_cid_bytes(&bytes)
                .unwrap_err()
                .to_string()
                .contains("digest has 16 bytes")
        );

        assert!(err("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o").contains("CIDv0"));
        assert!(err("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA").contains("prefix 'z'"));
        assert!(err(&id.to_string().to_uppercase()).contains("prefix 'B'"));
        assert!(err(&format!("b{}", &id.to_string()[1..].to_uppercase())).contains("upper-case"));
        assert!(err("bafkrei!!").contains("not base32"));
        assert!(err("").contains("empty"));
        assert!(ContentId::from_hex("abc").unwrap_err().to_string().contains("64 digits"));
        assert!(ContentId::from_hex(&"g".repeat(64)).unwrap_err().to_string().contains("not hex"));
    }

    #[test]
    fn multi_byte_codec_is_named_not_misread() {
        // dag-json is 0x0129: a two-byte varint (0xa9 0x02).
        let mut bytes = vec![0x01, 0xa9, 0x02, 0x12, 0x20];
        bytes.extend_from_slice(&[7u8; 32]);
        let message = ContentId::from_cid_bytes(&bytes).unwrap_err().to_string();
        assert!(message.contains("0x129 (dag-json)"), "{message}");
    }
}
