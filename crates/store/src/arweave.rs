//! Arweave uploads: a file as a signed format-2 transaction, its data posted in chunks.
//!
//! The rules are Arweave's own (the node's `ar_tx`, `ar_merkle` and `ar_deep_hash`, as the
//! `arweave` JS client implements them):
//!
//! - **Wallet**: an RSA key as a JWK (`kty`, `n`, `e`, `d`, `p`, `q`, …), the file Arweave wallets
//!   export. The owner is the modulus `n`; the address is `base64url(sha256(n))`.
//! - **Data root**: the data cut into chunks of 256 KiB, except that when the last chunk would
//!   be shorter than 32 KiB the last two are split evenly (rounded up for the first); each leaf
//!   is `H(H(sha256(chunk)) ‖ H(note(end)))` and each branch `H(H(left) ‖ H(right) ‖
//!   H(note(left end)))`, pairs taken left to right, an odd node promoted; `note` is a 32-byte
//!   big-endian offset, `H` sha256. A chunk's proof is the path of `left ‖ right ‖ note` from the
//!   root, then `sha256(chunk) ‖ note(end)`.
//! - **Signature**: RSA-PSS with SHA-256 (salt of 32 bytes) over the SHA-384 deep hash of
//!   `["2", owner, target, quantity, reward, last_tx, [[tag name, tag value]…], data_size,
//!   data_root]`; the transaction id is `base64url(sha256(signature))`.
//! - **Upload**: `GET /tx_anchor` and `GET /price/{bytes}`, then `POST /tx` (with the data
//!   inline when it is one chunk, else without) and `POST /chunk` per chunk with its proof.

use std::path::Path;

use data_encoding::BASE64URL_NOPAD;
use reqwest::Url;
use rsa::{
    BigUint, RsaPrivateKey, pss::SigningKey, signature::RandomizedSigner,
    signature::SignatureEncoding,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256, Sha384};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::info;

use crate::{
    Error, Result,
    fetch::{join_url, send_ok},
};

/// Arweave's largest chunk.
pub const MAX_CHUNK: u64 = 256 * 1024;
/// The smallest last chunk Arweave's chunking leaves.
pub const MIN_CHUNK: u64 = 32 * 1024;

/// An Arweave wallet: the RSA key of a JWK file.
pub struct ArweaveWallet {
    key: SigningKey<Sha256>,
    /// The modulus, big-endian: the transaction's `owner`.
    owner: Vec<u8>,
}

impl std::fmt::Debug for ArweaveWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArweaveWallet").field("address", &self.address()).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    n: String,
    e: String,
    d: String,
    p: String,
    q: String,
}

impl ArweaveWallet {
    /// A wallet from a JWK's JSON text.
    pub fn from_jwk(text: &str) -> std::result::Result<Self, String> {
        let jwk: Jwk = serde_json::from_str(text)
            .map_err(|e| format!("not an RSA JWK (kty, n, e, d, p, q): {e}"))?;
        if jwk.kty != "RSA" {
            return Err(format!("an Arweave wallet is an RSA key, this JWK is {:?}", jwk.kty));
        }
        let number = |name: &str, value: &str| {
            BASE64URL_NOPAD
                .decode(value.trim_end_matches('=').as_bytes())
                .map(|bytes| BigUint::from_bytes_be(&bytes))
                .map_err(|e| format!("JWK field {name} is not base64url: {e}"))
        };
        let n = number("n", &jwk.n)?;
        let key = RsaPrivateKey::from_components(
            n.clone(),
            number("e", &jwk.e)?,
            number("d", &jwk.d)?,
            vec![number("p", &jwk.p)?, number("q", &jwk.q)?],
        )
        .map_err(|e| format!("the JWK is not a valid RSA key: {e}"))?;
        key.validate().map_err(|e| format!("the JWK is not a valid RSA key: {e}"))?;
        Ok(Self { key: SigningKey::new_with_salt_len(key, 32), owner: n.to_bytes_be() })
    }

    /// A wallet from a JWK file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        Self::from_jwk(&text).map_err(|reason| Error::Arweave {
            uri: path.display().to_string(),
            message: format!("not an Arweave wallet: {reason}"),
        })
    }

    /// The wallet's address: base64url of the sha256 of its modulus.
    pub fn address(&self) -> String {
        BASE64URL_NOPAD.encode(&Sha256::digest(&self.owner))
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign_with_rng(&mut rand_core::OsRng, message).to_vec()
    }
}

