//! `aik devnet` (run the embedded dev chain) and `aik bench devnet` (its JSON-RPC throughput).

use std::{
    net::IpAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use aik_devnet::{DEFAULT_CHAIN_ID, Devnet, DevnetConfig, Hardfork, derive_dev_accounts};
use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    network::TransactionBuilder,
    primitives::{Address, TxKind, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::SignerSync,
    sol,
    sol_types::SolCall,
};
use clap::Args;
use eyre::{WrapErr, bail, ensure};

/// `aik devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// EIP-155 chain id.
    #[arg(long, default_value_t = DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// This chain's own state only (blocks, receipts, accounts; one redb file), kept across
    /// restarts; without it, state is in memory. (`aik up --dir X` keeps its chain in X/chain,
    /// beside the deployment file and worker databases.)
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Mine a block every SECS seconds instead of one block per transaction.
    #[arg(long, value_name = "SECS")]
    block_time: Option<f64>,
    /// EVM rules: frontier … prague (default), osaka.
    #[arg(long, default_value = "prague")]
    hardfork: Hardfork,
    /// Number of prefunded dev accounts.
    #[arg(long, default_value_t = 10)]
    accounts: usize,
}

impl DevnetArgs {
    fn config(&self) -> eyre::Result<DevnetConfig> {
        let block_time = match self.block_time {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
            Some(secs) => bail!("--block-time must be a positive number of seconds, got {secs}"),
        };
        Ok(DevnetConfig {
            host: self.host,
            port: self.port,
            chain_id: self.chain_id,
            state_dir: self.state_dir.clone(),
            block_time,
            hardfork: self.hardfork,
            accounts: self.accounts,
            ..DevnetConfig::default()
        })
    }
}

fn runtime() -> eyre::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

pub(crate) fn run(args: DevnetArgs) -> eyre::Result<()> {
    let config = args.config()?;
    runtime()?.block_on(async move {
        let devnet = Devnet::spawn(config.clone()).await.wrap_err("cannot start the dev chain")?;
        println!("aik devnet {}", env!("CARGO_PKG_VERSION"));
        println!();
        println!("Available accounts ({} ETH each)", format_ether(config.balance));
        println!("==================");
        for (i, account) in devnet.accounts().iter().enumerate() {
            println!("({i}) {}", account.address);
        }
        println!();
        println!("Private keys");
        println!("==================");
        for (i, account) in devnet.accounts().iter().enumerate() {
            println!("({i}) {}", account.private_key_hex());
        }
        println!();
        println!("Mnemonic:    {}", config.mnemonic);
        println!("Derivation:  m/44'/60'/0'/0/<index>");
        println!("Chain id:    {}", devnet.chain_id());
        println!("Hardfork:    {}", config.hardfork);
        match config.block_time {
            Some(interval) => println!("Mining:      every {:.3} s", interval.as_secs_f64()),
            None => println!("Mining:      one block per transaction"),
        }
        match &config.state_dir {
            Some(dir) => {
                println!("State dir:   {} (block {})", dir.display(), devnet.block_number())
            }
            None => println!("State:       in memory"),
        }
        println!();
        println!(
            "Listening on {} (HTTP {} and WebSocket {})",
            devnet.local_addr(),
            devnet.http_url(),
            devnet.ws_url()
        );
        tokio::signal::ctrl_c().await.wrap_err("cannot wait for Ctrl-C")?;
        println!("Shutting down");
        devnet.shutdown().await?;
        Ok(())
    })
}

fn format_ether(wei: U256) -> String {
    let ether = wei / U256::from(10u64).pow(U256::from(18u64));
    ether.to_string()
}

// The dev chain's test contract: storage writes, an event, a view function.
sol!(
    #[sol(rpc)]
    BenchCounter,
    "../devnet/tests/fixtures/Counter.json"
);

/// `aik bench devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetBenchArgs {
    /// JSON-RPC endpoint to measure (e.g. a `hardhat node`); without it an in-process dev chain
    /// is started on a free port and measured through its HTTP endpoint.
    #[arg(long)]
    rpc_url: Option<String>,
    /// Signed transfers, signed contract transactions, and `eth_call`s to send (each).
    #[arg(long, short = 'n', default_value_t = 1000)]
    count: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

struct Figures {
    transfers_per_s: f64,
    contract_txs_per_s: f64,
    call_p50_us: f64,
    call_p99_us: f64,
    call_mean_us: f64,
}

pub(crate) fn bench(args: DevnetBenchArgs) -> eyre::Result<()> {
    ensure!(args.count > 0, "--count must be at least 1");
    runtime()?.block_on(async move {
        let (url, devnet) = match &args.rpc_url {
            Some(url) => (url.clone(), None),
            None => {
                let devnet = Devnet::spawn(DevnetConfig::test()).await?;
                (devnet.http_url(), Some(devnet))
            }
        };
        let figures = measure(&url, args.count).await?;
        if let Some(devnet) = devnet {
            devnet.shutdown().await?;
        }
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "rpc_url": url,
                    "count": args.count,
                    "transfers_per_s": figures.transfers_per_s,
                    "contract_txs_per_s": figures.contract_txs_per_s,
                    "eth_call_p50_us": figures.call_p50_us,
                    "eth_call_p99_us": figures.call_p99_us,
                    "eth_call_mean_us": figures.call_mean_us,
                })
            );
        } else {
            println!("endpoint                 {url}");
            println!(
                "signed transfers         {:>10.0} tx/s  ({} txs)",
                figures.transfers_per_s, args.count
            );
            println!(
                "signed contract txs      {:>10.0} tx/s  ({} txs)",
                figures.contract_txs_per_s, args.count
            );
            println!(
                "eth_call latency         {:>10.0} us p50, {:.0} us p99, {:.0} us mean ({} calls)",
                figures.call_p50_us, figures.call_p99_us, figures.call_mean_us, args.count
            );
        }
        Ok(())
    })
}

