//! The kernel directory: the same address on every chain (CREATE2 through the deterministic
//! deployer the dev chain has, as every public chain does), registration by a kernel's owner
//! only, the newest entry and a named kernel's.

use aik_kernel::{
    bindings::KernelDirectory::{self as KD, KernelDirectoryErrors as Errors},
    directory::{
        DETERMINISTIC_DEPLOYER, directory_address, ensure_directory, find_deployment,
        register_deployment,
    },
};
use alloy::{primitives::Address, providers::Provider};

use crate::fixture::{Env, assert_revert};

#[tokio::test]
async fn test_directory_is_found_by_address_and_lists_only_what_owners_registered() {
    let env = Env::new().await;
    let owner = env.owner.from();
    assert!(!env.provider.get_code_at(DETERMINISTIC_DEPLOYER).await.unwrap().is_empty());
    // Not deployed yet: nothing to find.
    assert_eq!(find_deployment(&env.provider, None).await.unwrap(), None);
    let address = ensure_directory(&env.provider, owner).await.unwrap().unwrap();
    assert_eq!(address, directory_address());
    assert!(!env.provider.get_code_at(address).await.unwrap().is_empty());
    // Idempotent, and the same address on another fresh chain.
    assert_eq!(ensure_directory(&env.provider, owner).await.unwrap(), Some(address));
    let other = Env::new().await;
    assert_eq!(ensure_directory(&other.provider, other.owner.from()).await.unwrap(), Some(address));
    assert_eq!(find_deployment(&env.provider, None).await.unwrap(), None, "empty directory");

    // Only the kernel's owner registers it.
    let kernel = env.owner.addresses().kernel;
    let stranger = env.requesters[0].from();
    let result = register_deployment(&env.provider, stranger, kernel, 1, 0, "fake").await;
    assert_revert(
        result,
        Errors::KernelDirectoryNotOwner(KD::KernelDirectoryNotOwner {
            kernel,
            caller: stranger,
            owner,
        }),
    );
    register_deployment(&env.provider, owner, kernel, 1, 7, "aik test").await.unwrap();
    let entry = find_deployment(&env.provider, None).await.unwrap().unwrap();
    assert_eq!(
        (
            entry.kernel,
            entry.registrant,
            entry.defaultModel,
            entry.deployBlock,
            entry.version.as_str()
        ),
        (kernel, owner, 1, 7, "aik test")
    );
    // One entry, findable by its kernel; a kernel nobody registered is not there.
    let directory = KD::new(address, &env.provider);
    assert_eq!(directory.count().call().await.unwrap(), alloy::primitives::U256::from(1));
    assert_eq!(find_deployment(&env.provider, Some(kernel)).await.unwrap().unwrap().kernel, kernel);
    assert_eq!(find_deployment(&env.provider, Some(Address::ZERO)).await.unwrap(), None);
}
