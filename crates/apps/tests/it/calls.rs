//! Helpers for driving the example contracts from tests: mined transactions with their cost,
//! decoded events and reverts, and `CallForwarder`, a contract account that refuses native coin
//! (so a test reaches the paths where a dapp's payment to its caller fails).

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::TransactionBuilder,
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol_types::{SolError, SolEvent},
};

alloy::sol!(
    #[sol(rpc)]
    CallForwarder,
    "../../contracts/out/CallForwarder.json"
);

/// Sends `call` with room for the kernel path it takes when mined (queued or anchored: the
/// in-process workers may draw or finalize between the estimate and the block), waits for its
/// receipt and asserts it succeeded.
pub(crate) async fn mined<D: CallDecoder>(
    call: CallBuilder<&DynProvider, D>,
) -> TransactionReceipt {
    let estimate = call.estimate_gas().await.unwrap();
    let call = call.gas(estimate + aik_kernel::SUBMIT_GAS_HEADROOM);
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
    receipt
}

/// What the sender paid for gas in `receipt`.
pub(crate) fn gas_cost(receipt: &TransactionReceipt) -> U256 {
    U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
}

/// The first event of type `E` in `receipt`; panics if there is none.
pub(crate) fn log<E: SolEvent>(receipt: &TransactionReceipt) -> E {
    logs::<E>(receipt).into_iter().next().unwrap_or_else(|| panic!("no {} event", E::SIGNATURE))
}

/// Every event of type `E` in `receipt`, in order.
pub(crate) fn logs<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<E>().ok())
        .map(|l| l.inner.data)
        .collect()
}

/// The revert of a plain transfer of `value` from `from` to `to`, decoded as `E`.
pub(crate) async fn transfer_revert<E: SolError>(
    from: &DynProvider,
    to: Address,
    value: U256,
) -> Option<E> {
    let request = TransactionRequest::default().with_to(to).with_value(value);
    let err = from.call(request).await.expect_err("the transfer should revert");
    err.as_error_resp().and_then(|payload| payload.as_decoded_error::<E>())
}

/// Deploys a [`CallForwarder`] from `provider`.
pub(crate) async fn forwarder(
    provider: &DynProvider,
) -> CallForwarder::CallForwarderInstance<DynProvider> {
    CallForwarder::deploy(provider.clone()).await.unwrap()
}

/// abi-encoded calldata of `call`, for [`CallForwarder`].
pub(crate) fn calldata<C: alloy::sol_types::SolCall>(call: C) -> Bytes {
    call.abi_encode().into()
}

/// The address of `Net::other` (dev account 6 of the dev mnemonic).
pub(crate) fn other_account() -> Address {
    aik_devnet::derive_dev_accounts(aik_devnet::DEV_MNEMONIC, 7).unwrap()[6].address
}
