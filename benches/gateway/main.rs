//! `cargo bench --bench gateway [-- SECTION…]`: the director measured against going direct, in
//! one run, reported as ratios. Clients behave like real ones (see `client.rs`).
//!
//! Sections (all but `callgrind` by default):
//! - `throughput`: `tools/call echo` against a 0 ms upstream over Streamable HTTP (stateful, SSE
//!   answers, TCP_NODELAY, as the official SDKs' servers) and over stdio; 1 and 16 concurrent
//!   connections; one session shared by all connections, and one session per connection.
//!   Direct and through the director, back to back. Then the director's peak RSS.
//! - `catalog`: a director with 20 stdio upstreams of 50 tools each: `initialize` latency minus
//!   that of the cheapest answer (a 400) measured in the same run, and a full `tools/list` of
//!   the 1,000 tools.
//! - `sessions`: RSS of a director holding 100,000 idle sessions.
//! - `observability`: what tool metrics and analytics cost (same director, both off).
//! - `callgrind`: instructions per `tools/call` through the director (valgrind, stable on a
//!   noisy machine): two runs of N and 3N calls, differenced.
//!
//! - `soak`: 1,000 sessions opened and closed against an `isolation = "session"` stdio server
//!   (each process with a child of its own) and a shared one, a tenth of them crashing their
//!   server mid-call: processes left, RSS before and after, calls that hung (about a minute).
//! - `replicas`: the forwarding hop between replicas (PostgreSQL store, BENCH_POSTGRES_URL,
//!   default the machine's): sessions held by replica A, called at A (the baseline), through
//!   replica B (every call forwarded), and through HAProxy in front of one and of three
//!   replicas (round robin: two calls in three forwarded). On 2 cores this measures the
//!   overhead of the hop, not scaling.
//! - `load`: only load a running endpoint (BENCH_URL, BENCH_TOOL, BENCH_CLIENTS), to profile it.
//!
//! Environment: BENCH_SECS per measurement (default 5); BENCH_DIRECTOR, another director
//! binary to measure (an A/B of two builds in one run of this client).

mod client;

use client::{Http, StdioServer};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIXTURE: &str = env!("CARGO_BIN_EXE_mcp-fixture-server");

/// The director under test: this build's, or `BENCH_DIRECTOR` (to compare two builds).
fn director_bin() -> String {
    std::env::var("BENCH_DIRECTOR").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mcp-director").into())
}

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
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
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

/// A director on `config` (TOML), in its own directory under `dir`; returns it and its base URL.
fn director(dir: &Path, name: &str, config: &str) -> (Killed, String) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).expect("config");
    start(
        Command::new(director_bin())
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.join(name))
            .env("MCP_DIRECTOR_LOG", "warn"),
    )
}

/// Waits until the director at `base` exposes at least `tools` tools.
async fn wait_for_tools(base: &str, tools: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = Http::connect(&format!("{base}/mcp")).await;
        c.initialize().await;
        if c.list_tools().await >= tools {
            return;
        }
        assert!(Instant::now() < deadline, "upstreams never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Anonymous (heap, stacks) and file-backed (mapped program text) resident memory, in MiB.
fn rss_parts(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("RssAnon:") / 1024.0, kib("RssFile:") / 1024.0)
}

/// Resident and peak resident memory of a process, in MiB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    secs: f64,
}

impl Run {
    fn from(mut latencies: Vec<Duration>, secs: f64) -> Run {
        latencies.sort();
        Run { latencies, secs }
    }
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.secs
    }
    fn pct(&self, p: f64) -> Duration {
        let n = self.latencies.len();
        self.latencies[((n as f64 * p) as usize).min(n - 1)]
    }
    fn ms(&self, p: f64) -> f64 {
        self.pct(p).as_secs_f64() * 1e3
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Sessions {
    /// One session, used by every connection.
    Shared,
    /// A session per connection.
    PerConnection,
}

fn echo_args(c: usize, n: u64) -> (Value, String) {
    let text = format!("client {c} call {n}");
    (json!({ "text": text }), text)
}

fn check_echo(result: &Value, sent: &str) {
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.ends_with(sent), "echo answered {result}");
}

