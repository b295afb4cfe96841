//! Several replicas as users run them: HAProxy (Debian's, installed by `cargo xtask test`) in
//! front, plain round robin and no stickiness, and the machine's Redis. Missing either, a test
//! is skipped with a loud message, or fails under CI.

use super::{Director, Peer, PgSchema, free_port};
use std::process::{Command, Stdio};
use std::time::Duration;

const HAPROXY: &str = "/usr/sbin/haproxy";

/// What the replicas of one deployment share in their environment.
pub const SECRET: (&str, &str) = (
    "MCP_DIRECTOR_CLUSTER_SECRET",
    "cluster-test-secret-0123456789",
);

/// Whether `what` is there; if not, says so loudly (and fails under CI).
fn required(what: &str, there: Result<(), String>) -> bool {
    match there {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{what} is required under CI: {e}"),
        Err(e) => {
            eprintln!("\n!!!!! SKIPPED: no {what}: {e} !!!!!\n");
            false
        }
    }
}

/// The Redis URL for the tests (`MCP_DIRECTOR_TEST_REDIS_URL`, else the machine's), if one
/// answers.
pub fn redis() -> Option<String> {
    let url = std::env::var("MCP_DIRECTOR_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let addr = url::Url::parse(&url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(6379))))
        .unwrap_or_default();
    let answers = (|| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
        let mut pong = [0u8; 5];
        s.read_exact(&mut pong).map_err(|e| e.to_string())?;
        (&pong == b"+PONG")
            .then_some(())
            .ok_or_else(|| "no PONG".to_string())
    })();
    required(&format!("Redis at {url}"), answers).then_some(url)
}

/// HAProxy balancing round robin over `backends` (base URLs), no stickiness; unhealthy
/// replicas (its `/health` check) are taken out, and a request whose connection fails is
/// sent to another.
pub struct Haproxy {
    pub url: String,
    _peer: Peer,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(backends: &[&str]) -> Option<Haproxy> {
        let found = std::path::Path::new(HAPROXY)
            .exists()
            .then_some(())
            .ok_or_else(|| format!("{HAPROXY} (cargo xtask test installs it)"));
        if !required("HAProxy", found) {
            return None;
        }
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let addr = url.trim_start_matches("http://");
                format!("  server r{i} {addr} check inter 500ms fall 2 rise 1\n")
            })
            .collect();
        let config = format!(
            "global\n  maxconn 2000\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 10m\n  timeout server 10m\n  \
             timeout tunnel 10m\n  option forwardfor\n  retries 3\n  option redispatch 1\n\
             frontend mcp\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n  option httpchk GET /health\n{servers}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config).expect("write haproxy.cfg");
        let peer = Peer::spawn(
            Command::new(HAPROXY)
                .arg("-db")
                .arg("-f")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "HAProxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Haproxy {
            url: format!("http://127.0.0.1:{port}"),
            _peer: peer,
            _dir: dir,
        })
    }
}

/// `n` replicas on one fresh PostgreSQL schema sharing the cluster secret, each with `config`
/// (the store URL added), every one with `servers` running, and HAProxy in front; `None` when
/// PostgreSQL or HAProxy is missing (outside CI).
pub async fn replicas(
    n: usize,
    config: &str,
    servers: &[&str],
    env: &[(&str, &str)],
) -> Option<(PgSchema, Vec<Director>, Haproxy)> {
    let schema = PgSchema::new().await?;
    let config = format!("[settings.store]\nurl = \"{}\"\n{config}", schema.url);
    let mut env = env.to_vec();
    env.push(SECRET);
    let mut directors = Vec::new();
    for _ in 0..n {
        directors.push(Director::start_with_env(&config, &env));
    }
    for d in &directors {
        d.wait_running(servers).await;
    }
    // Each knows where the others are once their heartbeats carry their URLs (written at start).
    let urls: Vec<&str> = directors.iter().map(|d| d.url.as_str()).collect();
    let lb = Haproxy::start(&urls)?;
    // HAProxy's first health checks.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Some((schema, directors, lb))
}
