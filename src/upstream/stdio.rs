//! stdio upstreams: a child process speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! The child runs in its own process group, so stopping it also stops whatever it spawned
//! (`npx` → `node`, shells → their children). Its stderr goes to the log.

use super::{Pipe, Sent};
use crate::jsonrpc::Message;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::process::Command;
use tokio::sync::mpsc;

/// What to run.
pub struct Spawn<'a> {
    pub server: &'a str,
    pub command: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a str>,
    /// The longest line (message) the child may write; a longer one ends the connection.
    pub max_line: usize,
    /// Where the child's stderr lines are kept (besides the log).
    pub stderr: std::sync::Arc<StderrTail>,
}

/// The last lines a server's processes wrote to stderr: why one failed is often there.
#[derive(Default)]
pub struct StderrTail(std::sync::Mutex<std::collections::VecDeque<String>>);

impl StderrTail {
    const KEEP: usize = 100;

    pub fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == Self::KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// The director's environment variables that hold secrets.
const SECRET_ENV: &[&str] = &[
    crate::cluster::SECRET_ENV,
    "MCP_DIRECTOR_STORE_URL",
    "MCP_DIRECTOR_PASSWORD",
];

pub fn spawn(s: Spawn<'_>) -> std::io::Result<Pipe> {
    let mut cmd = Command::new(s.command);
    // The director's own secrets stay with it; an upstream gets them only if its `env` names
    // them.
    for secret in SECRET_ENV {
        cmd.env_remove(secret);
    }
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
    if let Some(pid) = pid {
        groups().insert(pid);
    }
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let server = s.server.to_string();

    let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
    let writer: super::Writer = Arc::new(move |message: Message| {
        let stdin = stdin.clone();
        Box::pin(write_line(stdin, message))
    });

    let (from_child, inbound) = mpsc::channel::<super::Inbound>(256);
    let name = server.clone();
    let max_line = s.max_line;
    tokio::spawn(async move {
        let mut lines = crate::ndjson::Lines::new(stdout, max_line);
        loop {
            match lines.next().await {
                Ok(Some(line)) => match Message::parse(line) {
                    Ok(m) => {
                        if from_child.send(m.into()).await.is_err() {
                            break;
                        }
                    }
                    Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
                    Err(e) => {
                        tracing::warn!(server = %name, error = %e.error.message, "ignoring a line that is not JSON-RPC")
                    }
                },
                Ok(None) => break,
                // Closing the connection: its calls fail now, and the supervisor restarts it.
                Err(e) => {
                    tracing::warn!(server = %name, error = %e, "upstream connection reset");
                    break;
                }
            }
        }
    });

    let (name, tail) = (server.clone(), s.stderr.clone());
    tokio::spawn(async move {
        let mut lines = crate::ndjson::Lines::truncating(stderr, 4096);
        while let Ok(Some(line)) = lines.next().await {
            let line = String::from_utf8_lossy(line);
            tracing::info!(target: "mcp_director::upstream::stderr", server = %name, "{line}");
            tail.push(line.into_owned());
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
            groups().remove(&pid);
        }
    });

    Ok(Pipe {
        writer,
        inbound,
        pid,
        shutdown: Box::new(move || {
            let _ = kill_tx.send(());
        }),
    })
}

/// Writes one message as a line, in the caller's task. A line is never left half-written: if
/// it does not go out at once (the pipe is full), a task of its own finishes it, whatever
/// becomes of the caller.
async fn write_line(stdin: Arc<tokio::sync::Mutex<ChildStdin>>, message: Message) -> Sent {
    let mut line = message.to_json().into_bytes();
    line.push(b'\n');
    let mut stdin = stdin.lock_owned().await;
    let mut write = Box::pin(async move {
        stdin.write_all(&line).await?;
        stdin.flush().await
    });
    let written = match futures::poll!(&mut write) {
        std::task::Poll::Ready(r) => r.is_ok(),
        std::task::Poll::Pending => tokio::spawn(write).await.is_ok_and(|r| r.is_ok()),
    };
    if written { Sent::Written } else { Sent::Closed }
}

/// The process groups of every child still running (a child's pid is its group's id).
fn groups() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<u32>> {
    static GROUPS: std::sync::Mutex<std::collections::BTreeSet<u32>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops every child's whole process group (what they started too, `npx` → `node`), now and
/// in this thread: the director is exiting, and tasks that would reap them may never run.
/// SIGTERM, up to 2 s to exit, then SIGKILL.
pub fn stop_every_group() {
    let pids: Vec<u32> = std::mem::take(&mut *groups()).into_iter().collect();
    if pids.is_empty() {
        return;
    }
    for &pid in &pids {
        kill_group(pid, libc::SIGTERM);
    }
    let alive = |pid: u32| {
        // SAFETY: signal 0 only asks whether the group has a process left.
        unsafe { libc::killpg(pid as libc::pid_t, 0) == 0 }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while pids.iter().any(|&p| alive(p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for pid in pids {
        kill_group(pid, libc::SIGKILL);
    }
}

fn kill_group(pid: u32, signal: i32) {
    // SAFETY: killpg only sends a signal; a stale group id fails with ESRCH, which is fine.
    unsafe {
        libc::killpg(pid as libc::pid_t, signal);
    }
}
