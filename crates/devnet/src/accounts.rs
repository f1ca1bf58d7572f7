//! The prefunded dev accounts.

use alloy::{
    primitives::Address,
    signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English},
};

use crate::{Error, Result};

/// One prefunded account: its address and the key that signs for it.
#[derive(Clone, Debug)]
pub struct DevAccount {
    /// The account address.
    pub address: Address,
    /// Local signer holding the private key; give it to an alloy wallet to sign transactions.
    pub signer: PrivateKeySigner,
}

impl DevAccount {
    /// The private key as 0x-prefixed hex, as printed by `aik devnet`.
    pub fn private_key_hex(&self) -> String {
        format!("0x{}", alloy::primitives::hex::encode(self.signer.to_bytes()))
    }
}

/// Derives `count` accounts from `mnemonic` on the path `m/44'/60'/0'/0/i`, as Hardhat and
/// Anvil do, so the same addresses hold the same funds on every local chain.
pub fn derive_dev_accounts(mnemonic: &str, count: usize) -> Result<Vec<DevAccount>> {
    (0..count)
        .map(|index| {
            let index = u32::try_from(index)
                .map_err(|_| Error::Config(format!("account index {index} is too large")))?;
            let signer = MnemonicBuilder::<English>::default()
                .phrase(mnemonic)
                .index(index)
                .and_then(|builder| builder.build())
                .map_err(|err| {
                    Error::Config(format!("cannot derive dev account {index} from mnemonic: {err}"))
                })?;
            Ok(DevAccount { address: signer.address(), signer })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEV_MNEMONIC;

    #[test]
    fn derives_the_hardhat_and_anvil_addresses() {
        let accounts = derive_dev_accounts(DEV_MNEMONIC, 10).unwrap();
        assert_eq!(accounts.len(), 10);
        assert_eq!(
            accounts[0].address,
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>().unwrap()
        );
        assert_eq!(
            accounts[0].private_key_hex(),
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        );
        assert_eq!(
            accounts[9].address,
            "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720".parse::<Address>().unwrap()
        );
    }

    #[test]
    fn bad_mnemonic_is_a_config_error() {
        let err = derive_dev_accounts("not a mnemonic", 1).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
}
