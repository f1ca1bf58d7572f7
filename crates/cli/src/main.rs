//! `aik`, the command line of AI Kernel.
//!
//! The only crate in the workspace that prints to stdout: libraries return typed errors and log
//! with `tracing`; this binary turns both into what a person or a script reads.

mod bench;
mod bench_e2e;
mod chain;
mod demo;
mod deploy;
mod devnet;
mod eval;
mod gas;
mod generate;
mod model;
mod node;
mod prompt;
mod status;
mod storage;
mod up;
mod verify;

use clap::{Parser, Subcommand};

/// AI Kernel: send prompts to an LLM from Ethereum and get verified answers back onchain.
#[derive(Debug, Parser)]
#[command(name = "aik", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local model on one prompt (no chain).
    Generate(generate::GenerateArgs),
    /// Manage model files (`aik model pull`).
    Model(model::ModelArgs),
    /// Benchmarks (`aik bench infer`).
    Bench(bench::BenchArgs),
    /// Model quality: `aik eval perplexity` on a text file, as llama.cpp computes it.
    Eval(eval::EvalArgs),
    /// Run the embedded Ethereum dev chain (JSON-RPC over HTTP and WebSocket).
    Devnet(devnet::DevnetArgs),
    /// Start a whole network in this process: dev chain, kernel, SmolLM2 and N staked workers.
    Up(up::UpArgs),
    /// Send a prompt to the kernel and follow it until the committee's answer is final.
    Prompt(prompt::PromptArgs),
    /// Re-run a finalized prompt locally and compare its output hash with the chain's.
    Verify(verify::VerifyArgs),
    /// Workers, stakes, jail, queue and rewards of the network.
    Status(status::StatusArgs),
    /// A topic's conversation so far.
    Topic(status::TopicArgs),
    /// Run a worker node against any RPC (`aik node run`).
    Node(node::NodeArgs),
    /// Deploy the kernel and the default model to any chain and write the deployment file.
    Deploy(deploy::DeployArgs),
    /// Run one of the whitepaper's example dapps against a running network (`--list` names them).
    Demo(demo::DemoArgs),
    /// The local content store by IPFS ids: add a file (prints its UnixFS id), get, export a CAR.
    Store(storage::StoreArgs),
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
        Some(command) => match command {
            Command::Generate(args) => generate::run(args),
            Command::Model(args) => model::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Devnet(args) => devnet::run(args),
            Command::Up(args) => up::run(args),
            Command::Prompt(args) => prompt::run(args),
            Command::Verify(args) => verify::run(args),
            Command::Status(args) => status::run_status(args),
            Command::Topic(args) => status::run_topic(args),
            Command::Node(args) => node::run(args),
            Command::Deploy(args) => deploy::run(args),
            Command::Demo(args) => demo::run(args),
            Command::Store(args) => storage::run(args),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_flag_prints_the_package_version() {
        let err = Cli::try_parse_from(["aik", "--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(err.to_string().trim(), format!("aik {}", env!("CARGO_PKG_VERSION")));
    }
}
