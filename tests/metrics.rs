//! `/metrics` after real traffic, parsed with a Prometheus text parser: the counters move by
//! exactly the traffic sent.

mod common;

use common::{Director, McpHttp};
use serde_json::json;

/// `name{labels}` → value, for every sample of a scrape.
async fn scrape(d: &Director) -> Vec<prometheus_parse::Sample> {
    let text = reqwest::get(format!("{}/metrics", d.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("valid exposition format")
        .samples
}

fn value(samples: &[prometheus_parse::Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            other => panic!("unexpected {other:?}"),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_move_by_exactly_the_traffic_sent() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let before = scrape(&d).await;

    let call = |name: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {"text": "m"}}});
    for _ in 0..3 {
        let r = c.post(call("a/echo")).await;
        assert!(r.last().unwrap().get("result").is_some());
    }
    // The client declared no elicitation: the upstream's request is refused, the call fails.
    let r = c.post(call("a/elicit")).await;
    assert!(r.last().unwrap().get("error").is_some(), "{r:?}");
    // Unknown tools never reach an upstream and are not tool calls.
    c.post(call("a/nope")).await;
    // An unknown method is counted as `other`, never by its name.
    c.post(json!({"jsonrpc": "2.0", "id": 2, "method": "made/up"}))
        .await;
    // A task, run to completion.
    let created = c
        .post(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "a/echo", "arguments": {"text": "t"}, "task": {"ttl": 60000}}}),
        )
        .await;
    let task_id = created.last().unwrap()["result"]["task"]["taskId"]
        .as_str()
        .expect("a task")
        .to_string();
    let done = c
        .post(json!({"jsonrpc": "2.0", "id": 4, "method": "tasks/result", "params": {"taskId": task_id}}))
        .await;
    assert!(done.last().unwrap().get("result").is_some(), "{done:?}");
    // The session's GET stream stays open while we scrape.
    let _stream = c.open_stream(None).await;

    let after = scrape(&d).await;
    let delta = |metric: &str, labels: &[(&str, &str)]| {
        value(&after, metric, labels) - value(&before, metric, labels)
    };
    let ok = [
        ("server", "a"),
        ("tool", "echo"),
        ("profile", ""),
        ("outcome", "ok"),
    ];
    assert_eq!(delta("mcp_director_tool_calls_total", &ok), 3.0);
    let failed = [("server", "a"), ("tool", "elicit"), ("outcome", "error")];
    assert_eq!(delta("mcp_director_tool_calls_total", &failed), 1.0);
    assert_eq!(
        delta("mcp_director_tool_calls_total", &[("tool", "nope")]),
        0.0
    );
    assert_eq!(
        delta(
            "mcp_director_tool_call_duration_seconds",
            &[("server", "a")]
        ),
        4.0
    );
    assert_eq!(
        delta(
            "mcp_director_http_requests_total",
            &[("route", "/mcp"), ("method", "POST"), ("status", "200")]
        ),
        8.0
    );
    let requests = |method: &str, outcome: &str| {
        delta(
            "mcp_director_mcp_requests_total",
            &[
                ("transport", "streamable-http"),
                ("method", method),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(
        requests("tools/call", "ok"),
        4.0,
        "3 calls and 1 task created"
    );
    assert_eq!(requests("tools/call", "error"), 2.0);
    assert_eq!(requests("tasks/result", "ok"), 1.0);
    assert_eq!(requests("other", "error"), 1.0);
    assert_eq!(
        value(
            &after,
            "mcp_director_mcp_requests_total",
            &[("method", "made/up")]
        ),
        0.0
    );
    assert_eq!(delta("mcp_director_tasks", &[("status", "completed")]), 1.0);
    assert_eq!(
        value(
            &after,
            "mcp_director_streams",
            &[("transport", "streamable-http")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "mcp_director_upstream_up", &[("server", "a")]),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "mcp_director_sessions",
            &[("transport", "streamable-http")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_store_and_each_upstream() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n[servers.broken]\ncommand = \"/nonexistent/mcp-server\"\n\
         [servers.off]\ncommand = \"x\"\nenabled = false\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let health = d.client(None);
    let h = common::wait_for(|| async {
        let h = health.get_health(Some(true)).await.ok()?.into_inner();
        let broken = h.upstreams.iter().find(|u| u.name == "broken")?;
        (broken.state == mcp_director_client::types::UpstreamState::Backoff).then_some(h)
    })
    .await;
    assert_eq!(h.status, mcp_director_client::types::HealthStatus::Degraded);
    assert_eq!(
        h.store.status,
        mcp_director_client::types::StoreHealthStatus::Ok
    );
    let backend = if common::postgres_pass() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(h.store.backend, backend);
    let state = |name: &str| h.upstreams.iter().find(|u| u.name == name).unwrap().state;
    assert_eq!(
        state("a"),
        mcp_director_client::types::UpstreamState::Running
    );
    assert_eq!(
        state("off"),
        mcp_director_client::types::UpstreamState::Disabled
    );
    let status = d
        .client(None)
        .get_server_status("broken")
        .await
        .unwrap()
        .into_inner();
    assert!(
        status
            .last_error
            .unwrap()
            .contains("/nonexistent/mcp-server")
    );
}
