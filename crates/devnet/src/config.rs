//! What a dev chain looks like: addresses, chain id, hardfork, mining and persistence.

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr, time::Duration};

use revm::primitives::hardfork::SpecId;

use crate::{Error, Result};

/// The mnemonic Hardhat and Anvil derive their prefunded accounts from.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Chain id Hardhat and Anvil use for local chains, so wallets and tools recognise it.
pub const DEFAULT_CHAIN_ID: u64 = 31337;

/// Block gas limit: mainnet-like, so gas figures measured here carry over.
pub const DEFAULT_GAS_LIMIT: u64 = 30_000_000;

/// Base fee of the genesis block (1 gwei); later blocks follow the EIP-1559 update rule.
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;

/// Hardforks a dev chain can run. Newer forks imply the older ones.
///
/// Prague is the default because the pinned solc compiles for it; an older fork serves contracts
/// built for an older EVM version (e.g. `--hardfork shanghai` disables blob and 7702 features).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)] // the variants are the hardfork names
pub enum Hardfork {
    Frontier,
    Homestead,
    Byzantium,
    Petersburg,
    Istanbul,
    Berlin,
    London,
    /// The merge.
    Paris,
    Shanghai,
    Cancun,
    #[default]
    Prague,
    Osaka,
}

impl Hardfork {
    /// All hardforks, oldest first.
    pub const ALL: [Self; 12] = [
        Self::Frontier,
        Self::Homestead,
        Self::Byzantium,
        Self::Petersburg,
        Self::Istanbul,
        Self::Berlin,
        Self::London,
        Self::Paris,
        Self::Shanghai,
        Self::Cancun,
        Self::Prague,
        Self::Osaka,
    ];

    /// The revm spec that implements this fork.
    pub const fn spec_id(self) -> SpecId {
        match self {
            Self::Frontier => SpecId::FRONTIER,
            Self::Homestead => SpecId::HOMESTEAD,
            Self::Byzantium => SpecId::BYZANTIUM,
            Self::Petersburg => SpecId::PETERSBURG,
            Self::Istanbul => SpecId::ISTANBUL,
            Self::Berlin => SpecId::BERLIN,
            Self::London => SpecId::LONDON,
            Self::Paris => SpecId::MERGE,
            Self::Shanghai => SpecId::SHANGHAI,
            Self::Cancun => SpecId::CANCUN,
            Self::Prague => SpecId::PRAGUE,
            Self::Osaka => SpecId::OSAKA,
        }
    }

    /// Lower-case name, as accepted by `--hardfork`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Frontier => "frontier",
            Self::Homestead => "homestead",
            Self::Byzantium => "byzantium",
            Self::Petersburg => "petersburg",
            Self::Istanbul => "istanbul",
            Self::Berlin => "berlin",
            Self::London => "london",
            Self::Paris => "paris",
            Self::Shanghai => "shanghai",
            Self::Cancun => "cancun",
            Self::Prague => "prague",
            Self::Osaka => "osaka",
        }
    }

    pub(crate) fn is_active(self, fork: Self) -> bool {
        self >= fork
    }
}

impl fmt::Display for Hardfork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Hardfork {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        let lower = if lower == "merge" { "paris".to_string() } else { lower };
        Self::ALL.into_iter().find(|fork| fork.name() == lower).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.name()).collect();
            Error::Config(format!("unknown hardfork {s:?}; expected one of {}", names.join(", ")))
        })
    }
}

/// Everything needed to start a chain. `Default` is the `aik devnet` default: 127.0.0.1:8545,
/// chain 31337, Prague, 10 accounts with 10,000 ETH, one block per transaction, in memory.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (read it back from [`crate::Devnet::local_addr`]).
    pub port: u16,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Directory of the embedded database; `None` keeps everything in memory.
    pub state_dir: Option<PathBuf>,
    /// Mine every interval instead of once per transaction.
    pub block_time: Option<Duration>,
    /// EVM rules.
    pub hardfork: Hardfork,
    /// Number of prefunded dev accounts derived from the mnemonic.
    pub accounts: usize,
    /// Balance of each dev account, in wei.
    pub balance: alloy::primitives::U256,
    /// BIP-39 phrase the dev accounts derive from (path `m/44'/60'/0'/0/i`).
    pub mnemonic: String,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Largest accepted HTTP body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8545,
            chain_id: DEFAULT_CHAIN_ID,
            state_dir: None,
            block_time: None,
            hardfork: Hardfork::default(),
            accounts: 10,
            balance: alloy::primitives::U256::from(10_000u64)
                * alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18u64)),
            mnemonic: DEV_MNEMONIC.to_string(),
            gas_limit: DEFAULT_GAS_LIMIT,
            max_body_bytes: 8 * 1024 * 1024,
        }
    }
}

impl DevnetConfig {
    /// The defaults on a free port: what tests and in-process users want.
    pub fn test() -> Self {
        Self { port: 0, ..Self::default() }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.accounts == 0 || self.accounts > 1000 {
            return Err(Error::Config(format!(
                "accounts must be between 1 and 1000, got {}",
                self.accounts
            )));
        }
        if self.chain_id == 0 {
            return Err(Error::Config("chain id must not be 0".into()));
        }
        if self.gas_limit < 21_000 {
            return Err(Error::Config(format!(
                "gas limit must be at least 21000, got {}",
                self.gas_limit
            )));
        }
        if self.block_time.is_some_and(|t| t.is_zero()) {
            return Err(Error::Config("block time must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardfork_names_round_trip() {
        for fork in Hardfork::ALL {
            assert_eq!(fork.name().parse::<Hardfork>().unwrap(), fork);
        }
        assert_eq!("Merge".parse::<Hardfork>().unwrap(), Hardfork::Paris);
        let err = "pragueX".parse::<Hardfork>().unwrap_err().to_string();
        assert!(err.contains("pragueX") && err.contains("prague"), "{err}");
    }

    #[test]
    fn default_balance_is_ten_thousand_ether() {
        assert_eq!(
            DevnetConfig::default().balance,
            alloy::primitives::U256::from(10_000_000_000_000_000_000_000u128)
        );
    }
}