/// `clients` connections calling `tool` (echo) in a loop for `secs`.
async fn measure_http(url: &str, tool: &str, clients: usize, secs: f64, s: Sessions) -> Run {
    let mut shared = None;
    if s == Sessions::Shared {
        let mut c = Http::connect(url).await;
        c.initialize().await;
        shared = c.session.clone();
    }
    let mut conns = Vec::new();
    for _ in 0..clients {
        let mut c = Http::connect(url).await;
        match &shared {
            Some(id) => c.session = Some(id.clone()),
            None => c.initialize().await,
        }
        conns.push(c);
    }
    run_calls(conns, tool, secs).await
}

/// Each of `conns` calling `tool` (echo) in a loop for `secs`.
async fn run_calls(conns: Vec<Http>, tool: &str, secs: f64) -> Run {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let tool = tool.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let (args, sent) = echo_args(i, n);
                    let t = Instant::now();
                    let result = c.call(&tool, &args).await;
                    latencies.push(t.elapsed());
                    check_echo(&result, &sent);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    Run::from(all, started.elapsed().as_secs_f64())
}

/// `clients` concurrent callers of the stdio server, one pipe, for `secs`.
async fn measure_stdio(server: &Arc<StdioServer>, clients: usize, secs: f64) -> Run {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let (args, sent) = echo_args(i, n);
                    let t = Instant::now();
                    let result = server.call("echo", &args).await;
                    latencies.push(t.elapsed());
                    check_echo(&result, &sent);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    Run::from(all, started.elapsed().as_secs_f64())
}

fn report(label: &str, direct: &Run, via: &Run) {
    report_as(label, ("direct", direct), ("director", via));
}

/// Two runs, the second as ratios of the first (the baseline).
fn report_as(label: &str, (base, direct): (&str, &Run), (other, via): (&str, &Run)) {
    println!("{label}");
    for (name, r) in [(base, direct), (other, via)] {
        println!(
            "  {name:>9}: {:>8.0} calls/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} calls)",
            r.throughput(),
            r.ms(0.5),
            r.ms(0.99),
            r.latencies.len()
        );
    }
    println!(
        "      ratio: throughput {:.2}x of {base}   p50 {:.2}x   p99 {:.2}x",
        via.throughput() / direct.throughput(),
        via.ms(0.5) / direct.ms(0.5),
        via.ms(0.99) / direct.ms(0.99)
    );
}

fn through_config(upstream_url: &str) -> String {
    format!(
        "[servers.h]\ntransport = \"streamable-http\"\nurl = \"{upstream_url}\"\n\
         [servers.s]\ntransport = \"stdio\"\ncommand = \"{FIXTURE}\"\n"
    )
}