/// One chunk of a transaction's data: its byte range, and its proof under the data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChunk {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// `data_path`: the branches from the root, then the leaf.
    pub proof: Vec<u8>,
}

/// A file's Arweave data root and the chunks that prove against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    /// The Merkle root (empty for empty data).
    pub root: Vec<u8>,
    /// The chunks in order (none for empty data).
    pub chunks: Vec<DataChunk>,
}

/// Where Arweave cuts `size` bytes into chunks: `(start, end)` of each.
pub fn chunk_ranges(size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let (mut start, mut rest) = (0, size);
    while rest >= MAX_CHUNK {
        let mut len = MAX_CHUNK;
        let next = rest - MAX_CHUNK;
        if next > 0 && next < MIN_CHUNK {
            len = rest.div_ceil(2);
        }
        ranges.push((start, start + len));
        start += len;
        rest -= len;
    }
    // A size that is a multiple of 256 KiB ends with an empty chunk in the tree (as Arweave's
    // own client builds it); it is never uploaded.
    ranges.push((start, start + rest));
    ranges
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A 32-byte big-endian offset.
fn note(offset: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&offset.to_be_bytes());
    out
}

enum TreeNode {
    Leaf { id: [u8; 32], data_hash: [u8; 32], end: u64, index: usize },
    Branch { id: [u8; 32], split: u64, end: u64, left: Box<Self>, right: Box<Self> },
}

impl TreeNode {
    const fn id(&self) -> &[u8; 32] {
        match self {
            Self::Leaf { id, .. } | Self::Branch { id, .. } => id,
        }
    }

    const fn end(&self) -> u64 {
        match self {
            Self::Leaf { end, .. } | Self::Branch { end, .. } => *end,
        }
    }

    fn proofs(&self, path: &[u8], out: &mut [Vec<u8>]) {
        match self {
            Self::Leaf { data_hash, end, index, .. } => {
                out[*index] = [path, data_hash, &note(*end)].concat();
            }
            Self::Branch { split, left, right, .. } => {
                let path = [path, left.id(), right.id(), &note(*split)].concat();
                left.proofs(&path, out);
                right.proofs(&path, out);
            }
        }
    }
}

impl DataTree {
    /// The data tree of `data`.
    pub fn of(data: &[u8]) -> Self {
        let hashes = chunk_ranges(data.len() as u64)
            .into_iter()
            .map(|(start, end)| (start, end, sha256(&[&data[start as usize..end as usize]])))
            .collect();
        Self::from_hashes(hashes)
    }

    /// The data tree of the file at `path`, read chunk by chunk.
    pub async fn of_file(path: &Path) -> Result<Self> {
        let mut file = tokio::fs::File::open(path).await.map_err(Error::io("open", path))?;
        let size = file.metadata().await.map_err(Error::io("stat", path))?.len();
        let mut hashes = Vec::new();
        let mut buffer = Vec::new();
        for (start, end) in chunk_ranges(size) {
            buffer.resize((end - start) as usize, 0);
            file.read_exact(&mut buffer).await.map_err(Error::io("read", path))?;
            hashes.push((start, end, sha256(&[&buffer])));
        }
        Ok(Self::from_hashes(hashes))
    }

    fn from_hashes(hashes: Vec<(u64, u64, [u8; 32])>) -> Self {
        if hashes.len() == 1 && hashes[0].1 == 0 {
            return Self { root: Vec::new(), chunks: Vec::new() };
        }
        let mut layer: Vec<TreeNode> = hashes
            .iter()
            .enumerate()
            .map(|(index, &(_, end, data_hash))| TreeNode::Leaf {
                id: sha256(&[&sha256(&[&data_hash]), &sha256(&[&note(end)])]),
                data_hash,
                end,
                index,
            })
            .collect();
        while layer.len() > 1 {
            let mut next = Vec::with_capacity(layer.len().div_ceil(2));
            let mut nodes = layer.into_iter();
            while let Some(left) = nodes.next() {
                match nodes.next() {
                    None => next.push(left),
                    Some(right) => next.push(TreeNode::Branch {
                        id: sha256(&[
                            &sha256(&[left.id()]),
                            &sha256(&[right.id()]),
                            &sha256(&[&note(left.end())]),
                        ]),
                        split: left.end(),
                        end: right.end(),
                        left: Box::new(left),
                        right: Box::new(right),
                    }),
                }
            }
            layer = next;
        }
        let root = layer.pop().expect("at least one leaf");
        let mut proofs = vec![Vec::new(); hashes.len()];
        root.proofs(&[], &mut proofs);
        let chunks = hashes
            .iter()
            .zip(proofs)
            .filter(|((start, end, _), _)| end > start)
            .map(|(&(start, end, _), proof)| DataChunk { start, end, proof })
            .collect();
        Self { root: root.id().to_vec(), chunks }
    }
}

