//! HelloKernel, the README's example: the answer is stored; a wrong fee reverts; and the
//! README shows the contract exactly as it is compiled.

use aik_apps::{Answer, bindings::HelloKernel as HK};
use alloy::primitives::U256;

use crate::net::{Net, word};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_stores_the_committees_answer_and_a_wrong_fee_reverts() {
    let (net, script) = Net::scripted().await;
    let hello = HK::deploy(net.provider.clone(), net.kernel_address(), net.model()).await.unwrap();
    let max_tokens = hello.MAX_TOKENS().call().await.unwrap();
    let callback_gas = hello.CALLBACK_GAS().call().await.unwrap();
    let fee = net.env().kernel().estimate_fee(net.model(), max_tokens, callback_gas).await.unwrap();
    // 1 gwei per token for the registered model (the finalization's gas is off in these tests).
    assert_eq!(fee, U256::from(4_000_000_000u64));
    let err = hello.ask("q".into()).value(fee + U256::from(1)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<HK::HelloKernelWrongFee>(),
        Some(HK::HelloKernelWrongFee { value: fee + U256::from(1), fee })
    );
    for yes in [true, false] {
        script.answer(word(u64::from(yes)));
        let receipt = hello
            .ask("Is water wet?".into())
            .value(fee)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let prompt = receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| {
                l.log_decode::<aik_kernel::bindings::DecentralizedInference::PromptSubmitted>().ok()
            })
            .unwrap()
            .inner
            .data
            .promptId;
        assert_eq!(net.answer(prompt).await, Answer::Finalized(word(u64::from(yes))));
        assert!(hello.answered(prompt).call().await.unwrap());
        assert_eq!(hello.answer(prompt).call().await.unwrap(), yes);
    }
    net.stop().await;
}

#[test]
fn the_readme_shows_the_contract_as_compiled() {
    let source = include_str!("../../../../contracts/src/examples/HelloKernel.sol");
    let readme = include_str!("../../../../README.md");
    assert!(
        readme.contains(&format!("```solidity\n{source}```")),
        "README.md must show contracts/src/examples/HelloKernel.sol verbatim in a solidity block"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_demo_stores_the_models_answer() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("hello", &net.env()).await.unwrap();
    let hello = HK::new(outcome.contract, net.provider.clone());
    let Answer::Finalized(output) = net.answer(outcome.prompts[0]).await else {
        panic!("the live committee should agree")
    };
    let yes = U256::from_be_slice(&output) == U256::from(1);
    assert!(hello.answered(outcome.prompts[0]).call().await.unwrap());
    assert_eq!(hello.answer(outcome.prompts[0]).call().await.unwrap(), yes);
    assert_eq!(outcome.answer, yes.to_string());
    net.stop().await;
}
