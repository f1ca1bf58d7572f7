//! A node's configuration file (TOML). Flags and environment variables of `aik node run`
//! override its values.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// The TOML configuration of a node; every field is optional so a file may set only some.
///
/// ```toml
/// rpc_url = "http://127.0.0.1:8545"
/// ws_url = "ws://127.0.0.1:8545"
/// private_key = "0x…"
/// deployment = ".aik/deployment.json"
/// data_dir = ".aik/node"
/// stake_eai = 1000
/// capacity = 1
/// gpu_model = "NVIDIA L4"
/// memory_mb = 24000
/// poll_interval_ms = 200
/// models = [1, 2]
/// store_dir = "~/.cache/aik/store"
/// ipfs_gateway = ["https://ipfs.io", "https://dweb.link"]   # or one URL
/// ipfs_api = "http://127.0.0.1:5001"
/// filecoin_retrieval = ["https://provider.example"]
/// arweave_gateway = "https://arweave.net"
/// serve_store = "0.0.0.0:8081"
/// announce_store = "http://203.0.113.7:8081"
/// peer_gateways = "public"
/// store_peers = ["http://198.51.100.4:8081"]
/// challenge = true
/// challenge_min_reward_eai = 10
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFileConfig {
    /// HTTP JSON-RPC endpoint.
    pub rpc_url: Option<String>,
    /// WebSocket JSON-RPC endpoint.
    pub ws_url: Option<String>,
    /// The worker's private key (hex).
    pub private_key: Option<String>,
    /// The deployment file to read contract addresses from.
    pub deployment: Option<PathBuf>,
    /// Where the node keeps its database.
    pub data_dir: Option<PathBuf>,
    /// Stake to register with, in whole EAI.
    pub stake_eai: Option<u64>,
    /// Prompts run at once.
    pub capacity: Option<u16>,
    /// Declared machine (default: detected).
    pub gpu_model: Option<String>,
    /// Memory available to models, MiB (default: detected).
    pub memory_mb: Option<u64>,
    /// Poll interval in milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// Registered models to serve (default: the deployment's model).
    pub models: Option<Vec<u64>>,
    /// The content store holding model files and prompt data (default: `$AIK_HOME/store`).
    pub store_dir: Option<PathBuf>,
    /// The IPFS gateways model files and prompt data are fetched from, tried in order (one URL
    /// or a list; default: `https://ipfs.io`; another worker's `serve_store` works).
    pub ipfs_gateway: Option<Urls>,
    /// A Kubo RPC API to fetch from instead of the gateway.
    pub ipfs_api: Option<String>,
    /// Filecoin retrieval endpoints (trustless HTTP) for `fil://` model URIs, in order.
    pub filecoin_retrieval: Option<Vec<String>>,
    /// The Arweave gateway `ar://` model URIs are read from (default: `https://arweave.net`).
    pub arweave_gateway: Option<String>,
    /// Serve the content store read-only as an IPFS trustless gateway on this address.
    pub serve_store: Option<std::net::SocketAddr>,
    /// Publish this URL onchain as the gateway other workers reach this store at.
    pub announce_store: Option<String>,
    /// Store gateways published onchain to fetch from: `public` (default), `any` or `off`.
    pub peer_gateways: Option<String>,
    /// Other workers' store gateways this operator lists, tried before those published onchain.
    pub store_peers: Option<Vec<String>>,
    /// Re-run other committees' answers and challenge the wrong ones (default: off).
    pub challenge: Option<bool>,
    /// Least expected challenger reward, in whole EAI, worth a challenge (default: 0).
    pub challenge_min_reward_eai: Option<u64>,
}

/// One URL or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    /// A single URL.
    One(String),
    /// Several, in order.
    Many(Vec<String>),
}

impl Urls {
    /// The URLs, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(url) => vec![url.clone()],
            Self::Many(urls) => urls.clone(),
        }
    }
}

impl NodeFileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config(format!("invalid node config: {e}")))
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_files_and_rejects_unknown_keys() {
        let config = NodeFileConfig::parse("rpc_url = \"http://x:1\"\nstake_eai = 5\n").unwrap();
        assert_eq!(config.rpc_url.as_deref(), Some("http://x:1"));
        assert_eq!(config.stake_eai, Some(5));
        assert_eq!(config.capacity, None);
        let err = NodeFileConfig::parse("rpc = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field `rpc`"), "{err}");
        let policing =
            NodeFileConfig::parse("challenge = true\nchallenge_min_reward_eai = 10\n").unwrap();
        assert_eq!((policing.challenge, policing.challenge_min_reward_eai), (Some(true), Some(10)));
        let sources = NodeFileConfig::parse(
            "arweave_gateway = \"http://127.0.0.1:1984\"\nannounce_store = \"http://203.0.113.7:8081\"\npeer_gateways = \"any\"\n",
        )
        .unwrap();
        assert_eq!(sources.arweave_gateway.as_deref(), Some("http://127.0.0.1:1984"));
        assert_eq!(sources.announce_store.as_deref(), Some("http://203.0.113.7:8081"));
        assert_eq!(sources.peer_gateways.as_deref(), Some("any"));
        let store = NodeFileConfig::parse(
            "store_dir = \"/srv/aik\"\nipfs_gateway = \"http://a:8080\"\nfilecoin_retrieval = [\"http://f:1\", \"http://f:2\"]\nstore_peers = [\"http://p:8081\"]\n",
        )
        .unwrap();
        assert_eq!(store.store_dir, Some(PathBuf::from("/srv/aik")));
        assert_eq!(store.ipfs_gateway.unwrap().to_vec(), ["http://a:8080"]);
        assert_eq!(store.filecoin_retrieval.unwrap(), ["http://f:1", "http://f:2"]);
        assert_eq!(store.store_peers.unwrap(), ["http://p:8081"]);
        let listed = NodeFileConfig::parse("ipfs_gateway = [\"http://a\", \"http://b\"]").unwrap();
        assert_eq!(listed.ipfs_gateway.unwrap().to_vec(), ["http://a", "http://b"]);
        let err = NodeFileConfig::parse("challenge = \"yes\"").unwrap_err();
        assert!(err.to_string().contains("challenge"), "{err}");
    }
}