/// An item of Arweave's deep hash: bytes, or a list of items.
#[derive(Debug)]
pub enum DeepHashItem<'a> {
    /// A byte string.
    Blob(&'a [u8]),
    /// A list.
    List(Vec<Self>),
}

/// Arweave's deep hash (SHA-384), what a transaction's signature covers.
pub fn deep_hash(item: &DeepHashItem<'_>) -> [u8; 48] {
    let h = |parts: &[&[u8]]| -> [u8; 48] {
        let mut hasher = Sha384::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().into()
    };
    match item {
        DeepHashItem::Blob(bytes) => {
            let tag = format!("blob{}", bytes.len());
            h(&[&h(&[tag.as_bytes()]), &h(&[bytes])])
        }
        DeepHashItem::List(items) => {
            let tag = format!("list{}", items.len());
            items.iter().fold(h(&[tag.as_bytes()]), |acc, item| h(&[&acc, &deep_hash(item)]))
        }
    }
}

/// Uploads files to an Arweave node or gateway (arweave.net, or arlocal in tests).
#[derive(Debug, Clone)]
pub struct ArweaveUploader {
    base: Url,
    client: reqwest::Client,
}

impl ArweaveUploader {
    /// An uploader to the node at `base`, sharing `client`.
    pub const fn with_client(base: Url, client: reqwest::Client) -> Self {
        Self { base, client }
    }