async fn throughput(dir: &Path, secs: f64) {
    let (_upstream, upstream_url) = start(Command::new(FIXTURE).args(["--http", "127.0.0.1:0"]));
    let (d, base) = director(dir, "throughput", &through_config(&upstream_url));
    wait_for_tools(&base, 2 * 11).await;
    let via_url = format!("{base}/mcp");
    let (_floor, floor_base) = start(
        Command::new(std::env::current_exe().expect("this executable")).args([
            "--floor-proxy",
            "127.0.0.1:0",
            &upstream_url,
        ]),
    );
    let floor_url = format!("{floor_base}/mcp");
    let stdio = StdioServer::spawn(FIXTURE).await;
    // Warm both paths.
    measure_http(&upstream_url, "echo", 4, 0.5, Sessions::PerConnection).await;
    measure_http(&via_url, "h/echo", 4, 0.5, Sessions::PerConnection).await;
    let (rss_start, _) = rss(d.0.id());
    for clients in [1, 16] {
        let modes: &[Sessions] = if clients == 1 {
            &[Sessions::PerConnection]
        } else {
            &[Sessions::Shared, Sessions::PerConnection]
        };
        for &mode in modes {
            let what = match (clients, mode) {
                (1, _) => "",
                (_, Sessions::Shared) => ", one session",
                (_, Sessions::PerConnection) => ", a session per connection",
            };
            let direct = measure_http(&upstream_url, "echo", clients, secs, mode).await;
            let floor = measure_http(&floor_url, "echo", clients, secs, mode).await;
            let via = measure_http(&via_url, "h/echo", clients, secs, mode).await;
            report(
                &format!("tools/call, Streamable HTTP upstream, c={clients}{what}"),
                &direct,
                &via,
            );
            println!(
                "      floor (a proxy forwarding bytes unread): {:.0} calls/s ({:.2}x of direct), p50 {:.3} ms ({:.2}x); the director reaches {:.2}x of the floor's throughput",
                floor.throughput(),
                floor.throughput() / direct.throughput(),
                floor.ms(0.5),
                floor.ms(0.5) / direct.ms(0.5),
                via.throughput() / floor.throughput()
            );
        }
        let direct = measure_stdio(&stdio, clients, secs).await;
        for &mode in modes {
            let what = match (clients, mode) {
                (1, _) => "",
                (_, Sessions::Shared) => ", one session",
                (_, Sessions::PerConnection) => ", a session per connection",
            };
            let via = measure_http(&via_url, "s/echo", clients, secs, mode).await;
            report(
                &format!("tools/call, stdio upstream, c={clients}{what}"),
                &direct,
                &via,
            );
        }
    }
    let (now, peak) = rss(d.0.id());
    println!(
        "director RSS: {rss_start:.1} MiB after warm-up, {now:.1} MiB now, peak {peak:.1} MiB\n"
    );
}

async fn catalog(dir: &Path) {
    let mut config = String::new();
    for i in 1..=20 {
        config.push_str(&format!(
            "[servers.s{i:02}]\ntransport = \"stdio\"\ncommand = \"{FIXTURE}\"\n\
             env = {{ FIXTURE_EXTRA_TOOLS = \"39\" }}\n"
        ));
    }
    let (_d, base) = director(dir, "catalog", &config);
    wait_for_tools(&base, 1000).await;
    let url = format!("{base}/mcp");
    let mut c = Http::connect(&url).await;
    let n = 2000;
    let (mut init, mut cheapest) = (Vec::new(), Vec::new());
    for i in 0..n {
        // initialize opens a session (closed again, untimed).
        let t = Instant::now();
        let a = c.post(client::initialize_body(i)).await;
        init.push(t.elapsed());
        assert_eq!(a.status, 200);
        c.session = a.session;
        let a = c
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await;
        assert_eq!(a.status, 202);
        delete(&url, c.session.take().expect("a session")).await;
        // The cheapest answer: a request without a session, refused with 400.
        let t = Instant::now();
        let a = c
            .post(json!({"jsonrpc": "2.0", "id": i, "method": "tools/list"}).to_string())
            .await;
        cheapest.push(t.elapsed());
        assert_eq!(a.status, 400);
    }
    let (init, cheapest) = (Run::from(init, 1.0), Run::from(cheapest, 1.0));
    println!("initialize with 20 stdio upstreams configured ({n} sessions):");
    println!(
        "  initialize p50 {:.3} ms, cheapest answer (400) p50 {:.3} ms: director work {:.3} ms",
        init.ms(0.5),
        cheapest.ms(0.5),
        init.ms(0.5) - cheapest.ms(0.5)
    );
    c.initialize().await;
    let mut lists = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let tools = c.list_tools().await;
        lists.push(t.elapsed());
        assert_eq!(tools, 20 * 50);
    }
    let lists = Run::from(lists, 1.0);
    println!(
        "tools/list of 1000 tools (20 upstreams x 50, every page): p50 {:.3} ms, p99 {:.3} ms\n",
        lists.ms(0.5),
        lists.ms(0.99)
    );
}

