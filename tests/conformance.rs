//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16) run against
//! the director fronting our own fixture server in its conformance mode (a stdio upstream with
//! `FIXTURE_CONFORMANCE=1`, the suite's catalogue), exposed unprefixed: every active check must
//! pass. The suite is slightly flaky (timing), so a failed scenario gets one rerun.

mod common;

use common::Director;
use std::process::Command;

/// The director in front of the fixture's conformance catalogue, unprefixed.
async fn director() -> Director {
    let d = Director::start(&format!(
        "[servers.conformance]\ncommand = \"{}\"\nenv = {{ FIXTURE_CONFORMANCE = \"1\" }}\nprefix = \"\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["conformance"]).await;
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_passes_through_the_director() {
    let d = director().await;

    let url = format!("{}/mcp", d.url);
    let (passed, failed) = tokio::task::spawn_blocking(move || common::conformance::run(&url))
        .await
        .unwrap();
    assert!(failed.is_empty(), "failed twice: {failed:?}");
    assert_eq!(passed, 40, "every active check passes");
}

/// One run of the 2026 line with `--requirements revision`, against the baseline: its exit
/// status (0: nothing failed but what the baseline expects) and its output.
fn run_2026(url: &str, revision: &str) -> (bool, String) {
    let suite = common::peers()
        .join("npm-conformance-2026/node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let baseline = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/expected-2026.yml"
    );
    let mut cmd = Command::new(common::node());
    cmd.arg(suite)
        .args(["server", "--url", url, "--requirements", revision]);
    if revision == "2026-07-28" {
        cmd.args(["--expected-failures", baseline]);
    }
    let out = cmd.output().expect("run the conformance suite");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// One scenario of the 2026 line with `--verbose` (every check and its detail).
fn run_2026_verbose(url: &str, revision: &str, scenario: &str) -> String {
    let suite = common::peers()
        .join("npm-conformance-2026/node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let out = Command::new(common::node())
        .arg(suite)
        .args(["server", "--url", url, "--requirements", revision])
        .args(["--scenario", scenario, "--verbose"])
        .output()
        .expect("run the conformance suite");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// The suite's `Total: N passed, M failed` line.
fn totals(text: &str) -> (u32, u32) {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("Total:"))
        .unwrap_or_else(|| panic!("no total:\n{text}"));
    let number = |word: &str| -> u32 {
        line.split(',')
            .find(|p| p.contains(word))
            .and_then(|p| p.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or(0)
    };
    (number("passed"), number("failed"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2026_conformance_suite_passes_through_the_director_in_both_eras() {
    for (revision, at_least) in [("2026-07-28", 185), ("2025-11-25", 83)] {
        // A director of its own for each run: calls a run leaves waiting (parked, or tasks
        // asking for input) hold lanes of the stdio fixture until they time out.
        let mut attempt = 0;
        let (ok, text) = loop {
            let d = director().await;
            let (url, rev) = (format!("{}/mcp", d.url), revision.to_string());
            let (ok, text) = tokio::task::spawn_blocking(move || run_2026(&url, &rev))
                .await
                .unwrap();
            attempt += 1;
            if !ok {
                // The summary names the failing scenarios only: each again, verbosely, against
                // the same director, for the log.
                for scenario in text.lines().filter_map(|l| l.strip_prefix("✗ ")) {
                    let name = scenario.split(':').next().unwrap_or_default().to_string();
                    let (url, rev) = (format!("{}/mcp", d.url), revision.to_string());
                    let detail =
                        tokio::task::spawn_blocking(move || run_2026_verbose(&url, &rev, &name))
                            .await
                            .unwrap();
                    eprintln!("conformance {revision}, failed scenario, verbosely:\n{detail}");
                }
            }
            if ok || attempt == 2 {
                break (ok, text);
            }
            eprintln!("conformance {revision}: rerun after\n{text}");
        };
        let (passed, failed) = totals(&text);
        eprintln!("conformance {revision}: {passed} passed, {failed} failed (all expected)");
        assert!(ok, "{revision}: failures beyond the baseline:\n{text}");
        assert!(
            passed >= at_least,
            "{revision}: {passed} checks passed, fewer than {at_least}:\n{text}"
        );
    }
}
