//! `ens`: the whitepaper's AI-powered ENS. The model suggests a name for a description (Text
//! format); the contract reads a canonical name out of the answer and registers it to the
//! requester, or, when it is taken, asks again from inside its callback with the taken names as
//! extra context, up to three prompts. The demo asks twice for the same description: the second
//! request's first answer is the name the first one registered, so it shows the retry.

use alloy::primitives::{Address, U256};

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::NameGenerator,
    env::{eth, event, rejected},
};

const NAME: &str = "ens";
/// What the names should fit.
pub(crate) const DESCRIPTION: &str =
    "a marketplace where people rent out their GPUs to run AI models";
/// Requests the demo makes for [`DESCRIPTION`].
const REQUESTS: usize = 2;
/// Longest name the registry takes (`NameGenerator.MAX_NAME_BYTES`).
const MAX_NAME_BYTES: usize = 32;
/// Bytes of an answer a name is read from (`NameGenerator.MAX_ANSWER_BYTES`).
const MAX_ANSWER_BYTES: usize = 256;

/// `RequestStatus` values of the contract.
const PENDING: u8 = 1;
const REGISTERED: u8 = 2;
const FAILED: u8 = 3;
const RECLAIMED: u8 = 4;

/// The name `NameGenerator` reads out of an answer (its `normalize` rule), empty when the answer
/// holds none: within the first 256 bytes, the first line with a letter or digit; what follows its last `:` that a letter or
/// digit follows; A-Z lowercased; a-z and 0-9 kept and every other run of bytes between them
/// turned into one `-`; at most 32 bytes, never ending on `-`; every trailing `-eth` dropped, so
/// the name read is canonical (reading it again gives it back).
pub fn name_in(answer: &[u8]) -> String {
    let is_name_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let answer = &answer[..answer.len().min(MAX_ANSWER_BYTES)];
    let Some(line) = answer
        .split(|&b| b == b'\n')
        .find(|line| line.iter().any(|&b| is_name_char(b.to_ascii_lowercase())))
    else {
        return String::new();
    };
    let last = line.iter().rposition(|&b| is_name_char(b.to_ascii_lowercase())).unwrap_or(0);
    let start = line[..last].iter().rposition(|&b| b == b':').map_or(0, |colon| colon + 1);
    let mut name = Vec::with_capacity(MAX_NAME_BYTES);
    let mut gap = false;
    for byte in line[start..].iter().map(u8::to_ascii_lowercase) {
        if !is_name_char(byte) {
            gap = true;
            continue;
        }
        if gap && !name.is_empty() {
            if name.len() + 1 >= MAX_NAME_BYTES {
                break;
            }
            name.push(b'-');
        }
        gap = false;
        name.push(byte);
        if name.len() == MAX_NAME_BYTES {
            break;
        }
    }
    while name.len() > 4 && name.ends_with(b"-eth") {
        name.truncate(name.len() - 4);
    }
    // Only ASCII letters, digits and '-' were pushed.
    String::from_utf8(name).unwrap_or_default()
}

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying NameGenerator");
    let names = NameGenerator::deploy(
        env.provider().clone(),
        env.kernel().addresses().kernel,
        env.model_id(),
    )
    .await
    .map_err(|e| rejected("deploy NameGenerator", e))?;
    let address = *names.address();
    env.say(format!("  NameGenerator at {address}"));
    let fee = names.requestFee().call().await.map_err(|e| rejected("requestFee", e))?;

    let mut prompts = Vec::new();
    let mut answers = Vec::new();
    let mut effects = Vec::new();
    for round in 1..=REQUESTS {
        env.say(format!(
            "Request {round}: a name for {DESCRIPTION:?} (prepaid {} for up to 3 prompts)",
            eth(fee)
        ));
        let call = names.requestName(DESCRIPTION.to_owned()).value(fee);
        let receipt = env.send("requestName", call).await?;
        let requested = event::<NameGenerator::NameRequested>(&receipt)?;
        let request_id = requested.requestId;
        let mut prompt = requested.promptId;
        let mut candidates = Vec::new();
        let effect = loop {
            env.say(format!("  request {request_id}: prompt {prompt}"));
            prompts.push(prompt);
            let request = match env.answer(prompt).await? {
                Answer::Finalized(output) => {
                    let candidate = name_in(&output);
                    env.say(format!(
                        "Answer: {:?} (name {candidate:?})",
                        String::from_utf8_lossy(&output)
                    ));
                    answers.push(candidate.clone());
                    candidates.push(candidate);
                    read_request(&names, request_id).await?
                }
                Answer::Refunded => {
                    env.say("No answer: the kernel refunded the fee; reclaiming the prepaid fees");
                    env.send("reclaim", names.reclaim(request_id)).await?;
                    let request = read_request(&names, request_id).await?;
                    if request.status != RECLAIMED || !request.held.is_zero() {
                        return Err(mismatch("the request reclaimed", &request));
                    }
                    answers.push("(refunded)".to_owned());
                    break format!("request {request_id}: no name, prepaid fees returned");
                }
            };
            if request.status == PENDING && request.promptId != prompt {
                env.say(format!(
                    "  {:?} is taken or not a name: asking again with the context {:?}",
                    candidates.last().map_or("", String::as_str),
                    String::from_utf8_lossy(&names_context(&names, request_id).await?)
                ));
                prompt = request.promptId;
                continue;
            }
            break check(&names, env.account(), request_id, &request, &candidates).await?;
        };
        env.say(format!("Effect: {effect}"));
        effects.push(effect);
    }
    // Every request ended, so no prepaid fee is left in the contract.
    let left = env.balance(address).await?;
    if !left.is_zero() {
        return Err(Error::EffectMismatch {
            demo: NAME,
            expected: "every unused prepaid fee returned".into(),
            found: format!("{} left in the contract", eth(left)),
        });
    }
    Ok(Outcome {
        contract: address,
        prompts,
        answer: answers.join(", "),
        effect: effects.join("; "),
    })
}

