//! The model registry and the EAI token, its permit (EIP-2612) included.

use aik_kernel::{
    ModelSpec, PromptLayout, SchedulingPolicy,
    bindings::{EAI, ModelFileSystem as MFS},
};
use alloy::{
    primitives::{Address, B256, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{SolStruct, eip712_domain},
};

use crate::fixture::{EAI as ONE_EAI, Env, PRICE, assert_revert, test_model};

type Errors = MFS::ModelFileSystemErrors;

/// A base model registers with the plain-text layout, which reads back and is in its event; the
/// layout is fixed for the model's life. A value the protocol does not define is refused by the
/// ABI decoder before anything is stored, while the same entry with a defined one goes through.
#[tokio::test]
async fn test_model_registry_records_the_prompt_layout_and_refuses_unknown_ones() {
    let env = Env::new().await;
    let models = env.owner.models();
    let spec = ModelSpec {
        layout: PromptLayout::PlainText,
        ..test_model(3, SchedulingPolicy::RoundRobin)
    };
    let id = env.owner.register_model(&spec).await.unwrap();
    let model = models.getModel(id).call().await.unwrap();
    assert_eq!(model.layout, PromptLayout::PlainText.to_u8());
    let first = models.getModel(U256::from(1)).call().await.unwrap();
    assert_eq!(first.layout, PromptLayout::Chat.to_u8(), "the fixture's chat model");
    let events = models.ModelRegistered_filter().from_block(0).query().await.unwrap();
    let layouts: Vec<(U256, u8)> = events.iter().map(|(e, _)| (e.modelId, e.layout)).collect();
    assert_eq!(layouts, vec![(U256::from(1), 0), (id, 1)]);

    let register = |layout: u8| {
        let mut entry = model.clone();
        entry.layout = layout;
        models.registerModel(entry).from(env.owner.from())
    };
    assert_eq!(register(1).call().await.unwrap(), id + U256::from(1), "a defined layout passes");
    let refused = register(2).call().await.unwrap_err().to_string();
    assert!(refused.contains("revert"), "{refused}");
    assert!(register(255).estimate_gas().await.is_err());
    assert_eq!(models.modelCount().call().await.unwrap(), id);
}

#[tokio::test]
async fn test_model_registry_records_and_validates_models() {
    let env = Env::new().await;
    let spec = test_model(3, SchedulingPolicy::RoundRobin);
    let id = env.owner.register_model(&spec).await.unwrap();
    assert_eq!(id, U256::from(2));
    let model = env.owner.models().getModel(id).call().await.unwrap();
    assert_eq!(model.name, spec.name);
    assert_eq!(model.driver, "llama-gguf/1");
    assert_eq!(
        (model.fileSha256, model.fileSize, model.chunkSize),
        (spec.file_sha256, spec.file_size, spec.chunk_size)
    );
    assert_eq!(model.uris, spec.uris);
    assert_eq!(
        (
            model.terms.pricePerToken,
            model.terms.committeeSize,
            model.terms.policy,
            model.terms.minMemoryMb,
            model.terms.retired
        ),
        (PRICE, 3, SchedulingPolicy::RoundRobin as u8, 512, false)
    );
    assert_eq!(env.owner.models().modelCount().call().await.unwrap(), U256::from(2));

    env.owner.set_model_terms(id, 7, 5, SchedulingPolicy::FeePriority, 1024).await.unwrap();
    let terms = env.owner.models().modelTerms(id).call().await.unwrap();
    assert_eq!(
        (terms.pricePerToken, terms.committeeSize, terms.policy, terms.minMemoryMb),
        (7, 5, 0, 1024)
    );
    assert_eq!(env.owner.estimate_fee(id, 10, 0).await.unwrap(), U256::from(70));
    let uris = vec!["ipfs://bafkreia".to_string(), "https://example.invalid/m.gguf".to_string()];
    aik_kernel::Result::Ok(())
        .and(
            crate::fixture::send_ok(
                env.owner.models().setModelUris(id, uris.clone()).from(env.owner.from()),
            )
            .await,
        )
        .unwrap();
    assert_eq!(env.owner.models().getModel(id).call().await.unwrap().uris, uris);

    let mut bad = spec.clone();
    bad.name = String::new();
    assert_revert(
        env.owner.register_model(&bad).await,
        Errors::ModelFileSystemEmptyField(MFS::ModelFileSystemEmptyField { field: "name".into() }),
    );
    let mut bad = spec.clone();
    bad.driver = String::new();
    assert_revert(
        env.owner.register_model(&bad).await,
        Errors::ModelFileSystemEmptyField(MFS::ModelFileSystemEmptyField {
            field: "driver".into(),
        }),
    );
    let mut bad = spec.clone();
    bad.merkle_root = B256::ZERO;
    assert_revert(
        env.owner.register_model(&bad).await,
        Errors::ModelFileSystemInvalidFile(MFS::ModelFileSystemInvalidFile {
            fileSha256: bad.file_sha256,
            fileSize: bad.file_size,
            chunkSize: bad.chunk_size,
            merkleRoot: B256::ZERO,
        }),
    );
    let mut bad = spec.clone();
    bad.uris = Vec::new();
    assert_revert(
        env.owner.register_model(&bad).await,
        Errors::ModelFileSystemInvalidUris(MFS::ModelFileSystemInvalidUris { count: U256::ZERO }),
    );
    for size in [0u8, 17] {
        let mut bad = spec.clone();
        bad.committee_size = size;
        assert_revert(
            env.owner.register_model(&bad).await,
            Errors::ModelFileSystemInvalidCommitteeSize(MFS::ModelFileSystemInvalidCommitteeSize {
                committeeSize: size,
            }),
        );
    }
    assert!(
        env.requesters[0]
            .register_model(&spec)
            .await
            .unwrap_err()
            .to_string()
            .contains("OwnableUnauthorizedAccount")
    );

    env.owner.retire_model(id).await.unwrap();
    assert!(env.owner.models().modelTerms(id).call().await.unwrap().retired);
    assert_revert(
        env.owner.retire_model(id).await,
        Errors::ModelFileSystemModelRetired(MFS::ModelFileSystemModelRetired { modelId: id }),
    );
    assert_revert(
        env.owner.set_model_terms(id, 1, 3, SchedulingPolicy::FeePriority, 0).await,
        Errors::ModelFileSystemModelRetired(MFS::ModelFileSystemModelRetired { modelId: id }),
    );
    assert_revert(
        env.owner.retire_model(U256::from(9)).await,
        Errors::ModelFileSystemUnknownModel(MFS::ModelFileSystemUnknownModel {
            modelId: U256::from(9),
        }),
    );
}

#[tokio::test]
async fn test_eai_allocation_cap_and_permit_domain() {
    let env = Env::new().await;
    let token = env.owner.token();
    assert_eq!(token.cap().call().await.unwrap(), env.params.supply_cap);
    assert_eq!(token.minter().call().await.unwrap(), env.owner.addresses().kernel);
    assert_eq!(token.symbol().call().await.unwrap(), "EAI");
    assert_eq!(token.nonces(env.owner.from()).call().await.unwrap(), U256::ZERO);
    assert_ne!(token.DOMAIN_SEPARATOR().call().await.unwrap(), B256::ZERO);
    let err = aik_kernel::bindings::EAI::deploy_builder(
        env.provider.clone(),
        env.owner.from(),
        env.owner.from(),
        U256::from(2),
        U256::from(1),
    )
    .from(env.owner.from())
    .call()
    .await
    .unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<EAI::EAIErrors>(),
        Some(EAI::EAIErrors::EAICapExceeded(EAI::EAICapExceeded {
            supplyAfter: U256::from(2),
            cap: U256::from(1)
        }))
    );
}

