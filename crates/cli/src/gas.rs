//! `aik bench gas`: gas of the kernel's operations on a fresh embedded chain.

use aik_devnet::{Devnet, DevnetConfig};
use clap::Args;

/// `aik bench gas`.
#[derive(Debug, Args)]
pub(crate) struct GasArgs {
    /// Print one JSON object (keys: submit_onchain_input, submit_storage_input, draw, commit,
    /// reveal, finalize, lifecycle_k3, selection, challenge).
    #[arg(long)]
    json: bool,
}

/// Deploys a kernel on an in-process dev chain, runs a prompt's life with k = 3 (its committee
/// drawn in a separate transaction), committee draws from 10, 100 and 1,000 workers and two
/// challenges (one overturning, one upheld), and prints the gas of each step.
pub(crate) fn run(args: GasArgs) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let devnet = Devnet::spawn(DevnetConfig::test()).await?;
        let funder = devnet.accounts()[0].signer.clone();
        let report = aik_kernel::gas::measure(&devnet.http_url(), funder).await?;
        devnet.shutdown().await?;
        eyre::Ok(report)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("gas on the embedded dev chain (k = 3, capacity-1 workers, warm topic and committee)");
    println!(
        "(the committee draw is random: which pool tree slots it reads moves it by a few thousand)"
    );
    println!("  submit, 200-byte onchain input   {:>9}", report.submit_onchain_input);
    println!("  submit, storage reference input  {:>9}", report.submit_storage_input);
    println!("  draw (committee of 3, later tx)  {:>9}", report.draw);
    println!("  commit                           {:>9}", report.commit);
    println!("  reveal (64-byte onchain output)  {:>9}", report.reveal);
    println!("  finalize (no callback)           {:>9}", report.finalize);
    println!("  lifecycle_k3                     {:>9}", report.lifecycle_k3);
    for (workers, gas) in &report.selection {
        println!("  draw from {workers:>5} free workers    {gas:>9}");
    }
    for (step, gas) in &report.challenge {
        println!("  challenge {step:<22} {gas:>9}");
    }
    Ok(())
}
