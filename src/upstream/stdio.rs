//! stdio upstreams: a child process speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! The child runs in its own process group, so stopping it also stops whatever it spawned
//! (`npx` → `node`, shells → their children). Its stderr goes to the log.

use super::Pipe;
use crate::jsonrpc::Message;
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// What to run.
pub struct Spawn<'a> {
    pub server: &'a str,
    pub command: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a str>,
}

pub fn spawn(s: Spawn<'_>) -> std::io::Result<Pipe> {
    let mut cmd = Command::new(s.command);
    cmd.args(s.args)
        .envs(s.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = s.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let server = s.server.to_string();

    let (outbound, mut to_child) = mpsc::channel::<Message>(256);
    tokio::spawn(async move {
        while let Some(message) = to_child.recv().await {
            let mut line = message.to_json();
            line.push('\n');
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
    });

    let (from_child, inbound) = mpsc::channel::<Message>(256);
    let name = server.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            match Message::parse(line.as_bytes()) {
                Ok(m) => {
                    if from_child.send(m).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %name, error = %e.error.message, "ignoring a line that is not JSON-RPC")
                }
            }
        }
    });

    let name = server.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "mcp_director::upstream::stderr", server = %name, "{line}");
        }
    });

    // Reap the child whatever happens, so no zombie is left.
    let name = server.clone();
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            status = child.wait() => {
                tracing::info!(server = %name, ?status, "upstream process exited");
            }
            _ = kill_rx => {
                if let Some(pid) = pid {
                    kill_group(pid, libc::SIGTERM);
                }
                let graceful = tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
                if graceful.is_err() {
                    if let Some(pid) = pid {
                        kill_group(pid, libc::SIGKILL);
                    }
                    let _ = child.wait().await;
                }
            }
        }
        // The leader is gone; make sure the rest of its group is too.
        if let Some(pid) = pid {
            kill_group(pid, libc::SIGKILL);
        }
    });

    Ok(Pipe {
        direct: None,
        outbound,
        inbound,
        pid,
        shutdown: Box::new(move || {
            let _ = kill_tx.send(());
        }),
    })
}

fn kill_group(pid: u32, signal: i32) {
    // SAFETY: killpg only sends a signal; a stale group id fails with ESRCH, which is fine.
    unsafe {
        libc::killpg(pid as libc::pid_t, signal);
    }
}