/// Ends a session (DELETE), on a connection of its own.
async fn delete(url: &str, session: String) {
    let rest = url.strip_prefix("http://").expect("http");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let request = format!(
        "DELETE {path} HTTP/1.1\r\nhost: {authority}\r\nmcp-session-id: {session}\r\nconnection: close\r\n\r\n"
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 204"),
        "DELETE answered {:?}",
        String::from_utf8_lossy(&answer)
    );
}

async fn sessions(dir: &Path) {
    let (d, base) = director(dir, "sessions", "");
    let url = format!("{base}/mcp");
    let mut warm = Http::connect(&url).await;
    warm.initialize().await;
    let (before, _) = rss(d.0.id());
    let total = 100_000;
    let workers = 16;
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut c = Http::connect(&url).await;
                for _ in 0..total / workers {
                    c.initialize().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    let (after, peak) = rss(d.0.id());
    println!(
        "100000 idle sessions (opened in {secs:.1} s): RSS {before:.1} MiB before, {after:.1} MiB after \
         ({:.0} bytes per session), peak {peak:.1} MiB\n",
        (after - before) * 1024.0 * 1024.0 / total as f64
    );
}

async fn observability(dir: &Path, secs: f64) {
    let (_upstream, upstream_url) = start(Command::new(FIXTURE).args(["--http", "127.0.0.1:0"]));
    let upstream =
        format!("[servers.h]\ntransport = \"streamable-http\"\nurl = \"{upstream_url}\"\n");
    let (_on, on_base) = director(dir, "observed", &upstream);
    let (_off, off_base) = director(
        dir,
        "quiet",
        &format!("[settings.observability]\ntool_metrics = false\nanalytics = false\n{upstream}"),
    );
    wait_for_tools(&on_base, 11).await;
    wait_for_tools(&off_base, 11).await;
    let (on_url, off_url) = (format!("{on_base}/mcp"), format!("{off_base}/mcp"));
    let (mut on, mut off) = (0.0, 0.0);
    // Alternating, so drift hits both alike.
    for _ in 0..3 {
        on += measure_http(&on_url, "h/echo", 16, secs, Sessions::PerConnection)
            .await
            .throughput();
        off += measure_http(&off_url, "h/echo", 16, secs, Sessions::PerConnection)
            .await
            .throughput();
    }
    println!(
        "observability: {:.0} calls/s with tool metrics + analytics, {:.0} without: {:.1}% cost\n",
        on / 3.0,
        off / 3.0,
        (1.0 - on / off) * 100.0
    );
}

/// Processes carrying `mark` in their environment (fixtures and what they started).
fn marked_processes(mark: &str) -> Vec<u32> {
    let needle = format!("SOAK_MARK={mark}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            });
            !zombie && environ.split(|b| *b == 0).any(|v| v == needle.as_bytes())
        })
        .collect()
}

/// One soak session: initialize, call `tools`, end it; (answered, failed, hanging) calls.
async fn soak_session(url: String, tools: &[&str]) -> (u64, u64, u64) {
    let (mut ok, mut failed, mut hung) = (0, 0, 0);
    let mut c = Http::connect(&url).await;
    c.initialize().await;
    for tool in tools {
        let id = c.next_id();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": {"text": "soak"}}});
        match tokio::time::timeout(Duration::from_secs(30), c.post(body.to_string())).await {
            Ok(a) if a.text.as_deref().is_some_and(|t| t.contains("\"result\"")) => ok += 1,
            Ok(_) => failed += 1,
            Err(_) => hung += 1,
        }
    }
    delete(&url, c.session.take().expect("a session")).await;
    (ok, failed, hung)
}

