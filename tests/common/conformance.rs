//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16), run
//! against a URL. The suite is slightly flaky (timing), so a failed scenario gets one rerun.

use std::collections::BTreeMap;
use std::process::Command;

/// Checks `(passed, failed)` by scenario.
pub type Results = BTreeMap<String, (u32, u32)>;

/// The whole suite against `url`, each failing scenario run once more: the checks passed, and
/// the scenarios that failed twice (with their counts). Logs what was rerun.
pub fn run(url: &str) -> (u32, Results) {
    let mut results = run_suite(url, None);
    let failing: Vec<String> = results
        .iter()
        .filter(|(_, (_, f))| *f > 0)
        .map(|(n, _)| n.clone())
        .collect();
    for scenario in &failing {
        results.extend(run_suite(url, Some(scenario)));
    }
    let passed: u32 = results.values().map(|(p, _)| p).sum();
    eprintln!(
        "conformance at {url}: {passed} checks passed in {} scenarios; rerun: {failing:?}",
        results.len()
    );
    let failed = results.into_iter().filter(|(_, (_, f))| *f > 0).collect();
    (passed, failed)
}

/// Per scenario: `(passed, failed)` checks, from the suite's `✓ name: N passed, M failed`
/// lines (and the single-scenario `Passed: N/M, K failed` form).
pub fn run_suite(url: &str, scenario: Option<&str>) -> Results {
    let suite =
        super::peers().join("npm/node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let mut cmd = Command::new(super::node());
    cmd.arg(suite).args(["server", "--url", url]);
    if let Some(s) = scenario {
        cmd.args(["--scenario", s]);
    }
    let out = cmd.output().expect("run the conformance suite");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let number = |s: &str, word: &str| -> Option<u32> {
        s.split(',')
            .find(|p| p.contains(word))?
            .split_whitespace()
            .find_map(|w| w.split('/').next()?.parse().ok())
    };
    let mut results = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")) else {
            continue;
        };
        let Some((name, counts)) = rest.split_once(": ") else {
            continue;
        };
        results.insert(
            name.to_string(),
            (
                number(counts, "passed").unwrap_or(0),
                number(counts, "failed").unwrap_or(0),
            ),
        );
    }
    if let (Some(s), true) = (scenario, results.is_empty()) {
        let line = text
            .lines()
            .find(|l| l.starts_with("Passed:"))
            .unwrap_or_else(|| panic!("no result:\n{text}"));
        results.insert(
            s.to_string(),
            (
                number(line, "Passed").unwrap_or(0),
                number(line, "failed").unwrap_or(0),
            ),
        );
    }
    assert!(
        !results.is_empty(),
        "no results in the suite's output:\n{text}"
    );
    results
}
