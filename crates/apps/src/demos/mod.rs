//! The demos, one module per example contract, and the list `aik demo --list` prints.
//!
//! A demo deploys its contract from the [`DemoEnv`]'s account, drives it, waits for each prompt
//! with [`DemoEnv::answer`], reports every step with `env.say`, and then reads the contract's
//! state to check the effect the answer called for, returning [`Error::EffectMismatch`] when
//! the chain disagrees. A refunded prompt is not an error: the demo reclaims the held funds
//! and reports that as the effect.

use crate::{DemoEnv, Error, Outcome, Result};

mod agent;
mod credit;
mod dao;
pub(crate) mod ens;
mod fantasy;
mod hello;
mod oracle;
mod wallet;

/// One example: its `aik demo` name and what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoInfo {
    /// The name `aik demo` takes.
    pub name: &'static str,
    /// One line on what the example does.
    pub summary: &'static str,
}

/// Every example, in the whitepaper's order.
pub const DEMOS: &[DemoInfo] = &[
    DemoInfo {
        name: "hello",
        summary: "the README's smallest consumer: a yes/no question, the answer stored onchain",
    },
    DemoInfo {
        name: "fantasy",
        summary: "fantasy sports matchup: two teams' stats in, the winner (choice) out, prize paid",
    },
    DemoInfo {
        name: "agent",
        summary: "conversational agent: a persona per user topic, replies (text) stored, service fee paid",
    },
    DemoInfo {
        name: "wallet",
        summary: "AI wallet: suspiciousTransaction (bool) with the send history, paid only on no",
    },
    DemoInfo {
        name: "oracle",
        summary: "BTC price oracle: feeders' reports as topic turns, aggregated price (uint) stored",
    },
    DemoInfo {
        name: "dao",
        summary: "AI DAO: proposals judged approve/reject (choice) with past outcomes, approved ones executed",
    },
    DemoInfo {
        name: "credit",
        summary: "wallet credit score: 300..850 (uint) from an address's activity, stored with its prompt",
    },
    DemoInfo {
        name: "ens",
        summary: "ENS-style names: a name (text) for a description, retried with the taken names, registered",
    },
];

/// Runs the demo called `name`.
pub async fn run_demo(name: &str, env: &DemoEnv) -> Result<Outcome> {
    match name {
        "hello" => hello::run(env).await,
        "fantasy" => fantasy::run(env).await,
        "agent" => agent::run(env).await,
        "wallet" => wallet::run(env).await,
        "oracle" => oracle::run(env).await,
        "dao" => dao::run(env).await,
        "credit" => credit::run(env).await,
        "ens" => ens::run(env).await,
        _ => Err(Error::UnknownDemo {
            name: name.to_owned(),
            known: DEMOS.iter().map(|d| d.name).collect::<Vec<_>>().join(", "),
        }),
    }
}
