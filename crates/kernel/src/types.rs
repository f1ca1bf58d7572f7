//! Typed views of what the contracts take and return, with the enums the JSON ABI flattens to
//! `uint8` restored.

use alloy::primitives::{Address, B256, Bytes, U256};

use crate::{
    Error, OutputFormat, PromptLayout, Result, SamplingSpec,
    bindings::{DecentralizedInference as DI, GPUManagement, ModelFileSystem},
};

macro_rules! tagged_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $tag:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $tag),+
        }

        impl TryFrom<u8> for $name {
            type Error = Error;

            fn try_from(tag: u8) -> Result<Self> {
                match tag {
                    $($tag => Ok(Self::$variant),)+
                    other => Err(Error::UnexpectedValue { what: $what, value: other.to_string() }),
                }
            }
        }
    };
}

tagged_enum!(
    /// Where a prompt is in its life.
    PromptStatus, "prompt status" {
        /// No such prompt.
        None = 0,
        /// Waiting for free workers.
        Queued = 1,
        /// A committee is committing or revealing.
        Committing = 2,
        /// Done, with a result.
        Finalized = 3,
        /// Done without a result; the fee was credited back.
        Refunded = 4,
        /// Done without a result: fewer than a quorum of the committee committed (e.g. the
        /// input was never published). Nobody was penalized; most of the fee was credited back.
        Unavailable = 5,
    }
);

tagged_enum!(
    /// Why a committee member was penalized (the `WorkerPenalized` event's reason).
    Penalty, "penalty" {
        /// It never committed although a quorum did.
        Absent = 0,
        /// It committed but never revealed.
        Withheld = 1,
        /// It revealed an output other than the quorum's.
        Wrong = 2,
        /// It was in the majority whose answer a challenge overturned.
        Overturned = 3,
    }
);

tagged_enum!(
    /// When a requester contract's callback runs.
    Finality, "finality" {
        /// At finalization, as soon as the committee agreed.
        Immediate = 0,
        /// Once the answer can no longer be challenged: after the challenge window (`deliver`),
        /// or when a challenge ends, with the answer it leaves standing.
        Optimistic = 1,
    }
);

tagged_enum!(
    /// Where a prompt's challenge is.
    ChallengeStatus, "challenge status" {
        /// Never challenged.
        None = 0,
        /// Its committee is queued, drawn or at work.
        Pending = 1,
        /// Its committee agreed with the answer.
        Upheld = 2,
        /// Its committee agreed on another answer, which replaced the first.
        Overturned = 3,
        /// Its committee reached no quorum; the answer stands.
        Inconclusive = 4,
        /// No committee could be drawn before the queue timeout.
        Cancelled = 5,
    }
);

tagged_enum!(
    /// A worker's life stage.
    WorkerStatus, "worker status" {
        /// Never registered.
        None = 0,
        /// Eligible for committees.
        Active = 1,
        /// Penalized until a time.
        Jailed = 2,
        /// Leaving; stake withdrawable at a time.
        Unbonding = 3,
        /// Stake withdrawn.
        Exited = 4,
        /// Out of the draw pools by its own choice, until it resumes.
        Paused = 5,
    }
);

tagged_enum!(
    /// How a model's queue orders prompts when workers are scarce.
    SchedulingPolicy, "scheduling policy" {
        /// Highest fee per token first, first come first served on ties.
        FeePriority = 0,
        /// Requesters served in turn, one prompt each.
        RoundRobin = 1,
    }
);

/// Where a prompt's input or extra context lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// The bytes go onchain (emitted in the `PromptData` event).
    Onchain(Vec<u8>),
    /// Content in storage, addressed by its sha256.
    Storage {
        /// sha256 of the content.
        digest: B256,
        /// Its length in bytes.
        length: u64,
    },
}

impl DataSource {
    fn to_sol(&self) -> DI::DataRef {
        match self {
            Self::Onchain(bytes) => DI::DataRef {
                kind: 0,
                data: Bytes::copy_from_slice(bytes),
                digest: B256::ZERO,
                length: 0,
            },
            Self::Storage { digest, length } => {
                DI::DataRef { kind: 1, data: Bytes::new(), digest: *digest, length: *length }
            }
        }
    }
}

/// A prompt to submit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptRequest {
    /// Model id in the registry.
    pub model_id: U256,
    /// Topic (conversation) name, scoped to the requester.
    pub topic: String,
    /// The user message.
    pub input: DataSource,
    /// Optional extra context.
    pub extra: Option<DataSource>,
    /// Output format.
    pub format: OutputFormat,
    /// Most output tokens.
    pub max_tokens: u32,
    /// Bid per output token (zero: the model's price).
    pub fee_per_token: u128,
    /// Decoding rule.
    pub sampling: SamplingSpec,
    /// Gas for the requester's callback (zero: none).
    pub callback_gas_limit: u32,
    /// When the callback runs.
    pub finality: Finality,
}

impl PromptRequest {
    /// A greedy text prompt with onchain input, 64 output tokens, the model's price and no
    /// callback: change fields for anything else.
    pub fn text(model_id: u64, topic: impl Into<String>, input: impl Into<Vec<u8>>) -> Self {
        Self {
            model_id: U256::from(model_id),
            topic: topic.into(),
            input: DataSource::Onchain(input.into()),
            extra: None,
            format: OutputFormat::Text,
            max_tokens: 64,
            fee_per_token: 0,
            sampling: SamplingSpec::Greedy,
            callback_gas_limit: 0,
            finality: Finality::Immediate,
        }
    }

