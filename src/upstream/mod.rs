//! Connections to upstream MCP servers.
//!
//! A transport (`stdio`, `http`, `sse`) moves [`Message`]s; [`Connection`] adds what every
//! transport shares: the director's own request ids, the table of requests in flight (each
//! failed at once when the transport closes), and the `initialize` handshake. [`pool`]
//! supervises one connection per server and keeps its catalog.

pub mod http;
mod listen;
pub mod pool;
pub mod sse;
pub mod stdio;

use crate::jsonrpc::{ErrorObject, Id, Message, Notification, Request, Response, raw};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The longest a notification or an answer to the server may take to be written.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Protocol versions the director speaks to upstreams, newest first.
pub const UPSTREAM_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// What a server sends that is not a response: routed by the pool to sessions. `related` is
/// our id of the request whose answer stream carried it (Streamable HTTP), which says whose it
/// is.
#[derive(Debug)]
pub enum Event {
    Notification(Notification, Option<i64>),
    Request(Request, Option<i64>),
}

/// A message from the server, and the request of ours whose answer stream carried it.
#[derive(Debug)]
pub struct Inbound {
    pub message: Message,
    pub related: Option<i64>,
}

impl From<Message> for Inbound {
    fn from(message: Message) -> Self {
        Self {
            message,
            related: None,
        }
    }
}

/// Handles a server notification inside the connection's dispatcher, before any later message
/// is looked at; returns whether it did. Progress goes this way so it can never be overtaken by
/// the response it precedes.
/// It is given the id of the connection the notification came from, and the request of ours
/// whose answer stream carried it.
pub type Hook = Arc<dyn Fn(u64, Option<i64>, &Notification) -> bool + Send + Sync>;

/// What sending one message came to.
pub enum Sent {
    /// Written (stdio), or taken by the server (HTTP); any answer comes through `inbound`.
    Written,
    /// The answer came back with the sending itself (an HTTP JSON body, or the first event of
    /// the answer stream), in the caller's task.
    Answered(Message),
    /// The transport is gone.
    Closed,
}

/// Sends one message in the caller's task, so messages reach the server in the order they are
/// sent (a notification is delivered before whatever follows it) with no hop through another
/// task.
pub type Writer = Arc<dyn Fn(Message) -> futures::future::BoxFuture<'static, Sent> + Send + Sync>;

/// The two ends a transport gives a connection.
pub struct Pipe {
    pub writer: Writer,
    /// Messages from the server; `None` when the transport has closed.
    pub inbound: mpsc::Receiver<Inbound>,
    /// The child's pid (stdio).
    pub pid: Option<u32>,
    /// Ends the transport (kills a child's process group, drops HTTP streams).
    pub shutdown: Box<dyn FnOnce() + Send>,
}

type Outcome = Result<Box<RawValue>, ErrorObject>;
type Pending = HashMap<i64, oneshot::Sender<Outcome>>;
/// The answer to a registered request, when it comes.
pub type Answer = oneshot::Receiver<Outcome>;

/// A server's configured HTTP headers (credentials among them: marked sensitive, so they are
/// never printed).
pub fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<reqwest::header::HeaderMap, String> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("header {k}: {e}"))?;
        let mut value =
            reqwest::header::HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// What `server/discover` or `initialize` told us about the server.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub protocol_version: String,
    pub server_info: serde_json::Map<String, Value>,
    pub capabilities: serde_json::Map<String, Value>,
    pub instructions: Option<String>,
    /// It speaks 2026-07-28: stateless requests, each with its version and capabilities in
    /// `_meta`; no session, no requests to us (it asks through `InputRequiredResult`).
    pub modern: bool,
}

impl ServerInfo {
    /// What a server says of itself in its `initialize` (or `server/discover`) result.
    fn of(result: &Value, protocol_version: String, who: Option<&Value>, modern: bool) -> Self {
        let object = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
        Self {
            protocol_version,
            server_info: object(who),
            capabilities: object(result.get("capabilities")),
            instructions: result["instructions"].as_str().map(str::to_string),
            modern,
        }
    }

    /// How the director speaks to the server, for status reports.
    pub fn era(&self) -> mcp_director_api::models::ProtocolEra {
        match self.modern {
            true => mcp_director_api::models::ProtocolEra::Modern,
            false => mcp_director_api::models::ProtocolEra::Legacy,
        }
    }
}

/// The revision the director speaks to servers that have it.
pub const MODERN: &str = "2026-07-28";

/// How long a server may take to answer the `server/discover` probe before it is taken for a
/// 2025-era server (some of those say nothing to a request before `initialize`).
const PROBE: Duration = Duration::from_secs(3);

