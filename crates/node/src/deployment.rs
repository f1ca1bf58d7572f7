//! The deployment file: where a kernel lives and which model it serves, written by `aik up` (or
//! `aik deploy`) and read by every other command and by nodes.

use std::path::Path;

use aik_kernel::KernelAddresses;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A deployed kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Chain id.
    pub chain_id: u64,
    /// HTTP JSON-RPC endpoint.
    pub rpc_url: String,
    /// WebSocket JSON-RPC endpoint, if the chain has one.
    pub ws_url: Option<String>,
    /// EAI token.
    pub token: Address,
    /// ModelFileSystem.
    pub models: Address,
    /// GPUManagement.
    pub gpu: Address,
    /// ContextManager.
    pub context: Address,
    /// PromptScheduler.
    pub scheduler: Address,
    /// DecentralizedInference.
    pub kernel: Address,
    /// The `KernelTimelock` that owns every contract (owner actions are scheduled there), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timelock: Option<Address>,
    /// The owner account: proposes and executes through the timelock when there is one.
    pub owner: Address,
    /// The default model's id.
    pub model_id: u64,
    /// Block the kernel was deployed at (log scans start here).
    pub deploy_block: u64,
}

impl Deployment {
    /// The contract addresses.
    pub const fn addresses(&self) -> KernelAddresses {
        KernelAddresses {
            token: self.token,
            models: self.models,
            gpu: self.gpu,
            context: self.context,
            scheduler: self.scheduler,
            kernel: self.kernel,
            timelock: self.timelock,
        }
    }

    /// The deployment a chain's kernel directory names: the newest entry, or `kernel`'s. A
    /// kernel that is not in the directory (or a chain without one) is read from the kernel
    /// itself, with model 1 as the default and logs scanned from block 0.
    pub async fn from_chain(rpc_url: &str, kernel: Option<Address>) -> Result<Self> {
        use aik_kernel::bindings::DecentralizedInference as DI;
        use alloy::providers::{Provider, ProviderBuilder};
        let url = rpc_url
            .parse()
            .map_err(|e| Error::Config(format!("invalid rpc url {rpc_url}: {e}")))?;
        let provider = ProviderBuilder::new().connect_http(url);
        let entry = aik_kernel::directory::find_deployment(&provider, kernel).await?;
        let (kernel, registrant, model_id, deploy_block) = match (&entry, kernel) {
            (Some(e), _) => (e.kernel, Some(e.registrant), e.defaultModel, e.deployBlock),
            (None, Some(kernel)) => (kernel, None, 1, 0),
            (None, None) => {
                return Err(Error::Config(format!(
                    "no kernel registered in the directory of {rpc_url} ({}); pass --kernel ADDRESS or use a deployment file",
                    aik_kernel::directory::directory_address()
                )));
            }
        };
        let di = DI::new(kernel, &provider);
        let parts = di.components().call().await.map_err(|e| {
            Error::Config(format!("{kernel} on {rpc_url} is not an AI Kernel: {e}"))
        })?;
        let owner = di
            .owner()
            .call()
            .await
            .map_err(|e| Error::Config(format!("cannot read the owner of {kernel}: {e}")))?;
        // Registered by the deployer, owned since by its timelock: owner actions go there.
        let (owner, timelock) = match registrant {
            Some(registrant) if registrant != owner => (registrant, Some(owner)),
            _ => (owner, None),
        };
        Ok(Self {
            chain_id: provider.get_chain_id().await?,
            rpc_url: rpc_url.to_owned(),
            ws_url: None,
            token: parts.token,
            models: parts.models,
            gpu: parts.gpu,
            context: parts.context,
            scheduler: parts.scheduler,
            kernel,
            timelock,
            owner,
            model_id,
            deploy_block,
        })
    }

    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read deployment file {}: {e}", path.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!("deployment file {} is invalid: {e}", path.display()))
        })
    }

    /// Writes the file atomically (temp file then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a deployment serializes");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
    }
}