alloy::sol! {
    /// EIP-2612's signed message.
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// Signs an EIP-2612 permit for EAI with `signer`, over the EIP-712 domain the token declares.
fn sign_permit(
    signer: &PrivateKeySigner,
    token: Address,
    permit: &Permit,
) -> (u8, B256, B256, B256) {
    let domain = eip712_domain! {
        name: "EAI",
        version: "1",
        chain_id: 31337,
        verifying_contract: token,
    };
    let hash = permit.eip712_signing_hash(&domain);
    let signature = signer.sign_hash_sync(&hash).expect("signs");
    let v = 27 + u8::from(signature.v());
    (v, B256::from(signature.r()), B256::from(signature.s()), domain.separator())
}

#[tokio::test]
async fn test_eai_permit_signed_offline_sets_the_allowance_once() {
    let env = Env::new().await;
    let token = env.owner.token();
    // The holder has EAI but no ether: the permit lets a relayer (the owner) pay the gas.
    let holder = PrivateKeySigner::random();
    env.owner.transfer_eai(holder.address(), U256::from(50 * ONE_EAI)).await.unwrap();
    let spender = &env.requesters[0];
    let value = U256::from(20 * ONE_EAI);
    let deadline = U256::from(env.now().await + 3_600);
    let permit = Permit {
        owner: holder.address(),
        spender: spender.from(),
        value,
        nonce: U256::ZERO,
        deadline,
    };
    let (v, r, s, separator) = sign_permit(&holder, env.owner.addresses().token, &permit);
    assert_eq!(token.DOMAIN_SEPARATOR().call().await.unwrap(), separator);

    let receipt = token
        .permit(holder.address(), spender.from(), value, deadline, v, r, s)
        .from(env.owner.from())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(token.allowance(holder.address(), spender.from()).call().await.unwrap(), value);
    assert_eq!(token.nonces(holder.address()).call().await.unwrap(), U256::from(1));

    // The spender uses the allowance.
    let receipt = spender
        .token()
        .transferFrom(holder.address(), spender.from(), value)
        .from(spender.from())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(env.owner.eai_balance(holder.address()).await.unwrap(), U256::from(30 * ONE_EAI));
    assert_eq!(env.owner.eai_balance(spender.from()).await.unwrap(), value);
    assert_eq!(token.allowance(holder.address(), spender.from()).call().await.unwrap(), U256::ZERO);

    // The same signature cannot be replayed: the nonce moved on, so it recovers another signer.
    let replay = token
        .permit(holder.address(), spender.from(), value, deadline, v, r, s)
        .from(env.owner.from())
        .call()
        .await
        .unwrap_err();
    match replay.as_decoded_interface_error::<EAI::EAIErrors>() {
        Some(EAI::EAIErrors::ERC2612InvalidSigner(e)) => {
            assert_eq!(e.owner, holder.address());
            assert_ne!(e.signer, holder.address());
        }
        other => panic!("expected ERC2612InvalidSigner, got {other:?}"),
    }
}

#[tokio::test]
async fn test_eai_permit_rejects_an_expired_deadline_and_a_wrong_signer() {
    let env = Env::new().await;
    let token = env.owner.token();
    let holder = PrivateKeySigner::random();
    env.owner.transfer_eai(holder.address(), U256::from(ONE_EAI)).await.unwrap();
    let spender = env.requesters[0].from();
    let value = U256::from(ONE_EAI);
    let now = env.now().await;

    let expired = U256::from(now - 1);
    let permit =
        Permit { owner: holder.address(), spender, value, nonce: U256::ZERO, deadline: expired };
    let (v, r, s, _) = sign_permit(&holder, env.owner.addresses().token, &permit);
    let err = token
        .permit(holder.address(), spender, value, expired, v, r, s)
        .from(env.owner.from())
        .call()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<EAI::EAIErrors>(),
        Some(EAI::EAIErrors::ERC2612ExpiredSignature(EAI::ERC2612ExpiredSignature {
            deadline: expired
        }))
    );

    // A valid-looking permit for the holder's tokens, signed by someone else.
    let deadline = U256::from(now + 3_600);
    let intruder = PrivateKeySigner::random();
    let permit = Permit { owner: holder.address(), spender, value, nonce: U256::ZERO, deadline };
    let (v, r, s, _) = sign_permit(&intruder, env.owner.addresses().token, &permit);
    let err = token
        .permit(holder.address(), spender, value, deadline, v, r, s)
        .from(env.owner.from())
        .call()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<EAI::EAIErrors>(),
        Some(EAI::EAIErrors::ERC2612InvalidSigner(EAI::ERC2612InvalidSigner {
            signer: intruder.address(),
            owner: holder.address()
        }))
    );
    assert_eq!(token.allowance(holder.address(), spender).call().await.unwrap(), U256::ZERO);
    assert_eq!(token.nonces(holder.address()).call().await.unwrap(), U256::ZERO);
}