    /// The request as the contract takes it.
    pub fn to_sol(&self) -> DI::InferenceRequest {
        let (mode, temperature, top_p, seed) = match self.sampling {
            SamplingSpec::Greedy => (0, 0, 0, 0),
            SamplingSpec::Sample { temperature_milli, top_p_milli, seed } => {
                (1, temperature_milli, top_p_milli, seed)
            }
        };
        DI::InferenceRequest {
            modelId: self.model_id,
            topic: self.topic.clone(),
            input: self.input.to_sol(),
            extra: self.extra.as_ref().unwrap_or(&DataSource::Onchain(Vec::new())).to_sol(),
            format: DI::OutputFormat {
                kind: self.format.kind(),
                options: self.format.options().into(),
            },
            maxTokens: self.max_tokens,
            feePerToken: self.fee_per_token,
            sampling: DI::Sampling { mode, temperatureMilli: temperature, topPMilli: top_p, seed },
            callbackGasLimit: self.callback_gas_limit,
            finality: self.finality as u8,
        }
    }
}

/// A worker's declared machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hardware {
    /// GPU (or CPU) model.
    pub gpu_model: String,
    /// Memory available to models, MiB.
    pub memory_mb: u64,
    /// Engine and driver id.
    pub engine: String,
}

impl Hardware {
    pub(crate) fn to_sol(&self) -> GPUManagement::Hardware {
        GPUManagement::Hardware {
            gpuModel: self.gpu_model.clone(),
            memoryMb: self.memory_mb,
            engine: self.engine.clone(),
        }
    }

    pub(crate) fn from_sol(hardware: GPUManagement::Hardware) -> Self {
        Self { gpu_model: hardware.gpuModel, memory_mb: hardware.memoryMb, engine: hardware.engine }
    }
}

/// A model to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// Human-readable name.
    pub name: String,
    /// Versioned driver id, e.g. `gguf/1`.
    pub driver: String,
    /// sha256 of the model file.
    pub file_sha256: B256,
    /// File size in bytes.
    pub file_size: u64,
    /// Chunk size of the Merkle tree.
    pub chunk_size: u32,
    /// Merkle root of the chunk hashes.
    pub merkle_root: B256,
    /// How prompts are rendered for it (plain text for a base model); fixed at registration.
    pub layout: PromptLayout,
    /// Where to fetch the file.
    pub uris: Vec<String>,
    /// Price per output token, in wei.
    pub price_per_token: u128,
    /// Committee size k.
    pub committee_size: u8,
    /// Queue policy.
    pub policy: SchedulingPolicy,
    /// Least worker memory, MiB.
    pub min_memory_mb: u64,
}

impl ModelSpec {
    pub(crate) fn to_sol(&self) -> ModelFileSystem::Model {
        ModelFileSystem::Model {
            name: self.name.clone(),
            driver: self.driver.clone(),
            fileSha256: self.file_sha256,
            fileSize: self.file_size,
            chunkSize: self.chunk_size,
            layout: self.layout.to_u8(),
            merkleRoot: self.merkle_root,
            uris: self.uris.clone(),
            terms: ModelFileSystem::ModelTerms {
                pricePerToken: self.price_per_token,
                committeeSize: self.committee_size,
                policy: self.policy as u8,
                minMemoryMb: self.min_memory_mb,
                retired: false,
            },
        }
    }
}

/// A prompt as the kernel stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptRecord {
    /// Who asked.
    pub requester: Address,
    /// The model.
    pub model_id: u32,
    /// Where it is.
    pub status: PromptStatus,
    /// 0, or 1 after a retry.
    pub attempt: u8,
    /// Committee size.
    pub committee_size: u8,
    /// Escrowed fee, wei.
    pub fee: u128,
    /// Queued: when the requester may cancel. Committing: last second to commit.
    pub commit_deadline: u64,
    /// Last second to reveal.
    pub reveal_deadline: u64,
    /// keccak256(abi.encode(requester, topic)).
    pub topic_id: B256,
    /// sha256 of the input.
    pub input_hash: B256,
    /// Finalized turns of the topic its context includes.
    pub turn_snapshot: u64,
    /// Most output tokens.
    pub max_tokens: u32,
    /// Gas for the callback.
    pub callback_gas_limit: u32,
    /// Bit i: member i committed.
    pub committed_mask: u16,
    /// Bit i: member i revealed.
    pub revealed_mask: u16,
}

impl TryFrom<DI::PromptRecord> for PromptRecord {
    type Error = Error;

    fn try_from(r: DI::PromptRecord) -> Result<Self> {
        Ok(Self {
            requester: r.requester,
            model_id: r.modelId,
            status: PromptStatus::try_from(r.status)?,
            attempt: r.attempt,
            committee_size: r.committeeSize,
            fee: r.fee,
            commit_deadline: r.commitDeadline,
            reveal_deadline: r.revealDeadline,
            topic_id: r.topicId,
            input_hash: r.inputHash,
            turn_snapshot: r.turnSnapshot,
            max_tokens: r.maxTokens,
            callback_gas_limit: r.callbackGasLimit,
            committed_mask: r.committedMask,
            revealed_mask: r.revealedMask,
        })
    }
}

/// `wei` of EAI (18 decimals) as a decimal amount with four decimals, as `aik` shows stakes and
/// rewards: `1000.0000`.
pub fn format_eai(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(18));
    let fraction = (wei % unit) / U256::from(10u64).pow(U256::from(14));
    format!("{}.{fraction:04}", wei / unit)
}
