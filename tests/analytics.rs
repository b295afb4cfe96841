//! Analytics: calls with known durations and failures give the right counts and percentiles,
//! through the admin API and the CLI.

mod common;

use common::{Director, McpHttp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn known_calls_give_the_right_counts_and_percentiles() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n[profiles.p]\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.url = format!("{}/mcp?profile=p", d.url);
    c.initialize(json!({})).await;
    // 10 calls of a/slow taking 10, 20, …, 100 ms; 2 failing calls (elicit without the
    // capability); 3 resource reads.
    for i in 1..=10 {
        let r = c
            .post(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "a/slow", "arguments": {"ms": i * 10}}}))
            .await;
        assert!(r.last().unwrap().get("result").is_some());
    }
    for i in 0..2 {
        c.post(
            json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
            "params": {"name": "a/elicit", "arguments": {"message": "m"}}}),
        )
        .await;
    }
    for i in 0..3 {
        c.post(
            json!({"jsonrpc": "2.0", "id": 200 + i, "method": "resources/read",
            "params": {"uri": "fixture://static"}}),
        )
        .await;
    }
    // Records are written in batches off the request path.
    let admin = d.client(None);
    let report = common::wait_for(|| async {
        let r = admin
            .get_analytics(None, None, None, None, None)
            .await
            .ok()?
            .into_inner();
        let total: u64 = r.rows.iter().map(|r| r.calls).sum();
        (total == 15).then_some(r)
    })
    .await;
    let row = |name: &str| {
        report
            .rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name}: {:?}", report.rows))
    };
    let slow = row("slow");
    assert_eq!(
        (
            slow.server.as_str(),
            slow.profile.as_str(),
            slow.calls,
            slow.errors
        ),
        ("a", "p", 10, 0)
    );
    // Nearest rank over 10..100 ms plus the director's and fixture's own time, read from
    // latency histograms (within 5%: a 100 ms call may read as 95).
    assert!((47.5..80.0).contains(&slow.p50_ms), "p50 {}", slow.p50_ms);
    assert!((95.0..130.0).contains(&slow.p95_ms), "p95 {}", slow.p95_ms);
    assert!((95.0..130.0).contains(&slow.p99_ms), "p99 {}", slow.p99_ms);
    // Over time: the window's buckets hold the same calls and errors, the latest the most.
    assert_eq!(report.series.len(), 24);
    let (calls, errors): (u64, u64) = report
        .series
        .iter()
        .fold((0, 0), |(c, e), b| (c + b.calls, e + b.errors));
    assert_eq!((calls, errors), (15, 2));
    assert!(
        report.series.last().unwrap().calls > 0,
        "{:?}",
        report.series
    );
    // Narrowed: one tool's calls, a profile nobody used, another bucket count.
    let slow_only = admin
        .get_analytics(
            std::num::NonZeroU64::new(6),
            Some("slow"),
            None,
            Some("a"),
            None,
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(slow_only.rows.len(), 1);
    assert_eq!(slow_only.series.len(), 6);
    assert_eq!(slow_only.series.iter().map(|b| b.calls).sum::<u64>(), 10);
    let nobody = admin
        .get_analytics(None, None, Some("other"), None, None)
        .await
        .unwrap()
        .into_inner();
    assert!(nobody.rows.is_empty());
    assert_eq!(nobody.series.iter().map(|b| b.calls).sum::<u64>(), 0);
    let elicit = row("elicit");
    assert_eq!(
        (elicit.calls, elicit.errors, elicit.error_rate),
        (2, 2, 1.0)
    );
    let resource = row("fixture://static");
    assert_eq!(
        resource.kind,
        mcp_director_client::types::AnalyticsRowKind::Resource
    );
    assert_eq!(resource.calls, 3);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(["analytics", "show", "--url", &d.url])
        .env_remove("MCP_DIRECTOR_USER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("SERVER") && lines[0].contains("P99_MS"),
        "{table}"
    );
    let slow_line = lines
        .iter()
        .find(|l| l.contains(" slow "))
        .expect("a slow row");
    assert!(
        slow_line.contains(" 10 ") && slow_line.contains("0.0%"),
        "{slow_line}"
    );
    let elicit_line = lines
        .iter()
        .find(|l| l.contains(" elicit "))
        .expect("an elicit row");
    assert!(elicit_line.contains("100.0%"), "{elicit_line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn observability_can_be_switched_off() {
    let d = Director::start(&format!(
        "[settings.observability]\ntool_metrics = false\nanalytics = false\n[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    for i in 0..3 {
        let r = c
            .post(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "a/echo", "arguments": {"text": "x"}}}))
            .await;
        assert!(r.last().unwrap().get("result").is_some());
    }
    // Give a batch writer time to have written anything it was given.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let report = d
        .client(None)
        .get_analytics(None, None, None, None, None)
        .await
        .unwrap()
        .into_inner();
    assert!(report.rows.is_empty(), "{:?}", report.rows);
    let metrics = reqwest::get(format!("{}/metrics", d.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("mcp_director_tool_calls_total{"),
        "{metrics}"
    );
}

/// Usage is counted in memory and written as rollups; a director stopped the usual way writes
/// what it holds, so the counts survive a restart.
#[tokio::test(flavor = "multi_thread")]
async fn counts_survive_a_restart() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    for i in 0..7 {
        c.post(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "a/echo", "arguments": {"text": "x"}}}))
            .await;
    }
    let (dir, temp) = d.terminate();
    let d = Director::start_in(&dir);
    let rows = d
        .client(None)
        .get_analytics(None, None, None, None, None)
        .await
        .unwrap()
        .into_inner()
        .rows;
    let echo = rows.iter().find(|r| r.name == "echo").expect("an echo row");
    assert_eq!((echo.calls, echo.errors), (7, 0));
    drop(temp);
}