/// 1,000 sessions opened and closed against an `isolation = "session"` stdio server (a
/// process per session, each starting a grandchild) and a shared one; every tenth session
/// crashes its server mid-call. Afterwards: no process left but the shared server's, RSS back near where
/// it started, and every call answered (none hanging).
async fn soak(dir: &Path) {
    let mark = format!("{}-{}", std::process::id(), now_nanos());
    let grandchild = dir.join("grandchild.pid");
    let server = |name: &str, isolation: &str| {
        format!(
            "[servers.{name}]\ncommand = \"{FIXTURE}\"\nisolation = \"{isolation}\"\n\
             env = {{ SOAK_MARK = \"{mark}\", FIXTURE_GRANDCHILD = \"{}\" }}\n",
            grandchild.display()
        )
    };
    let config = format!("{}{}", server("iso", "session"), server("shared", "shared"));
    let (d, base) = director(dir, "soak", &config);
    wait_for_tools(&base, 11).await;
    let url = format!("{base}/mcp");
    // Warm up, then measure from here.
    for _ in 0..20 {
        soak_session(url.clone(), &["iso/echo", "shared/echo"]).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Every tenth session crashes its own server (then calls it again: a new one starts).
    // Two rounds: what the first leaves is the baseline of the second.
    let round = async || {
        let started = Instant::now();
        let workers: Vec<_> = (0..16)
            .map(|w| {
                let url = url.clone();
                tokio::spawn(async move {
                    let mut totals = (0, 0, 0);
                    for i in 0..1000 / 16 + 1 {
                        let tools: &[&str] = if (w * 100 + i) % 10 == 0 {
                            &["iso/crash", "iso/echo", "shared/echo"]
                        } else {
                            &["iso/echo", "shared/echo"]
                        };
                        let (ok, failed, hung) = soak_session(url.clone(), tools).await;
                        totals = (totals.0 + ok, totals.1 + failed, totals.2 + hung);
                    }
                    totals
                })
            })
            .collect();
        let mut totals = (0, 0, 0);
        for w in workers {
            let (ok, failed, hung) = w.await.expect("worker");
            totals = (totals.0 + ok, totals.1 + failed, totals.2 + hung);
        }
        // Isolated servers end with their sessions; give the last ones a moment.
        tokio::time::sleep(Duration::from_secs(3)).await;
        (totals, started.elapsed().as_secs_f64())
    };
    for n in 1..=2 {
        let (anon_before, file_before) = rss_parts(d.0.id());
        let ((ok, failed, hung), secs) = round().await;
        let (anon, file) = rss_parts(d.0.id());
        let left = marked_processes(&mark);
        println!(
            "soak round {n}: {} sessions, {failed} of them crashing their server, in {secs:.1} s; calls: {ok} \
             answered, {failed} failed (the crashing ones), {hung} hanging; processes left: {} (expected 4: \
             the two pooled instances and their children); RSS anonymous {anon_before:.1} -> {anon:.1} MiB \
             ({:+.1}%), program text mapped {file_before:.1} -> {file:.1} MiB",
            16 * (1000 / 16 + 1),
            left.len(),
            (anon / anon_before - 1.0) * 100.0
        );
        if std::env::var("BENCH_DEBUG").is_ok() {
            for pid in &left {
                let cmd =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                eprintln!("left: {pid} {cmd:?}");
            }
        }
    }
    let mut d = d;
    // SAFETY: a signal to our own child (SIGTERM: the director stops as an operator stops it).
    unsafe { libc::kill(d.0.id() as i32, libc::SIGTERM) };
    let _ = d.0.wait();
    let after_exit = marked_processes(&mark);
    println!(
        "soak: processes left after the director exited: {}\n",
        after_exit.len()
    );
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Instructions the director executes for `calls` sequential tools/call (c=1, HTTP upstream).
async fn instructions(dir: &Path, upstream_url: &str, calls: u64) -> u64 {
    let out = dir.join(format!("callgrind.{calls}.out"));
    let config = dir.join("callgrind.toml");
    std::fs::write(
        &config,
        format!("[servers.h]\ntransport = \"streamable-http\"\nurl = \"{upstream_url}\"\n"),
    )
    .expect("config");
    let (mut d, base) = start(
        Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(director_bin())
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join(format!("callgrind-{calls}")))
            .env("MCP_DIRECTOR_LOG", "warn"),
    );
    wait_for_tools(&base, 11).await;
    let mut c = Http::connect(&format!("{base}/mcp")).await;
    c.initialize().await;
    for n in 0..calls {
        let (args, sent) = echo_args(0, n);
        check_echo(&c.call("h/echo", &args).await, &sent);
    }
    // SIGTERM: callgrind writes its totals as the director exits.
    unsafe { libc::kill(d.0.id() as i32, libc::SIGTERM) };
    let _ = d.0.wait();
    let text = std::fs::read_to_string(&out).expect("callgrind output");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("a callgrind total")
}

async fn callgrind(dir: &Path) {
    let (_upstream, upstream_url) = start(Command::new(FIXTURE).args(["--http", "127.0.0.1:0"]));
    let n = 500;
    let one = instructions(dir, &upstream_url, n).await;
    let three = instructions(dir, &upstream_url, 3 * n).await;
    println!(
        "callgrind: {:.0} instructions per tools/call through the director ({} and {} calls: {one} and {three})\n",
        (three.saturating_sub(one)) as f64 / (2 * n) as f64,
        n,
        3 * n
    );
}

/// Load against a running endpoint, for profiling it: BENCH_URL, BENCH_TOOL, BENCH_CLIENTS.
async fn load(secs: f64) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is required for `load`"));
    let clients = var("BENCH_CLIENTS").parse().expect("a number");
    let run = measure_http(
        &var("BENCH_URL"),
        &var("BENCH_TOOL"),
        clients,
        secs,
        Sessions::PerConnection,
    )
    .await;
    println!(
        "load: {:.0} calls/s, p50 {:.3} ms, p99 {:.3} ms",
        run.throughput(),
        run.ms(0.5),
        run.ms(0.99)
    );
}

