//! The model a worker serves: a [`ModelDriver`] behind a trait object, which also counts a
//! conversation's tokens and knows its context length for context assembly.

use std::sync::Arc;

use aik_infer::{ModelDriver, Output, Request, Sampling};
use aik_kernel::{Failure, MAX_OUTPUT_BYTES, Message, PromptContext};

use crate::{Error, Result};

/// A loaded model, shared by every worker of a process. Driver runs are serialized: on a CPU a
/// second concurrent run only halves the speed of the first.
#[derive(Clone)]
pub struct Engine {
    driver: Arc<dyn ModelDriver + Send + Sync>,
    gate: Arc<std::sync::Mutex<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("driver", &self.driver.version())
            .field("context_length", &self.driver.context_length())
            .finish()
    }
}

impl Engine {
    /// An engine running `driver` (the `gguf/1` one, or a test's wrapper around it).
    pub fn new(driver: Arc<dyn ModelDriver + Send + Sync>) -> Self {
        Self { driver, gate: Arc::default() }
    }

    /// The same engine (sharing its run gate) with another driver in front.
    pub fn with_driver(&self, driver: Arc<dyn ModelDriver + Send + Sync>) -> Self {
        Self { driver, ..self.clone() }
    }

    /// The driver (to wrap it, e.g. in a test's dishonest one, and put it back with
    /// [`Engine::with_driver`]).
    pub fn driver(&self) -> Arc<dyn ModelDriver + Send + Sync> {
        Arc::clone(&self.driver)
    }

    /// The driver's version string.
    pub fn version(&self) -> &'static str {
        self.driver.version()
    }

    /// The messages the model runs on for `context` (DESIGN §5.2, truncated to fit).
    pub fn messages(&self, context: &PromptContext) -> Result<Vec<Message>> {
        let driver = &self.driver;
        Ok(context
            .assemble(driver.context_length(), |m: &[Message]| driver.prompt_token_count(m))?)
    }

    /// Assembles the context and runs the driver: CPU-bound, call from a blocking thread.
    pub fn run(&self, context: &PromptContext) -> Result<(Vec<Message>, Output)> {
        let messages = self.messages(context)?;
        let request = Request {
            messages: messages.clone(),
            format: context.format.clone(),
            sampling: Sampling::from_spec(context.sampling),
            max_tokens: context.max_tokens as usize,
        };
        let _running = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let output = self.driver.run(&request)?;
        Ok((messages, output))
    }

    /// What a worker commits for `context`: the model's output, or the canonical failure answer
    /// when the prompt cannot run on any honest worker ([`canonical_failure`], and outputs longer
    /// than [`MAX_OUTPUT_BYTES`]). Failures that depend on this worker (a model file it cannot
    /// read) stay errors: it must not commit then.
    pub fn answer(&self, context: &PromptContext) -> Result<Answer> {
        match self.run(context) {
            Ok((_, output)) if output.bytes.len() > MAX_OUTPUT_BYTES => Ok(Answer::failed(
                Failure::OutputTooLong,
                format!(
                    "prompt {}: the output is {} bytes, more than the {MAX_OUTPUT_BYTES} a reveal carries",
                    context.prompt_id,
                    output.bytes.len()
                ),
            )),
            Ok((messages, output)) => Ok(Answer {
                bytes: output.bytes.clone(),
                failure: None,
                run: Some((messages, output)),
            }),
            Err(error) => match canonical_failure(&error) {
                Some(failure) => Ok(Answer::failed(failure, error.to_string())),
                None => Err(error),
            },
        }
    }

    /// [`Engine::answer`] on a blocking thread, so the async runtime keeps serving RPC.
    pub async fn answer_blocking(&self, context: PromptContext) -> Result<Answer> {
        let engine = self.clone();
        let prompt_id = context.prompt_id;
        tokio::task::spawn_blocking(move || engine.answer(&context))
            .await
            .map_err(|e| Error::Task { prompt_id: prompt_id.to_string(), reason: e.to_string() })?
    }

    /// [`Engine::run`] on a blocking thread, so the async runtime keeps serving RPC.
    pub async fn run_blocking(&self, context: PromptContext) -> Result<(Vec<Message>, Output)> {
        let engine = self.clone();
        let prompt_id = context.prompt_id;
        tokio::task::spawn_blocking(move || engine.run(&context))
            .await
            .map_err(|e| Error::Task { prompt_id: prompt_id.to_string(), reason: e.to_string() })?
    }
}

/// The bytes a worker commits for a prompt, and how they came about.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The canonical bytes: the output's, or the failure answer's.
    pub bytes: Vec<u8>,
    /// Why the prompt cannot run, with the details, when `bytes` is a failure answer.
    pub failure: Option<(Failure, String)>,
    /// The messages the model ran on and its output, when it produced one that fits a reveal.
    pub run: Option<(Vec<Message>, Output)>,
}

impl Answer {
    fn failed(failure: Failure, reason: String) -> Self {
        Self { bytes: failure.encode().to_vec(), failure: Some((failure, reason)), run: None }
    }
}

/// The one rule by which a worker tells a prompt that cannot run anywhere (answered with a
/// [`Failure`], which every honest worker computes alike) from a failure of its own (no answer,
/// no commitment). Canonical: the context does not fit (context assembly, or the driver's
/// context check), the request's format or sampling cannot be run by the model, constrained
/// decoding ends without a complete value, the tokenizer or chat template refuses the text, or a
/// logit is not finite — all functions of what the chain records and the registered model file,
/// which the engine computes bit for bit alike. Everything else depends on the worker: reading
/// prompt data or the model file, RPC, the database, a panicked task.
pub fn canonical_failure(error: &Error) -> Option<Failure> {
    use aik_infer::Error as Infer;
    match error {
        Error::Protocol(aik_protocol::Error::PromptFailure { failure, .. }) => Some(*failure),
        Error::Infer(Infer::ContextFull { .. }) => Some(Failure::ContextTooLong),
        Error::Infer(Infer::InvalidRequest(_)) => Some(Failure::InvalidFormat),
        Error::Infer(Infer::Constraint { .. }) => Some(Failure::NoAnswer),
        Error::Infer(Infer::Tokenizer(_) | Infer::ChatTemplate(_) | Infer::NonFinite { .. }) => {
            Some(Failure::Unprocessable)
        }
        _ => None,
    }
}