/// Sends pre-signed transactions one after another, each acknowledged before the next (the
/// chain mines one block per transaction), so the figure is end-to-end transactions per second.
async fn measure(url: &str, count: usize) -> eyre::Result<Figures> {
    let provider = ProviderBuilder::new()
        .connect_http(url.parse().wrap_err_with(|| format!("bad --rpc-url {url}"))?);
    let chain_id = provider.get_chain_id().await.wrap_err_with(|| format!("no chain at {url}"))?;
    // Account 8 of the test mnemonic: funded on every dev chain, unused by the tests.
    let account = derive_dev_accounts(aik_devnet::DEV_MNEMONIC, 9)?.remove(8);
    let from = account.address;
    let mut nonce = provider.get_transaction_count(from).await?;
    let max_fee = provider.get_gas_price().await?.max(1_000_000_000) * 4;
    let sign = |tx: TxEip1559| -> eyre::Result<Vec<u8>> {
        let signature = account.signer.sign_hash_sync(&tx.signature_hash())?;
        Ok(TxEnvelope::from(tx.into_signed(signature)).encoded_2718())
    };
    let base_tx = |nonce: u64, to: TxKind, gas_limit: u64, input: Vec<u8>| TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::ZERO,
        access_list: Default::default(),
        input: input.into(),
    };

    // Deploy the contract (not timed).
    let deploy_code =
        [BenchCounter::BYTECODE.to_vec(), U256::ZERO.to_be_bytes::<32>().to_vec()].concat();
    let raw = sign(base_tx(nonce, TxKind::Create, 1_000_000, deploy_code))?;
    let receipt = provider.send_raw_transaction(&raw).await?.get_receipt().await?;
    let contract = receipt
        .contract_address
        .ok_or_else(|| eyre::eyre!("deploy receipt has no contract address"))?;
    ensure!(receipt.status(), "deploying the bench contract failed");
    nonce += 1;

    let recipient = Address::repeat_byte(0xbe);
    let mut transfers = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let mut tx = base_tx(nonce + i, TxKind::Call(recipient), 21_000, Vec::new());
        tx.value = U256::from(1);
        transfers.push(sign(tx)?);
    }
    nonce += count as u64;
    let increment = BenchCounter::incrementCall {}.abi_encode();
    let mut contract_txs = Vec::with_capacity(count);
    for i in 0..count as u64 {
        contract_txs.push(sign(base_tx(
            nonce + i,
            TxKind::Call(contract),
            60_000,
            increment.clone(),
        ))?);
    }

    let started = Instant::now();
    for raw in &transfers {
        // With automining the node answers once the transaction is mined.
        let _hash = *provider.send_raw_transaction(raw).await?.tx_hash();
    }
    let transfers_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for raw in &contract_txs {
        // With automining the node answers once the transaction is mined.
        let _hash = *provider.send_raw_transaction(raw).await?.tx_hash();
    }
    let contract_s = started.elapsed().as_secs_f64();

    // Check the work was really done before reporting speed.
    let balance = provider.get_balance(recipient).await?;
    ensure!(balance >= U256::from(count), "only {balance} of {count} transfers arrived");
    let counter = BenchCounter::new(contract, &provider);
    let value = counter.count().call().await?;
    ensure!(value == U256::from(count), "counter is {value}, expected {count}");

    let call = TransactionRequest::default()
        .with_to(contract)
        .with_input(BenchCounter::countCall {}.abi_encode());
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let output = provider.call(call.clone()).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        ensure!(output.len() == 32, "eth_call returned {} bytes", output.len());
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(Figures {
        transfers_per_s: count as f64 / transfers_s,
        contract_txs_per_s: count as f64 / contract_s,
        call_p50_us: percentile(0.5),
        call_p99_us: percentile(0.99),
        call_mean_us: latencies.iter().sum::<f64>() / latencies.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: DevnetArgs,
    }

    #[test]
    fn flags_build_the_config() {
        let parsed = Wrapper::try_parse_from([
            "aik",
            "--port",
            "0",
            "--chain-id",
            "5",
            "--hardfork",
            "cancun",
            "--block-time",
            "0.5",
            "--accounts",
            "3",
        ])
        .unwrap();
        let config = parsed.args.config().unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.chain_id, 5);
        assert_eq!(config.hardfork, Hardfork::Cancun);
        assert_eq!(config.block_time, Some(Duration::from_millis(500)));
        assert_eq!(config.accounts, 3);
    }

    #[test]
    fn bad_flags_are_refused_with_the_value() {
        let err = Wrapper::try_parse_from(["aik", "--hardfork", "atlantis"]).unwrap_err();
        assert!(err.to_string().contains("atlantis"), "{err}");
        let parsed = Wrapper::try_parse_from(["aik", "--block-time", "0"]).unwrap();
        let err = parsed.args.config().unwrap_err();
        assert!(err.to_string().contains("got 0"), "{err}");
    }
}