/// The floor: the least a proxy can do per request (hyper server, hyper client, the body
/// forwarded unread), run as this same executable with `--floor-proxy LISTEN UPSTREAM`. What
/// the director costs beyond it is its own work; what the floor costs is the extra hop.
fn floor_proxy(listen: &str, upstream: &str) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let upstream: hyper::Uri = upstream.parse().expect("upstream URL");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("bound")
        );
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let (client, upstream) = (client.clone(), upstream.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let mut forwarded =
                                hyper::Request::new(Full::new(body.collect().await?.to_bytes()));
                            *forwarded.method_mut() = parts.method;
                            *forwarded.uri_mut() = upstream;
                            *forwarded.headers_mut() = parts.headers;
                            let (parts, body) = client
                                .request(forwarded)
                                .await
                                .expect("upstream")
                                .into_parts();
                            let body = Full::new(body.collect().await?.to_bytes());
                            Ok::<_, hyper::Error>(hyper::Response::from_parts(parts, body))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

/// `clients` sessions initialized at `init_url`, each called through a connection of its own
/// to `call_url`.
async fn measure_sessions_via(init_url: &str, call_url: &str, clients: usize, secs: f64) -> Run {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let mut owner = Http::connect(init_url).await;
        owner.initialize().await;
        let mut c = Http::connect(call_url).await;
        c.session = owner.session.clone();
        conns.push(c);
    }
    run_calls(conns, "h/echo", secs).await
}

/// HAProxy (Debian's) on a free port balancing round robin over `backends`; None without it.
fn haproxy(dir: &Path, name: &str, backends: &[&str]) -> Option<(Killed, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("  server r{i} {}\n", b.trim_start_matches("http://")))
        .collect();
    let config = dir.join(format!("{name}.cfg"));
    std::fs::write(
        &config,
        format!(
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 1m\n  timeout server 1m\n\
             frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
             backend b\n  balance roundrobin\n{servers}"
        ),
    )
    .ok()?;
    let child = Command::new("/usr/sbin/haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Killed(child), format!("http://127.0.0.1:{port}")))
}

