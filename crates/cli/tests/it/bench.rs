//! `aik bench e2e` on the tiny generated model: the figures are printed, never asserted; this
//! checks the report is whole and its phases add up.

#[test]
fn bench_e2e_reports_every_phase_of_each_prompt() {
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aik"));
    command
        .args(["bench", "e2e", "--tiny-only", "--prompts", "2", "--max-tokens", "4", "--json"])
        .env("AIK_HOME", home.path());
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["workers"], 3);
    assert_eq!(report["committee"], 3);
    assert!(report.get("real").is_none());
    let tiny = &report["tiny"];
    assert_eq!(tiny["prompts"], 2);
    let phase = |name: &str| tiny["phases"][name]["mean_s"].as_f64().unwrap();
    let parts = ["submit_to_assigned", "assigned_to_committed", "committed_to_revealed"]
        .iter()
        .map(|p| phase(p))
        .sum::<f64>()
        + phase("revealed_to_finalized");
    assert!((parts - phase("total")).abs() < 1e-9, "{tiny}");
    assert!(phase("model") > 0.0 && phase("model") < phase("total"), "{tiny}");
    assert!((phase("total") - phase("model") - phase("protocol_overhead")).abs() < 1e-9);
    let per_minute = tiny["prompts_per_minute"].as_f64().unwrap();
    let wall = tiny["wall_s"].as_f64().unwrap();
    assert!((per_minute - 2.0 * 60.0 / wall).abs() < 1e-6, "{tiny}");
}