/// `params` with the `_meta` a 2026 request needs (version, the client's capabilities, who
/// the client is) added to what is there; what is there already (a progress token, a log
/// level, capabilities a caller chose) stays.
pub fn with_modern_meta(params: Option<&RawValue>, capabilities: &Value) -> Box<RawValue> {
    let who = json!({"name": "mcp-director", "version": env!("CARGO_PKG_VERSION")});
    crate::jsonrpc::with_meta(
        params,
        [
            ("io.modelcontextprotocol/protocolVersion", json!(MODERN)),
            (
                "io.modelcontextprotocol/clientCapabilities",
                capabilities.clone(),
            ),
            ("io.modelcontextprotocol/clientInfo", who),
        ],
        true,
    )
}

/// One live, initialized connection to an upstream server.
/// Connection ids, unique in the process.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

pub struct Connection {
    /// Unique in the process: what upstream traffic is attributed by.
    pub id: u64,
    server: String,
    writer: Writer,
    /// A write found the transport gone.
    broken: std::sync::atomic::AtomicBool,
    pending: std::sync::Arc<Mutex<Option<Pending>>>,
    next_id: AtomicI64,
    pub pid: Option<u32>,
    pub info: ServerInfo,
    shutdown: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// A 2026 server's listen stream: what it is asked for.
    listening: std::sync::OnceLock<std::sync::Arc<listen::Listening>>,
}