/// Checks an ended request against its answers' names, in order; returns the effect.
async fn check(
    names: &NameGenerator::NameGeneratorInstance<alloy::providers::DynProvider>,
    account: Address,
    request_id: U256,
    request: &NameGenerator::Request,
    candidates: &[String],
) -> Result<String> {
    let attempts = usize::from(request.attempts);
    if attempts != candidates.len() || !request.held.is_zero() {
        return Err(mismatch(&format!("{} attempts, nothing held", candidates.len()), request));
    }
    // Every earlier answer was taken (listed once) or held no name.
    let none = String::new();
    let (last, earlier) = candidates.split_last().unwrap_or((&none, &[]));
    let mut taken: Vec<String> = Vec::new();
    for candidate in earlier.iter().filter(|c| !c.is_empty()) {
        if !taken.contains(candidate) {
            taken.push(candidate.clone());
        }
    }
    match request.status {
        REGISTERED => {
            let owner =
                names.ownerOf(last.clone()).call().await.map_err(|e| rejected("ownerOf", e))?;
            if last.is_empty()
                || request.name != *last
                || owner != account
                || request.taken != taken
            {
                return Err(mismatch(&format!("{last:?} registered to {account}"), request));
            }
            Ok(format!("request {request_id}: {last:?} registered to {account}"))
        }
        FAILED => {
            if !last.is_empty() && !taken.contains(last) {
                taken.push(last.clone());
            }
            if attempts != 3 || request.taken != taken {
                return Err(mismatch("three taken or unusable answers", request));
            }
            Ok(format!("request {request_id}: no free name in 3 answers, nothing registered"))
        }
        _ => Err(mismatch(&format!("the answer {last:?} acted on"), request)),
    }
}

async fn read_request(
    names: &NameGenerator::NameGeneratorInstance<alloy::providers::DynProvider>,
    request_id: U256,
) -> Result<NameGenerator::Request> {
    names.getRequest(request_id).call().await.map_err(|e| rejected("getRequest", e))
}

async fn names_context(
    names: &NameGenerator::NameGeneratorInstance<alloy::providers::DynProvider>,
    request_id: U256,
) -> Result<alloy::primitives::Bytes> {
    names.retryContext(request_id).call().await.map_err(|e| rejected("retryContext", e))
}

fn mismatch(expected: &str, request: &NameGenerator::Request) -> Error {
    Error::EffectMismatch {
        demo: NAME,
        expected: expected.to_owned(),
        found: format!(
            "status {}, {} attempts, name {:?}, taken {:?}, {} held",
            request.status,
            request.attempts,
            request.name,
            request.taken,
            eth(request.held)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::name_in;

    #[test]
    fn names_follow_the_contract_rule() {
        let cases: &[(&str, &str)] = &[
            ("GPU Rent", "gpu-rent"),
            ("  \"gpurent.eth\"  ", "gpurent"),
            ("Sure! Here is a name: RentMyGPU\nIt fits.", "rentmygpu"),
            ("\n\n  ---  \nfoo_bar", "foo-bar"),
            ("name: ", "name"),
            ("a: b: c", "c"),
            ("x:y:", "y"),
            ("!!!", ""),
            ("", ""),
            ("-eth", "eth"),
            ("caf\u{e9} bar", "caf-bar"),
            ("abcdefghij abcdefghij abcdefghij abcdefghij", "abcdefghij-abcdefghij-abcdefghij"),
            ("abcdefghijabcdefghijabcdefghija b", "abcdefghijabcdefghijabcdefghija"),
        ];
        for (answer, name) in cases {
            assert_eq!(name_in(answer.as_bytes()), *name, "answer {answer:?}");
        }
        // Only the first 256 bytes count.
        assert_eq!(name_in(format!("{}abcdefghij", " ".repeat(250)).as_bytes()), "abcdef");
        assert_eq!(name_in(format!("{}late", " ".repeat(256)).as_bytes()), "");
    }
}
