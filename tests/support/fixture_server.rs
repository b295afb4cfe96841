//! `mcp-fixture-server`: a small, deterministic MCP server over stdio for the tests. Each tool
//! exercises one protocol feature through the director:
//!
//! - `echo {text}`: text content, plus the arguments and `_meta` it received (lossless check)
//! - `env {name}`: an environment variable, the working directory and the pid
//! - `progress {steps}`: progress notifications on the request's token
//! - `sample {prompt}` / `elicit {message}` / `roots`: a request to the client, answered back
//! - `slow {ms}`: answers after `ms` (cancellable)
//! - `log`: one `notifications/message` per level at or above the one `logging/setLevel` set
//! - `crash`: exits at once, mid-call
//! - `add_tool {name}`: registers a tool and sends `tools/list_changed`
//! - prompt `greet {name}` (with completion), resources `fixture://static`, `fixture://items/{id}`
//!
//! `FIXTURE_NAME` names the server in its answers (to tell two instances apart).
//! `FIXTURE_MODERN_ONLY=1` makes it a 2026-07-28 server: `initialize` refused, `server/discover`
//! and `subscriptions/listen` served, and `sample`/`elicit`/`roots` answer `input_required`
//! (finishing on the retry with `inputResponses` and its `requestState`).
//! `FIXTURE_HOSTILE=1` adds hostile tools: `spray` (progress for others' tokens, log messages)
//! and `flood {mib}` (one endless line); `FIXTURE_TOKEN_LOG`/`FIXTURE_SPRAY_FROM` let one
//! instance leak its progress tokens to another; `FIXTURE_GRANDCHILD=FILE` starts a child
//! process of its own and writes its pid there.
//!
//! `FIXTURE_CONFORMANCE=1` serves only the catalogue of the official MCP conformance suite
//! instead (see `conformance.rs`).
//!
//! With `--http ADDR` it serves Streamable HTTP instead (stateful; answers as SSE, or JSON with
//! `--json`; no server-initiated requests), prints `listening on http://ADDR/mcp`, and is the
//! fast upstream of the benchmark. `FIXTURE_EXTRA_TOOLS=N` adds N trivial tools.

mod conformance;

use mcp_director::jsonrpc::{ErrorObject, Id, Message, Notification, Request, Response, raw};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Requests we sent the client, by their id as JSON text.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, ErrorObject>>>>>;

struct Server {
    out: mpsc::UnboundedSender<Message>,
    waiters: Waiters,
    next_id: AtomicI64,
    extra_tools: Mutex<Vec<String>>,
    cancelled: Mutex<Vec<Id>>,
    name: String,
    /// The level `logging/setLevel` asked for (index into LEVELS).
    log_level: Mutex<usize>,
    /// `FIXTURE_CONFORMANCE=1`: the conformance catalogue's state.
    conformance: Option<conformance::State>,
    /// `FIXTURE_MODERN_ONLY=1`: a 2026-07-28 server that refuses `initialize`; its open
    /// `subscriptions/listen` requests (their ids) hear of its tool changes.
    modern_only: bool,
    listeners: Mutex<Vec<Value>>,
}

const LEVELS: [&str; 4] = ["debug", "info", "warning", "error"];

/// The state the 2026 fixture hands out with its questions (checked on the retry).
const STATE: &str = "fixture-state";

/// What the tools that ask the client (`sample`, `elicit`, `roots`) ask.
fn question(tool: &str, params: &Value) -> (&'static str, Value) {
    let arg = |k: &str| params["arguments"][k].clone();
    match tool {
        "sample" => (
            "sampling/createMessage",
            json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": arg("prompt")}}],
                "maxTokens": 50,
            }),
        ),
        "elicit" => (
            "elicitation/create",
            json!({
                "mode": "form",
                "message": arg("message"),
                "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            }),
        ),
        _ => ("roots/list", json!({})),
    }
}