    async fn get_text(&self, path: &[&str]) -> Result<String> {
        let url = join_url(&self.base, path);
        let response = send_ok(self.client.get(url.clone()), url.as_str()).await?;
        let text = response
            .text()
            .await
            .map_err(|cause| Error::Request { uri: url.to_string(), cause })?;
        Ok(text.trim().to_string())
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<()> {
        let url = join_url(&self.base, &[path]);
        let request = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        send_ok(request, url.as_str()).await.map(drop)
    }

    /// Signs the file at `path` as a transaction of `wallet`, tagged `Content-Type:
    /// application/octet-stream` plus `tags`, and uploads it; returns the transaction id (what
    /// `ar://` names). The node decides when it is mined.
    pub async fn upload_file(
        &self,
        wallet: &ArweaveWallet,
        path: &Path,
        tags: &[(&str, &str)],
    ) -> Result<String> {
        let fail = |message: String| Error::Arweave { uri: self.base.to_string(), message };
        let size = tokio::fs::metadata(path).await.map_err(Error::io("stat", path))?.len();
        let tree = DataTree::of_file(path).await?;
        let anchor = self.get_text(&["tx_anchor"]).await?;
        let last_tx = BASE64URL_NOPAD
            .decode(anchor.as_bytes())
            .map_err(|e| fail(format!("the anchor {anchor:?} is not base64url: {e}")))?;
        let reward = self.get_text(&["price", &size.to_string()]).await?;
        if reward.is_empty() || !reward.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(format!("the price of {size} bytes is {reward:?}, not a number")));
        }
        let mut all_tags = vec![("Content-Type", "application/octet-stream")];
        all_tags.extend_from_slice(tags);
        let tag_items = all_tags
            .iter()
            .map(|(name, value)| {
                DeepHashItem::List(vec![
                    DeepHashItem::Blob(name.as_bytes()),
                    DeepHashItem::Blob(value.as_bytes()),
                ])
            })
            .collect();
        let size_text = size.to_string();
        let signed = deep_hash(&DeepHashItem::List(vec![
            DeepHashItem::Blob(b"2"),
            DeepHashItem::Blob(&wallet.owner),
            DeepHashItem::Blob(b""),
            DeepHashItem::Blob(b"0"),
            DeepHashItem::Blob(reward.as_bytes()),
            DeepHashItem::Blob(&last_tx),
            DeepHashItem::List(tag_items),
            DeepHashItem::Blob(size_text.as_bytes()),
            DeepHashItem::Blob(&tree.root),
        ]));
        let signature = wallet.sign(&signed);
        let id = BASE64URL_NOPAD.encode(&Sha256::digest(&signature));
        let b64 = |bytes: &[u8]| BASE64URL_NOPAD.encode(bytes);
        let inline = tree.chunks.len() <= 1;
        let data = if inline {
            b64(&tokio::fs::read(path).await.map_err(Error::io("read", path))?)
        } else {
            String::new()
        };
        let tx = json!({
            "format": 2,
            "id": id,
            "last_tx": anchor,
            "owner": b64(&wallet.owner),
            "tags": all_tags.iter().map(|(name, value)| json!({
                "name": b64(name.as_bytes()),
                "value": b64(value.as_bytes()),
            })).collect::<Vec<_>>(),
            "target": "",
            "quantity": "0",
            "data": data,
            "data_size": size_text,
            "data_root": b64(&tree.root),
            "reward": reward,
            "signature": b64(&signature),
        });
        self.post("tx", &tx).await?;
        if !inline {
            let mut file = tokio::fs::File::open(path).await.map_err(Error::io("open", path))?;
            let mut buffer = Vec::new();
            for (index, chunk) in tree.chunks.iter().enumerate() {
                buffer.resize((chunk.end - chunk.start) as usize, 0);
                file.seek(std::io::SeekFrom::Start(chunk.start))
                    .await
                    .map_err(Error::io("seek", path))?;
                file.read_exact(&mut buffer).await.map_err(Error::io("read", path))?;
                let body = json!({
                    "data_root": b64(&tree.root),
                    "data_size": size_text,
                    "data_path": b64(&chunk.proof),
                    "offset": (chunk.end - 1).to_string(),
                    "chunk": b64(&buffer),
                });
                self.post("chunk", &body).await.map_err(|e| {
                    fail(format!("chunk {index} of {} of transaction {id}: {e}", tree.chunks.len()))
                })?;
            }
        }
        info!(%id, size, chunks = tree.chunks.len(), "uploaded to Arweave");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_arweaves_rule_at_the_edges() {
        let k = 1024;
        assert_eq!(chunk_ranges(0), vec![(0, 0)]);
        assert_eq!(chunk_ranges(5), vec![(0, 5)]);
        assert_eq!(chunk_ranges(256 * k), vec![(0, 256 * k), (256 * k, 256 * k)]);
        // A last chunk under 32 KiB: the last two split evenly.
        let size = 256 * k + 10 * k;
        assert_eq!(chunk_ranges(size), vec![(0, 133 * k), (133 * k, size)]);
        let size = 2 * 256 * k + 32 * k;
        assert_eq!(chunk_ranges(size), vec![(0, 256 * k), (256 * k, 512 * k), (512 * k, size)]);
    }

    #[test]
    fn deep_hash_of_a_blob_and_a_list() {
        // sha384(sha384("blob3") ‖ sha384("abc")) by definition; the list folds its items.
        let blob = deep_hash(&DeepHashItem::Blob(b"abc"));
        let mut expected = Sha384::new();
        expected.update(Sha384::digest(b"blob3"));
        expected.update(Sha384::digest(b"abc"));
        assert_eq!(blob[..], expected.finalize()[..]);
        let list = deep_hash(&DeepHashItem::List(vec![DeepHashItem::Blob(b"abc")]));
        let mut expected = Sha384::new();
        expected.update(Sha384::digest(b"list1"));
        expected.update(blob);
        assert_eq!(list[..], expected.finalize()[..]);
    }

    #[test]
    fn every_chunk_proof_ends_in_its_leaf() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let tree = DataTree::of(&data);
        assert_eq!(tree.chunks.len(), 3);
        for chunk in &tree.chunks {
            let leaf = &chunk.proof[chunk.proof.len() - 64..];
            let bytes = &data[chunk.start as usize..chunk.end as usize];
            assert_eq!(leaf[..32], sha256(&[bytes]));
            assert_eq!(leaf[32..], note(chunk.end));
            // Two levels of branches above three leaves: 96 bytes each.
            assert!(chunk.proof.len() == 64 + 96 || chunk.proof.len() == 64 + 2 * 96);
        }
        assert!(DataTree::of(&[]).root.is_empty());
    }
}
