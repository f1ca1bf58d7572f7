//! Getting the file of a registered model onto this machine, verified.

use std::path::{Path, PathBuf};

use aik_infer::{ExecOptions, LlamaGgufDriver, PromptLayout};
use aik_kernel::bindings::ModelFileSystem;
use aik_store::{ContentId, Expected, Fetcher, LocalStore, Progress, Uri};
use alloy::{primitives::U256, providers::Provider};

use crate::{Error, Result};

/// A model as the registry describes it.
pub type RegisteredModel = ModelFileSystem::Model;

/// The registered driver ids this node runs: its driver's id, then that driver's aliases.
pub fn drivers() -> Vec<&'static str> {
    use aik_infer::LlamaGgufDriver as Driver;
    std::iter::once(Driver::VERSION).chain(Driver::ALIASES.iter().copied()).collect()
}

/// Reads model `model_id` from the ModelFileSystem at `registry`.
pub async fn registered_model<P: Provider + Clone>(
    provider: &P,
    registry: alloy::primitives::Address,
    model_id: U256,
) -> Result<RegisteredModel> {
    ModelFileSystem::new(registry, provider.clone()).getModel(model_id).call().await.map_err(|e| {
        Error::Model { model_id: model_id.saturating_to(), reason: format!("getModel failed: {e}") }
    })
}

/// How prompts for `model` are rendered, as its registry entry says; a value this node does not
/// know is an error (the node must not guess a layout its committee may not share).
pub fn prompt_layout(model_id: U256, model: &RegisteredModel) -> Result<PromptLayout> {
    PromptLayout::from_u8(model.layout).ok_or_else(|| Error::Model {
        model_id: model_id.saturating_to(),
        reason: format!("its prompt layout {} is not one this node knows", model.layout),
    })
}

/// Loads the driver of registered model `model_id` from its verified file at `path`, rendering
/// prompts in the registered layout. A file whose chat template the layout needs but lacks is
/// refused here, before the node registers for the model: every prompt would fail on it.
pub fn load_driver(
    model_id: U256,
    model: &RegisteredModel,
    path: &Path,
    options: ExecOptions,
) -> Result<LlamaGgufDriver> {
    let layout = prompt_layout(model_id, model)?;
    let bad = |reason: String| Error::Model { model_id: model_id.saturating_to(), reason };
    LlamaGgufDriver::load(path, options)
        .and_then(|driver| driver.with_layout(layout))
        .map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// Makes sure the model's file is in `store` and returns its path: already stored, else copied
/// from `local_copy` when that file has the registered hash (a model cache), else downloaded
/// from the registered URIs in order. Every path checks sha256, size and the chunk Merkle root.
pub async fn fetch_model(
    model_id: U256,
    model: &RegisteredModel,
    store: &LocalStore,
    fetcher: &Fetcher,
    local_copy: Option<&Path>,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    let id = ContentId::from_digest(model.fileSha256.0);
    let bad = |reason: String| Error::Model { model_id: model_id.saturating_to(), reason };
    // The registered driver says how the file is run; a node without it must not register for
    // the model (it would answer differently from those that have it), nor download it.
    if !LlamaGgufDriver::runs(&model.driver) {
        return Err(bad(format!(
            "it runs on driver {:?}, which this node does not have (it has {})",
            model.driver,
            drivers().join(", ")
        )));
    }
    if !store.has(&id)
        && let Some(path) = local_copy.filter(|p| p.is_file())
    {
        let copied = store.put_file(path).await?;
        if copied != id {
            store.remove(&copied).await?;
            tracing::warn!(path = %path.display(), %copied, expected = %id, "local model copy has another hash; downloading");
        }
    }
    if !store.has(&id) {
        let uris =
            model.uris.iter().map(|u| u.parse::<Uri>()).collect::<aik_store::Result<Vec<_>>>()?;
        if uris.is_empty() {
            return Err(bad("the registry lists no URI to fetch it from".into()));
        }
        let expected = Expected::id(id)
            .with_size(model.fileSize)
            .with_merkle_root(u64::from(model.chunkSize), model.merkleRoot.0);
        fetcher.fetch_first(store, &uris, &expected, progress).await?;
    }
    let path = store.path_of(&id).await?.ok_or_else(|| {
        bad(format!("{id} vanished from the store at {}", store.root().display()))
    })?;
    let size = std::fs::metadata(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?.len();
    if size != model.fileSize {
        return Err(bad(format!(
            "stored file is {size} bytes, the registry says {}",
            model.fileSize
        )));
    }
    Ok(path)
}