/// Their result, from the client's answer.
fn answered(tool: &str, answer: &Value) -> Value {
    let text = match tool {
        "sample" => format!(
            "sampled: {}",
            answer
                .pointer("/content/text")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        "elicit" => format!(
            "elicited: {} {}",
            answer["action"].as_str().unwrap_or_default(),
            answer
                .pointer("/content/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        _ => format!("roots: {}", answer["roots"]),
    };
    json!({"content": [{"type": "text", "text": text}]})
}

impl Server {
    fn send(&self, m: Message) {
        let _ = self.out.send(m);
    }

    fn notify(&self, method: &str, params: Value) {
        self.send(
            Notification {
                method: method.into(),
                params: Some(raw(&params)),
            }
            .into(),
        );
    }

    async fn ask(&self, method: &str, params: Value) -> Result<Value, ErrorObject> {
        let id = json!(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.ask_as(id, method, params).await
    }

    /// [`Server::ask`] under an id of the caller's (a name, for a client that keys answers).
    async fn ask_as(&self, id: Value, method: &str, params: Value) -> Result<Value, ErrorObject> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id.to_string(), tx);
        self.send(
            Request {
                id,
                method: method.into(),
                params: Some(raw(&params)),
            }
            .into(),
        );
        rx.await
            .unwrap_or_else(|_| Err(ErrorObject::internal("no answer")))
    }

    fn tools(&self) -> Vec<Value> {
        let object = |props: Value| json!({"type": "object", "properties": props});
        let mut tools = vec![
            json!({"name": "echo", "description": "Echoes text", "inputSchema": {
                "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                "$defs": {"Unused": {"type": "string"}}}}),
            json!({"name": "env", "description": "Reads an environment variable", "inputSchema": object(json!({"name": {"type": "string"}}))}),
            json!({"name": "progress", "description": "Reports progress", "inputSchema": object(json!({"steps": {"type": "integer"}}))}),
            json!({"name": "sample", "description": "Asks the client's LLM", "inputSchema": object(json!({"prompt": {"type": "string"}}))}),
            json!({"name": "elicit", "description": "Asks the user", "inputSchema": object(json!({"message": {"type": "string"}}))}),
            json!({"name": "roots", "description": "Lists the client's roots", "inputSchema": object(json!({}))}),
            json!({"name": "slow", "description": "Answers after ms", "inputSchema": object(json!({"ms": {"type": "integer"}}))}),
            json!({"name": "log", "description": "Logs one message per level at or above the set one", "inputSchema": object(json!({}))}),
            json!({"name": "crash", "description": "Exits mid-call", "inputSchema": object(json!({}))}),
            json!({"name": "add_tool", "description": "Adds a tool", "inputSchema": object(json!({"name": {"type": "string"}}))}),
            json!({"name": "forbid", "description": "Never runs as a task", "inputSchema": object(json!({})),
                "execution": {"taskSupport": "forbidden"}}),
        ];
        if std::env::var("FIXTURE_HOSTILE").is_ok() {
            tools.push(json!({"name": "spray", "description": "Sprays progress for others' tokens and log messages", "inputSchema": object(json!({}))}));
            tools.push(json!({"name": "flood", "description": "Writes one unterminated line of `mib` MiB", "inputSchema": object(json!({"mib": {"type": "integer"}}))}));
        }
        for t in self.extra_tools.lock().unwrap().iter() {
            tools.push(json!({"name": t, "description": "added at run time", "inputSchema": object(json!({}))}));
        }
        tools
    }

    async fn call(self: Arc<Self>, id: Id, params: Value) -> Result<Value, ErrorObject> {
        let args = params.get("arguments").cloned().unwrap_or(json!({}));
        let text = |t: String| json!({"content": [{"type": "text", "text": t}]});
        let arg = |k: &str| args.get(k).cloned().unwrap_or(Value::Null);
        let name = params["name"].as_str().unwrap_or_default();
        match name {
            "echo" => Ok(json!({
                "content": [{"type": "text", "text": format!("{}: {}", self.name, arg("text").as_str().unwrap_or_default())}],
                "structuredContent": {"arguments": args, "meta": params.get("_meta")},
            })),
            "env" => {
                let name = arg("name");
                let value = std::env::var(name.as_str().unwrap_or_default()).unwrap_or_default();
                let cwd = std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                Ok(text(format!("{value}|{cwd}|{}", std::process::id())))
            }
            "log" => {
                // One message per level the client asked for, as a real server filters.
                let from = *self.log_level.lock().unwrap();
                for level in &LEVELS[from..] {
                    self.notify(
                        "notifications/message",
                        json!({"level": level, "logger": self.name, "data": format!("{level} message")}),
                    );
                }
                Ok(text(format!("logged from {}", LEVELS[from])))
            }
            "progress" => {
                let steps = arg("steps").as_i64().unwrap_or(3);
                if let Some(token) = params.pointer("/_meta/progressToken") {
                    // FIXTURE_TOKEN_LOG: the tokens this server was given, for a hostile one
                    // to try (a leaked token).
                    if let Ok(path) = std::env::var("FIXTURE_TOKEN_LOG")
                        && let Ok(mut f) = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                    {
                        let _ = writeln!(f, "{}", token.as_str().unwrap_or_default());
                    }
                    for i in 1..=steps {
                        self.notify(
                            "notifications/progress",
                            json!({"progressToken": token, "progress": i, "total": steps}),
                        );
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
                Ok(text(format!("{steps} steps")))
            }
            "sample" | "elicit" | "roots" => {
                let (method, asked) = question(name, &params);
                let answer = self.ask(method, asked).await?;
                Ok(answered(name, &answer))
            }
            "slow" => {
                let ms = arg("ms").as_u64().unwrap_or(1000);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
                loop {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        break;
                    }
                    if self.cancelled.lock().unwrap().contains(&id) {
                        return Err(ErrorObject::internal("cancelled"));
                    }
                    tokio::time::sleep((deadline - now).min(std::time::Duration::from_millis(10)))
                        .await;
                }
                Ok(text(format!("slept {ms} ms")))
            }
            "crash" => std::process::exit(3),
            // Hostile: progress for every token it can think of (others' leaked tokens from
            // FIXTURE_SPRAY_FROM, and the sequential ones of old), and 20 log messages.
            "spray" => {
                let mut tokens: Vec<String> = (0..1000).map(|i| format!("mcpd-{i}")).collect();
                if let Ok(path) = std::env::var("FIXTURE_SPRAY_FROM") {
                    tokens.extend(
                        std::fs::read_to_string(path)
                            .unwrap_or_default()
                            .lines()
                            .map(str::to_string),
                    );
                }
                for t in &tokens {
                    self.notify("notifications/progress", json!({"progressToken": t, "progress": 99, "total": 100, "message": "sprayed"}));
                }
                for i in 0..20 {
                    self.notify("notifications/message", json!({"level": "error", "logger": "spray", "data": format!("sprayed log {i}")}));
                }
                Ok(text(format!("sprayed {} tokens", tokens.len())))
            }
            // Hostile: one line of `mib` MiB that never ends, then silence.
            "flood" => {
                let mib = arg("mib").as_u64().unwrap_or(200) as usize;
                let _ = tokio::task::spawn_blocking(move || {
                    let chunk = vec![b'x'; 1 << 20];
                    let mut out = std::io::stdout().lock();
                    for _ in 0..mib {
                        if out.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    let _ = out.flush();
                })
                .await;
                std::future::pending::<()>().await;
                unreachable!()
            }
            "add_tool" => {
                let name = arg("name").as_str().unwrap_or("added").to_string();
                self.extra_tools.lock().unwrap().push(name.clone());
                if self.modern_only {
                    let listeners = self.listeners.lock().unwrap().clone();
                    for id in listeners {
                        self.notify(
                            "notifications/tools/list_changed",
                            json!({"_meta": {"io.modelcontextprotocol/subscriptionId": id}}),
                        );
                    }
                } else {
                    self.notify("notifications/tools/list_changed", json!({}));
                }
                Ok(text(format!("added {name}")))
            }
            "forbid" => Ok(text("forbid ran".into())),
            other if self.extra_tools.lock().unwrap().iter().any(|t| t == other) => {
                Ok(text(format!("{other} ran")))
            }
            other => Err(ErrorObject::invalid_params(format!(
                "Unknown tool: {other}"
            ))),
        }
    }

    /// A 2026-07-28 server: no `initialize`; `server/discover`; `subscriptions/listen`; a tool
    /// that needs the client answers `input_required` and finishes on the retry.
    async fn handle_modern(
        self: Arc<Self>,
        r: Request,
        params: Value,
    ) -> Result<Value, ErrorObject> {
        let version = params.pointer("/_meta/io.modelcontextprotocol~1protocolVersion");
        match r.method.as_str() {
            "initialize" => {
                return Err(ErrorObject::new(
                    -32601,
                    "Method not found: initialize (this server speaks 2026-07-28 only)",
                ));
            }
            "server/discover" => {
                return Ok(json!({
                    "resultType": "complete",
                    "supportedVersions": ["2026-07-28"],
                    "capabilities": {"tools": {"listChanged": true}, "resources": {}, "prompts": {}},
                    "instructions": format!("{} is a 2026 test fixture.", self.name),
                    "ttlMs": 0, "cacheScope": "public",
                    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": self.name, "version": "1.0.0"}},
                }));
            }
            _ if version.and_then(Value::as_str) != Some("2026-07-28") => {
                return Err(ErrorObject::new(-32022, "Unsupported protocol version")
                    .with_data(json!({"supported": ["2026-07-28"], "requested": version})));
            }
            "subscriptions/listen" => {
                self.listeners.lock().unwrap().push(r.id.clone());
                self.notify(
                    "notifications/subscriptions/acknowledged",
                    json!({"_meta": {"io.modelcontextprotocol/subscriptionId": r.id},
                        "notifications": {"toolsListChanged": true}}),
                );
                // Open until the client cancels it (or the connection ends).
                return std::future::pending().await;
            }
            "tools/call" => {
                let name = params["name"].as_str().unwrap_or_default();
                if matches!(name, "sample" | "elicit" | "roots") {
                    let Some(answer) = params.pointer("/inputResponses/q") else {
                        let (method, asked) = question(name, &params);
                        return Ok(json!({
                            "resultType": "input_required",
                            "inputRequests": {"q": {"method": method, "params": asked}},
                            "requestState": STATE,
                        }));
                    };
                    if params["requestState"] != STATE {
                        return Err(ErrorObject::invalid_params("requestState is not ours"));
                    }
                    return Ok(answered(name, answer));
                }
            }
            _ => {}
        }
        self.handle_legacy(r, params).await
    }

    async fn handle(self: Arc<Self>, r: Request) -> Result<Value, ErrorObject> {
        let params: Value = r
            .params
            .as_ref()
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or(json!({}));
        if let Some(state) = &self.conformance {
            return conformance::handle(&self, state, &r.method, params).await;
        }
        if self.modern_only {
            return self.handle_modern(r, params).await;
        }
        self.handle_legacy(r, params).await
    }

    async fn handle_legacy(
        self: Arc<Self>,
        r: Request,
        params: Value,
    ) -> Result<Value, ErrorObject> {
        match r.method.as_str() {
            "initialize" => Ok(json!({
                "protocolVersion": params["protocolVersion"].as_str().unwrap_or("2025-11-25"),
                "capabilities": {"tools": {"listChanged": true}, "prompts": {}, "resources": {"subscribe": true}, "logging": {}, "completions": {}},
                "serverInfo": {"name": self.name, "version": "1.0.0"},
                "instructions": format!("{} is a test fixture.", self.name),
            })),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({"tools": self.tools()})),
            "tools/call" => self.call(r.id, params).await,
            "prompts/list" => Ok(
                json!({"prompts": [{"name": "greet", "arguments": [{"name": "name", "required": true}]}]}),
            ),
            "prompts/get" => Ok(
                json!({"messages": [{"role": "user", "content": {"type": "text",
                "text": format!("Hello {} from {}", params.pointer("/arguments/name").and_then(Value::as_str).unwrap_or("?"), self.name)}}]}),
            ),
            "completion/complete" => {
                Ok(json!({"completion": {"values": ["Ada", "Alan"], "hasMore": false}}))
            }
            "resources/list" => Ok(
                json!({"resources": [{"uri": "fixture://static", "name": "static", "mimeType": "text/plain"}]}),
            ),
            "resources/templates/list" => Ok(
                json!({"resourceTemplates": [{"uriTemplate": "fixture://items/{id}", "name": "item"}]}),
            ),
            "resources/read" => {
                let uri = params["uri"].as_str().unwrap_or_default();
                if uri == "fixture://static" || uri.starts_with("fixture://items/") {
                    Ok(
                        json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": format!("content of {uri}")}]}),
                    )
                } else {
                    Err(ErrorObject::new(-32002, "Resource not found"))
                }
            }
            "resources/subscribe" => {
                let uri = params["uri"].clone();
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    me.notify("notifications/resources/updated", json!({"uri": uri}));
                });
                Ok(json!({}))
            }
            "logging/setLevel" => {
                let level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .unwrap_or("info");
                *self.log_level.lock().unwrap() =
                    LEVELS.iter().position(|l| *l == level).unwrap_or(0);
                Ok(json!({}))
            }
            "resources/unsubscribe" => Ok(json!({})),
            other => Err(ErrorObject::method_not_found(other)),
        }
    }
}

/// With `FIXTURE_HEADERS_LOG=FILE`, appends a JSON line per request with its `authorization`
/// and `traceparent` headers to FILE: the tests check what reaches an upstream.
fn record_headers(headers: &axum::http::HeaderMap) {
    let Ok(path) = std::env::var("FIXTURE_HEADERS_LOG") else {
        return;
    };
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let line = json!({"authorization": get("authorization"), "traceparent": get("traceparent")});
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Streamable HTTP, stateful as the official SDKs' servers are: `initialize` opens a session
/// (`Mcp-Session-Id`), later requests must carry it (404 otherwise), and each request is
/// answered as a one-event SSE stream when the client accepts one (`--json`: as JSON), on
/// sockets with TCP_NODELAY. No server-initiated requests.
async fn serve_http(addr: &str, json_only: bool) {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::serve::ListenerExt;
    let (out, _rx) = mpsc::unbounded_channel::<Message>();
    let server = Arc::new(Server {
        out,
        waiters: Arc::default(),
        next_id: AtomicI64::new(1),
        extra_tools: Mutex::new(extra_tools()),
        cancelled: Mutex::default(),
        name: std::env::var("FIXTURE_NAME").unwrap_or_else(|_| "fixture".into()),
        log_level: Mutex::new(0),
        conformance: conformance_mode(),
        modern_only: std::env::var("FIXTURE_MODERN_ONLY").as_deref() == Ok("1"),
        listeners: Mutex::default(),
    });
    let sessions: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let next_session = Arc::new(AtomicI64::new(1));
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let server = server.clone();
                let sessions = sessions.clone();
                let next_session = next_session.clone();
                async move {
                    record_headers(&headers);
                    let message = match Message::parse(&body) {
                        Ok(m) => m,
                        Err(e) => {
                            let body = Message::Response(Response::err(e.id, e.error)).to_json();
                            return (StatusCode::BAD_REQUEST, body).into_response();
                        }
                    };
                    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
                    let new_session = match (&message, session) {
                        (Message::Request(r), None) if r.method == "initialize" => {
                            let id = format!("fx-{}", next_session.fetch_add(1, Ordering::Relaxed));
                            sessions.lock().unwrap().insert(id.clone());
                            Some(id)
                        }
                        (_, Some(id)) if sessions.lock().unwrap().contains(id) => None,
                        _ => return (StatusCode::NOT_FOUND, "unknown session").into_response(),
                    };
                    let Message::Request(r) = message else {
                        return StatusCode::ACCEPTED.into_response();
                    };
                    let id = r.id.clone();
                    let outcome = server.handle(r).await.map(|v| raw(&v));
                    let text = Message::Response(Response { id, outcome }).to_json();
                    let sse = !json_only
                        && headers
                            .get(header::ACCEPT)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.contains("text/event-stream"));
                    let mut response = if sse {
                        (
                            [(header::CONTENT_TYPE, "text/event-stream")],
                            format!("event: message\ndata: {text}\n\n"),
                        )
                            .into_response()
                    } else {
                        ([(header::CONTENT_TYPE, "application/json")], text).into_response()
                    };
                    if let Some(v) = new_session.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        response.headers_mut().insert("mcp-session-id", v);
                    }
                    response
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    println!(
        "listening on http://{}/mcp",
        listener.local_addr().expect("bound")
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serve");
}

fn conformance_mode() -> Option<conformance::State> {
    (std::env::var("FIXTURE_CONFORMANCE").as_deref() == Ok("1")).then(conformance::State::default)
}

/// `FIXTURE_EXTRA_TOOLS=N` adds N tools `tool_1` … `tool_N` (catalog-size benchmarks).
fn extra_tools() -> Vec<String> {
    let n: usize = std::env::var("FIXTURE_EXTRA_TOOLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (1..=n).map(|i| format!("tool_{i}")).collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--http") {
        let addr = args.get(i + 1).map_or("127.0.0.1:0", String::as_str);
        return serve_http(addr, args.iter().any(|a| a == "--json")).await;
    }
    let (out, mut rx) = mpsc::unbounded_channel::<Message>();
    let server = Arc::new(Server {
        out,
        waiters: Arc::default(),
        next_id: AtomicI64::new(1),
        extra_tools: Mutex::new(extra_tools()),
        cancelled: Mutex::default(),
        name: std::env::var("FIXTURE_NAME").unwrap_or_else(|_| "fixture".into()),
        log_level: Mutex::new(0),
        conformance: conformance_mode(),
        modern_only: std::env::var("FIXTURE_MODERN_ONLY").as_deref() == Ok("1"),
        listeners: Mutex::default(),
    });
    tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(m) = rx.recv().await {
            let mut line = m.to_json();
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            let _ = stdout.flush().await;
        }
    });
    // FIXTURE_GRANDCHILD=FILE: a process of our own (as `npx` starts `node`), its pid in FILE.
    if let Ok(path) = std::env::var("FIXTURE_GRANDCHILD")
        && let Ok(child) = std::process::Command::new("sleep").arg("600").spawn()
    {
        let _ = std::fs::write(path, child.id().to_string());
    }
    eprintln!(
        "fixture server {} started (pid {})",
        server.name,
        std::process::id()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match Message::parse(line.as_bytes()) {
            Ok(Message::Request(r)) => {
                let s = server.clone();
                tokio::spawn(async move {
                    let id = r.id.clone();
                    let outcome = s.clone().handle(r).await.map(|v| raw(&v));
                    s.send(Response { id, outcome }.into());
                });
            }
            Ok(Message::Response(r)) => {
                if let Some(w) = server.waiters.lock().unwrap().remove(&r.id.to_string()) {
                    let _ = w.send(
                        r.outcome
                            .map(|v| serde_json::from_str(v.get()).unwrap_or(Value::Null)),
                    );
                }
            }
            Ok(Message::Notification(n)) if n.method == "notifications/cancelled" => {
                let params: Value = n
                    .params
                    .as_ref()
                    .and_then(|p| serde_json::from_str(p.get()).ok())
                    .unwrap_or_default();
                eprintln!("fixture: request {} cancelled", params["requestId"]);
                // A cancelled subscriptions/listen hears nothing more.
                server
                    .listeners
                    .lock()
                    .unwrap()
                    .retain(|id| *id != params["requestId"]);
                server
                    .cancelled
                    .lock()
                    .unwrap()
                    .push(params["requestId"].clone());
            }
            Ok(_) => {}
            Err(e) => server.send(Response::err(e.id, e.error).into()),
        }
    }
}
