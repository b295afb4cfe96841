//! `cargo bench --bench gateway`: tools/call throughput and latency through the director versus
//! directly against the same upstream, measured in one run and reported as ratios.
//!
//! The upstream is the fixture server in Streamable HTTP mode (a fast Rust server, so the
//! director's own cost is what shows). Each client sends `tools/call echo` in a loop over
//! Streamable HTTP (JSON answers) for a fixed time; the same client code measures both paths.
//! Two upstreams are measured: one that does no work (the director's cost fully exposed, all
//! three processes sharing the cores) and one whose tool takes 1 ms (a fast real tool).
//! Environment: BENCH_CLIENTS (default 16), BENCH_SECS per run (default 5).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a program that prints `listening on URL`; returns it with the URL.
fn start(cmd: &mut Command) -> (Killed, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("a listening line").expect("utf-8");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), url)
}

struct Run {
    calls: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.calls as f64 / self.secs
    }
}

async fn session(http: &reqwest::Client, url: &str) -> Option<String> {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    let r = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .expect("initialize");
    let id = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().expect("ascii").to_string());
    let _ = r.bytes().await;
    id
}

/// `clients` concurrent loops of tools/call for `secs`; `work_ms` > 0 calls the fixture's
/// `slow` tool (an upstream that takes that long), else `echo`.
async fn measure(url: &str, tool: &str, clients: usize, secs: u64, work_ms: u64) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tool = Arc::new(tool.to_string());
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = url.to_string();
        let tool = tool.clone();
        tasks.push(tokio::spawn(async move {
            let sid = session(&http, &url).await;
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                // Accept only JSON, so both paths answer the same way (no SSE framing).
                let arguments = if work_ms > 0 {
                    json!({"ms": work_ms})
                } else {
                    json!({"text": format!("client {c} call {n}")})
                };
                let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": {"name": *tool, "arguments": arguments}});
                let mut req = http
                    .post(&url)
                    .header("accept", "application/json")
                    .header("content-type", "application/json")
                    .body(body.to_string());
                if let Some(s) = &sid {
                    req = req.header("mcp-session-id", s);
                }
                let t = Instant::now();
                let answer: Value = req
                    .send()
                    .await
                    .expect("call")
                    .json()
                    .await
                    .expect("JSON answer");
                latencies.push(t.elapsed());
                assert!(answer.get("result").is_some(), "{answer}");
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Run {
        calls: all.len(),
        secs,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn main() {
    let clients: usize = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let fixture = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let (_upstream, upstream_url) = start(Command::new(fixture).args(["--http", "127.0.0.1:0"]));

    let dir = tempfile::tempdir().expect("temp dir");
    let start_director = |name: &str, observability: &str| {
        let config = dir.path().join(format!("{name}.toml"));
        // No rate limit: the benchmark is one principal sending as fast as it can.
        std::fs::write(
            &config,
            format!(
                "[settings.rate_limit]\nper_minute = 0\n{observability}\
                 [servers.up]\ntransport = \"streamable-http\"\nurl = \"{upstream_url}\"\n"
            ),
        )
        .expect("config");
        start(
            Command::new(env!("CARGO_BIN_EXE_mcp-director"))
                .args(["serve", "--bind", "127.0.0.1:0", "--config"])
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join(name))
                .env("MCP_DIRECTOR_LOG", "warn"),
        )
    };
    let (_director, director_base) = start_director("observed", "");
    let (_quiet, quiet_base) = start_director(
        "quiet",
        "[settings.observability]\ntool_metrics = false\nanalytics = false\n",
    );
    let director_url = format!("{director_base}/mcp");
    let quiet_url = format!("{quiet_base}/mcp");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // Wait until the upstream's tools are exposed by both directors.
        let http = reqwest::Client::new();
        for base in [&director_base, &quiet_base] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let tools: Value = http
                    .get(format!("{base}/api/tools"))
                    .send()
                    .await
                    .expect("admin")
                    .json()
                    .await
                    .expect("json");
                if tools.as_array().is_some_and(|t| !t.is_empty()) {
                    break;
                }
                assert!(Instant::now() < deadline, "upstream never came up");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Warm both paths, then measure direct and through the director back to back.
        measure(&upstream_url, "echo", clients, 1, 0).await;
        measure(&director_url, "up/echo", clients, 1, 0).await;
        for (work_ms, direct_tool, via_tool) in [(0, "echo", "up/echo"), (1, "slow", "up/slow")] {
            let direct = measure(&upstream_url, direct_tool, clients, secs, work_ms).await;
            let via = measure(&director_url, via_tool, clients, secs, work_ms).await;
            println!(
                "tools/call, {clients} concurrent clients, {secs} s per path, Streamable HTTP JSON, upstream work {work_ms} ms"
            );
            for (name, r) in [("direct", &direct), ("director", &via)] {
                println!(
                    "{name:>9}: {:>8.0} calls/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} calls)",
                    r.throughput(),
                    r.p50.as_secs_f64() * 1e3,
                    r.p99.as_secs_f64() * 1e3,
                    r.calls
                );
            }
            println!(
                "    ratio: throughput {:.2}x of direct   p50 {:.2}x   p99 {:.2}x\n",
                via.throughput() / direct.throughput(),
                via.p50.as_secs_f64() / direct.p50.as_secs_f64(),
                via.p99.as_secs_f64() / direct.p99.as_secs_f64()
            );
        }

        // The cost of metrics and analytics: the same director with both off, alternating
        // runs so drift hits both sides alike.
        measure(&quiet_url, "up/echo", clients, 1, 0).await;
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            on.push(measure(&director_url, "up/echo", clients, secs, 0).await.throughput());
            off.push(measure(&quiet_url, "up/echo", clients, secs, 0).await.throughput());
        }
        let (on, off): (f64, f64) = (on.iter().sum::<f64>() / 3.0, off.iter().sum::<f64>() / 3.0);
        println!(
            "observability: {on:.0} calls/s with tool metrics + analytics, {off:.0} without: {:.1}% cost",
            (1.0 - on / off) * 100.0
        );
    });
}