impl Connection {
    /// Takes over `pipe`, runs `initialize`, and returns the connection plus the stream of
    /// server notifications and requests (which ends when the transport closes).
    pub async fn start(
        server: &str,
        pipe: Pipe,
        timeout: Duration,
        hook: Option<Hook>,
    ) -> Result<(std::sync::Arc<Connection>, mpsc::Receiver<Event>), String> {
        let Pipe {
            writer,
            mut inbound,
            pid,
            shutdown,
        } = pipe;
        let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        let pending = std::sync::Arc::new(Mutex::new(Some(Pending::new())));
        let (events_tx, events) = mpsc::channel(256);
        let dispatch_pending = pending.clone();
        let name = server.to_string();
        tokio::spawn(async move {
            while let Some(Inbound { message, related }) = inbound.recv().await {
                match message {
                    Message::Response(r) => {
                        let waiter = r.id.as_i64().and_then(|id| {
                            dispatch_pending
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .as_mut()
                                .and_then(|p| p.remove(&id))
                        });
                        match waiter {
                            Some(w) => {
                                let _ = w.send(r.outcome);
                            }
                            None => {
                                tracing::debug!(server = %name, id = %r.id, "response to no pending request")
                            }
                        }
                    }
                    Message::Notification(n) => {
                        if !hook.as_ref().is_some_and(|h| h(id, related, &n)) {
                            let _ = events_tx.send(Event::Notification(n, related)).await;
                        }
                    }
                    Message::Request(r) => {
                        let _ = events_tx.send(Event::Request(r, related)).await;
                    }
                }
            }
            // Closed: every request still waiting fails now, never hangs.
            let waiting = dispatch_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            for (_, w) in waiting.into_iter().flatten() {
                let _ = w.send(Err(ErrorObject::internal(format!(
                    "upstream server '{name}' closed the connection"
                ))));
            }
        });
        let mut conn = Connection {
            id,
            server: server.to_string(),
            writer,
            broken: Default::default(),
            pending,
            next_id: AtomicI64::new(1),
            pid,
            info: ServerInfo::default(),
            shutdown: Mutex::new(Some(shutdown)),
            listening: Default::default(),
        };
        // A 2026 server answers the probe (or says, with an error of its revision, which
        // versions it has); anything else is a 2025-era server, opened with `initialize`.
        let probe = Some(with_modern_meta(None, &json!({})));
        let discovered = conn
            .request("server/discover", probe, PROBE.min(timeout))
            .await;
        let modern = match &discovered {
            Ok(result) => serde_json::from_str::<Value>(result.get())
                .ok()
                .filter(|r| {
                    r["supportedVersions"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|v| v == MODERN))
                }),
            Err(e) if e.code == -32022 => {
                tracing::warn!(server = %server, error = %e, "the server has no revision the director speaks statelessly");
                None
            }
            Err(_) => None,
        };
        if let Some(result) = modern {
            let who = result.pointer("/_meta/io.modelcontextprotocol~1serverInfo");
            conn.info = ServerInfo::of(&result, MODERN.to_string(), who, true);
            let conn = std::sync::Arc::new(conn);
            listen::spawn(&conn);
            return Ok((conn, events));
        }
        let init = json!({
            "protocolVersion": UPSTREAM_VERSIONS[0],
            "capabilities": {
                "roots": {"listChanged": true},
                "sampling": {},
                "elicitation": {"form": {}, "url": {}},
            },
            "clientInfo": {"name": "mcp-director", "version": env!("CARGO_PKG_VERSION")},
        });
        let result = conn
            .request("initialize", Some(raw(&init)), timeout)
            .await
            .map_err(|e| format!("initialize failed: {}", e.message))?;
        let result: Value = serde_json::from_str(result.get()).map_err(|e| e.to_string())?;
        let version = result["protocolVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !UPSTREAM_VERSIONS.contains(&version.as_str()) {
            conn.close();
            return Err(format!(
                "server answered unsupported protocol version {version:?}"
            ));
        }
        conn.info = ServerInfo::of(&result, version, result.get("serverInfo"), false);
        conn.notify("notifications/initialized", None).await;
        Ok((std::sync::Arc::new(conn), events))
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends a request with a fresh id of ours and waits for its answer (or the timeout, or
    /// the connection closing: an error either way, never a hang).
    pub async fn request(
        &self,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Duration,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let (id, rx) = self.register()?;
        self.send_request(id, method, params, rx, timeout).await
    }

    /// Subscribes to (or, `on` false, unsubscribes from) a resource's updates: a 2025 server
    /// is asked with `resources/subscribe`, a 2026 one's listen stream names the resource.
    pub async fn subscribe_resource(
        &self,
        uri: &str,
        on: bool,
        timeout: Duration,
    ) -> Result<(), ErrorObject> {
        if let Some(listening) = self.listening.get() {
            listening.resource(uri, on);
            return Ok(());
        }
        let method = match on {
            true => "resources/subscribe",
            false => "resources/unsubscribe",
        };
        self.request(method, Some(raw(&json!({ "uri": uri }))), timeout)
            .await
            .map(|_| ())
    }

    /// Reserves an id (so a caller can map it, e.g. for cancellation) before sending.
    pub fn register(&self) -> Result<(i64, Answer), ErrorObject> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(p) => {
                p.insert(id, tx);
            }
            None => return Err(self.closed_error()),
        }
        Ok((id, rx))
    }

    pub async fn send_request(
        &self,
        id: i64,
        method: &str,
        params: Option<Box<RawValue>>,
        rx: Answer,
        timeout: Duration,
    ) -> Result<Box<RawValue>, ErrorObject> {
        // Every request to a 2026 server says its revision (callers may have put the client's
        // capabilities there already).
        let params = match self.info.modern {
            true => Some(with_modern_meta(params.as_deref(), &json!({}))),
            false => params,
        };
        let request = Message::Request(Request {
            id: Id::from(id),
            method: method.to_string(),
            params,
        });
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = async || {
            self.forget(id);
            let cancel = json!({"requestId": id, "reason": "timed out in mcp-director"});
            self.notify("notifications/cancelled", Some(raw(&cancel)))
                .await;
            Err(ErrorObject::internal(format!(
                "upstream server '{}' did not answer {method} within {} ms",
                self.server,
                timeout.as_millis()
            )))
        };
        match tokio::time::timeout_at(deadline, self.write(request)).await {
            Ok(Sent::Answered(Message::Response(r))) if r.id.as_i64() == Some(id) => {
                self.forget(id);
                return r.outcome;
            }
            Ok(Sent::Answered(other)) => {
                tracing::debug!(server = %self.server, ?other, "unexpected answer")
            }
            Ok(Sent::Written) => {}
            Ok(Sent::Closed) => {
                self.forget(id);
                return Err(self.closed_error());
            }
            Err(_) => return timed_out().await,
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => timed_out().await,
        }
    }

    /// Completes a request we stop waiting for (a cancel) with `error`.
    pub fn fail(&self, id: i64, error: ErrorObject) {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|p| p.remove(&id));
        if let Some(w) = waiter {
            let _ = w.send(Err(error));
        }
    }

    /// Drops a request we no longer wait for.
    pub fn forget(&self, id: i64) {
        if let Some(p) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            p.remove(&id);
        }
    }

    /// Writes a message; a transport found gone marks the connection closed.
    async fn write(&self, message: Message) -> Sent {
        let sent = (self.writer)(message).await;
        if let Sent::Closed = sent {
            self.broken
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        sent
    }

    /// Sends a notification. A server that stops reading cannot hold the caller beyond
    /// [`NOTIFY_TIMEOUT`].
    pub async fn notify(&self, method: &str, params: Option<Box<RawValue>>) {
        let message = Message::Notification(Notification {
            method: method.to_string(),
            params,
        });
        let _ = tokio::time::timeout(NOTIFY_TIMEOUT, self.write(message)).await;
    }

    /// Answers a request the server sent us.
    pub async fn respond(&self, response: Response) {
        let message = Message::Response(response);
        let _ = tokio::time::timeout(NOTIFY_TIMEOUT, self.write(message)).await;
    }

    pub fn is_open(&self) -> bool {
        !self.broken.load(std::sync::atomic::Ordering::Relaxed)
            && self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
    }

    fn closed_error(&self) -> ErrorObject {
        ErrorObject::internal(format!(
            "upstream server '{}' is not connected",
            self.server
        ))
    }

    /// Ends the transport (idempotent).
    pub fn close(&self) {
        if let Some(f) = self
            .shutdown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            f();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}