async fn replicas(dir: &Path, secs: f64) {
    use sqlx::Connection;
    let admin = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let Ok(mut pg) = sqlx::PgConnection::connect(&admin).await else {
        println!("replicas: skipped, no PostgreSQL at {admin}\n");
        return;
    };
    let schema = format!("mcpd_bench_{}", std::process::id());
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut pg)
        .await
        .expect("create the schema");
    let sep = if admin.contains('?') { '&' } else { '?' };
    let store = format!("{admin}{sep}options=-csearch_path%3D{schema}");
    let (_upstream, upstream_url) = start(Command::new(FIXTURE).args(["--http", "127.0.0.1:0"]));
    let config = format!(
        "[settings.store]\nurl = \"{store}\"\n[servers.h]\ntransport = \"streamable-http\"\nurl = \"{upstream_url}\"\n"
    );
    let mut nodes = Vec::new();
    for name in ["replica-a", "replica-b", "replica-c"] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, &config).expect("config");
        nodes.push(start(
            Command::new(director_bin())
                .args(["serve", "--bind", "127.0.0.1:0", "--config"])
                .arg(&path)
                .arg("--data-dir")
                .arg(dir.join(name))
                .env("MCP_DIRECTOR_LOG", "warn")
                .env(
                    "MCP_DIRECTOR_CLUSTER_SECRET",
                    "bench-cluster-secret-0123456789",
                ),
        ));
    }
    for (_, base) in &nodes {
        wait_for_tools(base, 11).await;
    }
    let (a, b) = (format!("{}/mcp", nodes[0].1), format!("{}/mcp", nodes[1].1));
    let bases: Vec<&str> = nodes.iter().map(|(_, b)| b.as_str()).collect();
    let lb_one = haproxy(dir, "haproxy-1", &bases[..1]);
    let lb_three = haproxy(dir, "haproxy-3", &bases);
    // Warm every path.
    measure_sessions_via(&a, &a, 4, 0.5).await;
    measure_sessions_via(&a, &b, 4, 0.5).await;
    for clients in [1, 16] {
        let direct = measure_sessions_via(&a, &a, clients, secs).await;
        let forwarded = measure_sessions_via(&a, &b, clients, secs).await;
        report_as(
            &format!("tools/call on a session held by replica A, c={clients}"),
            ("at A", &direct),
            ("via B", &forwarded),
        );
        if let (Some((_, one)), Some((_, three))) = (&lb_one, &lb_three) {
            let (one, three) = (format!("{one}/mcp"), format!("{three}/mcp"));
            let one = measure_sessions_via(&one, &one, clients, secs).await;
            let three = measure_sessions_via(&three, &three, clients, secs).await;
            report_as(
                &format!(
                    "through HAProxy, c={clients} (round robin over 3: 2 calls in 3 forwarded)"
                ),
                ("1 replica", &one),
                ("3 replicas", &three),
            );
        }
    }
    if lb_three.is_none() {
        println!("  (HAProxy not found at /usr/sbin/haproxy: its rows skipped)");
    }
    println!();
    drop(nodes);
    let _ = sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut pg)
        .await;
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let [_, flag, listen, upstream, ..] = argv.as_slice()
        && flag == "--floor-proxy"
    {
        return floor_proxy(listen, upstream);
    }
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |s: &str| {
        if args.is_empty() {
            !matches!(s, "callgrind" | "load" | "soak" | "replicas")
        } else {
            args.iter().any(|a| a == s)
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        if wanted("throughput") {
            throughput(dir.path(), secs).await;
        }
        if wanted("catalog") {
            catalog(dir.path()).await;
        }
        if wanted("sessions") {
            sessions(dir.path()).await;
        }
        if wanted("observability") {
            observability(dir.path(), secs).await;
        }
        if wanted("callgrind") {
            callgrind(dir.path()).await;
        }
        if wanted("replicas") {
            replicas(dir.path(), secs).await;
        }
        if wanted("soak") {
            soak(dir.path()).await;
        }
        if wanted("load") {
            load(secs).await;
        }
    });
}
