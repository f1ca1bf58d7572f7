//! The gas table, measured on the embedded chain.

use aik_devnet::{Devnet, DevnetConfig};

/// Regression bound of a prompt's whole life with k = 3 and capacity-1 workers (the aim
/// is 800k; see the crate's gas module docs for where the gas goes).
const LIFECYCLE_K3_BOUND: u64 = 1_050_000;

#[tokio::test]
async fn test_gas_table_bounds_and_flat_selection() {
    let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
    let funder = devnet.accounts()[0].signer.clone();
    let report = aik_kernel::gas::measure(&devnet.http_url(), funder).await.unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    let parts =
        report.submit_onchain_input + 3 * report.commit + 3 * report.reveal + report.finalize;
    assert!(report.lifecycle_k3 <= parts, "the sum uses the costliest commit and reveal as bounds");
    assert!(report.lifecycle_k3 < LIFECYCLE_K3_BOUND, "lifecycle_k3 = {}", report.lifecycle_k3);
    assert!(report.submit_storage_input < report.submit_onchain_input);
    assert!(report.commit < 70_000 && report.reveal < 60_000, "{report:?}");
    let figures: Vec<u64> = ["10", "100", "1000"].iter().map(|n| report.selection[*n]).collect();
    let (low, high) = (*figures.iter().min().unwrap(), *figures.iter().max().unwrap());
    // O(k): a hundred times more workers costs the same, up to which slots the random draw
    // touches (moving the last member into a hole or not, a slot written before or never): a
    // few storage writes' difference, while a scan of the set would cost millions at 1,000.
    assert!(high - low < low / 20, "selection by worker count: {figures:?}");
}
