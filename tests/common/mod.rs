//! Starting and stopping a real `mcp-director` process for integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A director started on a free port with its own config file and data directory.
/// Killed when dropped.
pub struct Director {
    pub url: String,
    pub dir: PathBuf,
    child: Child,
    _temp: Option<tempfile::TempDir>,
}

impl Director {
    /// Starts a director with `config` as its TOML file (in a fresh directory).
    pub fn start(config: &str) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        std::fs::write(temp.path().join("mcp-director.toml"), config).expect("write config");
        let dir = temp.path().to_path_buf();
        let mut d = Self::start_in(&dir);
        d._temp = Some(temp);
        d
    }

    /// Starts a director on the config and data already in `dir` (for restart tests).
    pub fn start_in(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-director"))
            .arg("serve")
            .arg("--config")
            .arg(dir.join("mcp-director.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--bind", "127.0.0.1:0"])
            .env("MCP_DIRECTOR_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("director.log")).expect("log file"),
            ))
            .spawn()
            .expect("start mcp-director");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("director.log")).unwrap_or_default();
                panic!("director did not start:\n{log}");
            }
        };
        Self {
            url,
            dir: dir.to_path_buf(),
            child,
            _temp: None,
        }
    }

    /// Stops the process, keeping its directory; returns it for a restart.
    pub fn stop(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self._temp.take())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("director.log")).unwrap_or_default()
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("mcp-director.toml")).unwrap_or_default()
    }

    /// The generated admin client, optionally with Basic credentials.
    pub fn client(&self, credentials: Option<(&str, &str)>) -> mcp_director_client::Client {
        use base64::Engine;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some((u, p)) = credentials {
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Basic {v}").parse().expect("header value"),
            );
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("reqwest client");
        mcp_director_client::Client::new_with_client(&self.url, http)
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it yields a value (at most 20 s; the deadline only bounds a failure).
pub async fn wait_for<T, F, Fut>(check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
