//! `aik store add|get|export`: the local content store, by the ids IPFS uses.
//!
//! `add` keeps a file and prints its UnixFS id (what `ipfs add --cid-version 1` prints: the raw
//! `bafkrei…` id of a file of one 256 KiB chunk, a `bafybei…` DAG root otherwise), its sha256
//! (what the chain records) and its size. `get` writes a file out by either id: from the local
//! store, else from the configured IPFS gateway or Kubo RPC API as a CAR checked block by block
//! against the id (`AIK_IPFS_GATEWAY`, `AIK_IPFS_API`).
//! `export --car` writes a CAR v1 that `ipfs dag import` (and any IPFS tool) reads.
//! `add --arweave-wallet JWK` also uploads the file to Arweave as a signed transaction.

use std::path::{Path, PathBuf};

use aik_store::{Cid, write_car};
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};

use aik_store::http_client;

use crate::chain::{fetch_config, progress_bar, runtime, store};

/// `aik store …`.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Keep a file in the local store; print its UnixFS id, sha256 and size.
    Add {
        /// The file.
        file: PathBuf,
        /// Print one JSON object: {"cid", "sha256", "size"}.
        #[arg(long)]
        json: bool,
        /// Also add and pin it on this Kubo RPC API (e.g. http://127.0.0.1:5001), which must
        /// give it the same id.
        #[arg(long, value_name = "URL")]
        ipfs_api: Option<aik_store::Url>,
        /// Also upload it to Arweave as a transaction signed by this wallet (a JWK file), through
        /// AIK_ARWEAVE_GATEWAY (default https://arweave.net); prints its ar:// URI.
        #[arg(long, value_name = "JWK")]
        arweave_wallet: Option<PathBuf>,
    },
    /// Write the file an id names (UnixFS or raw) to a path.
    Get {
        /// The id (`bafy…` or `bafk…`).
        cid: Cid,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Index every stored file by its UnixFS id (files kept before ids were indexed, e.g. by
    /// older versions or downloads by sha256); prints how many.
    Index,
    /// Write the CAR v1 of a stored file's UnixFS DAG.
    Export {
        /// The file's id.
        cid: Cid,
        /// Where to write the CAR.
        #[arg(long)]
        car: PathBuf,
    },
}

pub(crate) fn run(args: StoreArgs) -> eyre::Result<()> {
    runtime()?.block_on(async {
        match args.command {
            StoreCommand::Add { file, json, ipfs_api, arweave_wallet } => {
                add(file, json, ipfs_api, arweave_wallet).await
            }
            StoreCommand::Get { cid, out } => get(cid, out).await,
            StoreCommand::Export { cid, car } => export(cid, car).await,
            StoreCommand::Index => {
                let (store, _) = store().await?;
                let indexed = store.index_all_unixfs().await?;
                println!("indexed {indexed} files larger than one block by their UnixFS id");
                Ok(())
            }
        }
    })
}

/// Uploads `file` to the configured Arweave gateway as a transaction signed by the JWK wallet at
/// `wallet`; returns its `ar://` URI.
pub(crate) async fn upload_to_arweave(file: &Path, wallet: &Path) -> eyre::Result<String> {
    let config = fetch_config()?;
    let wallet = aik_store::ArweaveWallet::load(wallet)?;
    let gateway = config.arweave_gateway.clone();
    let uploader = aik_store::ArweaveUploader::with_client(gateway.clone(), http_client(&config)?);
    let tags = [("App-Name", "AI Kernel"), ("App-Version", env!("CARGO_PKG_VERSION"))];
    let tx = uploader.upload_file(&wallet, file, &tags).await.wrap_err_with(|| {
        format!("cannot upload {} to Arweave through {gateway}", file.display())
    })?;
    Ok(format!("ar://{tx}"))
}

/// Adds and pins `file` on the Kubo RPC API at `api`, checking that IPFS names it `root` (the
/// UnixFS id the store computed).
pub(crate) async fn pin_on_kubo(api: &aik_store::Url, file: &Path, root: Cid) -> eyre::Result<()> {
    let pinned = aik_store::KuboRpc::new(api.clone())
        .add_file(file)
        .await
        .wrap_err_with(|| format!("cannot add {} through {api}", file.display()))?;
    if pinned != root.to_string() {
        bail!("{api} named {} {pinned}, not its UnixFS id {root}", file.display());
    }
    Ok(())
}

async fn add(
    file: PathBuf,
    json: bool,
    ipfs_api: Option<aik_store::Url>,
    arweave_wallet: Option<PathBuf>,
) -> eyre::Result<()> {
    let (store, _) = store().await?;
    let dag = store
        .add_unixfs(&file)
        .await
        .wrap_err_with(|| format!("cannot add {} to the store", file.display()))?;
    if let Some(api) = ipfs_api {
        pin_on_kubo(&api, &file, dag.root).await?;
    }
    let arweave = match arweave_wallet {
        Some(wallet) => Some(upload_to_arweave(&file, &wallet).await?),
        None => None,
    };
    if json {
        let mut report = serde_json::json!({
            "cid": dag.root.to_string(),
            "sha256": dag.sha256.to_hex(),
            "size": dag.size,
        });
        if let Some(uri) = &arweave {
            report["arweave"] = uri.clone().into();
        }
        println!("{report}");
    } else {
        println!("cid     {}", dag.root);
        println!("sha256  {}", dag.sha256.to_hex());
        println!("size    {}", dag.size);
        if let Some(uri) = &arweave {
            println!("arweave {uri}");
        }
    }
    Ok(())
}

async fn get(cid: Cid, out: PathBuf) -> eyre::Result<()> {
    let (store, fetcher) = store().await?;
    let id = fetcher
        .fetch_unixfs(&store, cid, &progress_bar("fetch"))
        .await
        .wrap_err_with(|| format!("{cid} is not in the local store, nor fetchable"))?;
    let path = store.path_of(&id).await?.ok_or_else(|| eyre!("{id} vanished from the store"))?;
    std::fs::copy(&path, &out).wrap_err_with(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

async fn export(cid: Cid, car: PathBuf) -> eyre::Result<()> {
    let (store, _) = store().await?;
    let Some((dag, path)) = store.unixfs(&cid).await? else {
        bail!("{cid} is not in the local store (`aik store add FILE` keeps it)");
    };
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&car).wrap_err_with(|| format!("cannot create {}", car.display()))?,
    );
    let written = tokio::task::spawn_blocking(move || {
        let written = write_car(&dag, &path, &mut out)?;
        std::io::Write::flush(&mut out).map_err(|e| aik_store::Error::Io {
            action: "write CAR".into(),
            path: path.clone(),
            source: e,
        })?;
        Ok::<_, aik_store::Error>(written)
    })
    .await??;
    eprintln!("wrote {} ({written} bytes)", car.display());
    Ok(())
}
