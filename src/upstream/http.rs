//! Streamable HTTP upstreams (MCP 2025-03-26 and later): each message is a POST; answers come
//! back as JSON or as an SSE stream; a GET stream carries what the server sends on its own.

use super::{Pipe, Sent};
use crate::jsonrpc::{ErrorObject, Message, Response};
use crate::net::{Body, HyperClient};
use crate::sse;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http_body_util::BodyExt;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Default)]
struct Session {
    id: Option<String>,
    version: Option<String>,
}

pub fn connect(
    server: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    http: HyperClient,
    max_message: usize,
) -> Result<Pipe, String> {
    let url: Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let base = super::header_map(headers)?;
    let (inbound_tx, inbound) = mpsc::channel::<super::Inbound>(256);
    // Everything the server sends passes through one relay task, so that a dead server (its
    // session gone, or unreachable) can close `inbound` at once: the connection then fails its
    // waiting requests and the supervisor reconnects.
    let (from_server, mut relay_rx) = mpsc::channel::<super::Inbound>(256);
    let dead = Arc::new(tokio::sync::Notify::new());
    let relay_dead = dead.clone();
    let relay = tokio::spawn(async move {
        loop {
            tokio::select! {
                m = relay_rx.recv() => match m {
                    Some(m) => if inbound_tx.send(m).await.is_err() { break },
                    None => break,
                },
                _ = relay_dead.notified() => break,
            }
        }
    });
    let link = Arc::new(Link {
        server: server.to_string(),
        http,
        url,
        base,
        session: Mutex::default(),
        max_message,
        inbound: from_server,
        dead,
        get_stream: Mutex::new(None),
    });
    let writer_link = link.clone();
    let writer: super::Writer = Arc::new(move |m| {
        let link = writer_link.clone();
        Box::pin(async move {
            // The GET stream opens once the session is initialized.
            let opens_stream =
                matches!(&m, Message::Notification(n) if n.method == "notifications/initialized");
            let answer = post(&link, m).await;
            if opens_stream {
                let stream = tokio::spawn(get_stream(link.clone()));
                *link.get_stream.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
            }
            match answer {
                Some(m) => Sent::Answered(m),
                None => Sent::Written,
            }
        })
    });
    Ok(Pipe {
        writer,
        inbound,
        pid: None,
        shutdown: Box::new(move || {
            relay.abort();
            if let Some(stream) = link
                .get_stream
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                stream.abort();
            }
            // Best effort: tell the server the session is over.
            if link.session().id.is_some()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let request = link.request(Method::DELETE, Bytes::new());
                let http = link.http.clone();
                runtime.spawn(async move {
                    let _ = http.request(request).await;
                });
            }
        }),
    })
}

/// One connection's shared state, used by every POST and the GET stream.
struct Link {
    server: String,
    http: HyperClient,
    url: Uri,
    /// The server's configured headers.
    base: HeaderMap,
    session: Mutex<Session>,
    /// The largest message the server may send.
    max_message: usize,
    /// Into the relay (see `connect`).
    inbound: mpsc::Sender<super::Inbound>,
    /// Closes the connection.
    dead: Arc<tokio::sync::Notify>,
    get_stream: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Link {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured headers plus the session's id and protocol version.
    fn headers(&self) -> HeaderMap {
        let mut h = self.base.clone();
        let s = self.session();
        if let Some(id) = s.id.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert("mcp-session-id", id);
        }
        if let Some(v) = s
            .version
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            h.insert("mcp-protocol-version", v);
        }
        h
    }

    /// A request to the server's endpoint with the connection's headers.
    fn request(&self, method: Method, body: Bytes) -> Request<Body> {
        let mut request = Request::new(Body::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = self.url.clone();
        *request.headers_mut() = self.headers();
        request
    }
}

/// POSTs one message. A JSON answer is returned to the caller; an SSE answer (and any error,
/// as an error response for the request) goes into the connection's inbound stream.
async fn post(link: &Link, message: Message) -> Option<Message> {
    let server = &link.server;
    let inbound = &link.inbound;
    let request_id = match &message {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    };
    let is_initialize = message.method() == Some("initialize");
    // What the answer stream carries belongs to this request.
    let related = request_id.as_ref().and_then(|id| id.as_i64());
    let on_stream = |message| super::Inbound { message, related };
    let fail = |why: String| {
        let inbound = inbound.clone();
        let id = request_id.clone();
        async move {
            if let Some(id) = id {
                let error = ErrorObject::internal(why);
                let message = Message::from(Response::err(id, error));
                let _ = inbound.send(message.into()).await;
            }
        }
    };
    let mut request = link.request(Method::POST, Bytes::from(message.to_json()));
    let headers = request.headers_mut();
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // A 2026 message is stateless: no session; its revision, method and name in headers.
    if let Some((version, method, name)) = modern_headers(&message) {
        headers.remove("mcp-session-id");
        for (header, value) in [
            ("mcp-protocol-version", Some(version)),
            ("mcp-method", Some(method)),
            ("mcp-name", name),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&header_safe(&v)).ok()) {
                headers.insert(header, v);
            }
        }
    }
    if let Some(traceparent) = crate::telemetry::outgoing_traceparent()
        && let Ok(v) = HeaderValue::from_str(&traceparent)
    {
        headers.insert("traceparent", v);
    }
    let response = match link.http.request(request).await {
        Ok(r) => r,
        Err(e) => {
            fail(format!("upstream server '{server}' unreachable: {e}")).await;
            if e.is_connect() {
                link.dead.notify_one();
            }
            return None;
        }
    };
    if is_initialize
        && let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        link.session().id = Some(id.to_string());
    }
    let status = response.status();
    if !status.is_success() {
        // The server forgot the session we hold (it restarted): 404 per the spec; some servers
        // (server-everything among them) answer 400 naming the session. Start over.
        let had_session = link.session().id.is_some();
        let body = http_body_util::Limited::new(response.into_body(), 64 << 10);
        let bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        };
        // A 2026 server answers its errors with a 4xx and the JSON-RPC error itself (-32021 and
        // the like): that is the answer, for the caller to see.
        if let Ok(Message::Response(r)) = Message::parse(&bytes)
            && request_id.as_ref() == Some(&r.id)
            && r.outcome.is_err()
        {
            return Some(Message::Response(r));
        }
        let body = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        let lost = status == StatusCode::NOT_FOUND
            || (status == StatusCode::BAD_REQUEST && body.contains("session"));
        fail(format!("upstream server '{server}' answered HTTP {status}")).await;
        if had_session && lost {
            tracing::warn!(server = %server, %status, "upstream lost our session; reconnecting");
            link.dead.notify_one();
        }
        return None;
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let deliver = |bytes: &[u8]| {
        let parsed = Message::parse(bytes);
        if is_initialize
            && let Ok(Message::Response(r)) = &parsed
            && let Ok(result) = &r.outcome
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(result.get())
            && let Some(version) = v["protocolVersion"].as_str()
        {
            link.session().version = Some(version.to_string());
        }
        parsed.ok()
    };
    if content_type.starts_with("text/event-stream") {
        let mut events = Box::pin(sse::events(
            response.into_body().into_data_stream(),
            link.max_message,
        ));
        let mut relayed = false;
        let mut answered = false;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    fail(format!("upstream server '{server}' sent too much: {e}")).await;
                    link.dead.notify_one();
                    return None;
                }
            };
            let Some(m) = deliver(event.data.as_bytes()) else {
                continue;
            };
            let ours = matches!(&m, Message::Response(r) if Some(&r.id) == request_id.as_ref());
            // The answer, first on its stream, goes straight back to the caller: nothing came
            // before it that it could overtake. Later on a stream it keeps its place.
            if ours && !relayed {
                // The stream's end usually arrived with it; read it so the connection is
                // reused. If not, the rest is drained in the background.
                let next = events.next().now_or_never();
                if !matches!(next, Some(None)) {
                    let inbound = inbound.clone();
                    let early = next.flatten();
                    tokio::spawn(async move {
                        let rest = futures::stream::iter(early).chain(events);
                        let mut rest = std::pin::pin!(rest);
                        while let Some(Ok(event)) = rest.next().await {
                            if let Ok(m) = Message::parse(event.data.as_bytes())
                                && inbound
                                    .send(super::Inbound {
                                        message: m,
                                        related,
                                    })
                                    .await
                                    .is_err()
                            {
                                return;
                            }
                        }
                    });
                }
                return Some(m);
            }
            answered |= ours;
            relayed = true;
            if inbound.send(on_stream(m)).await.is_err() {
                return None;
            }
        }
        // A stream that ends without the answer would leave the call waiting for nothing.
        if !answered {
            fail(format!(
                "upstream server '{server}' ended its answer stream without a response"
            ))
            .await;
        }
    } else if content_type.starts_with("application/json") {
        let body = http_body_util::Limited::new(response.into_body(), link.max_message);
        match body.collect().await {
            Ok(body) => {
                let body = body.to_bytes();
                if let Some(m) = deliver(&body) {
                    return Some(m);
                }
                // Some servers stream a JSON body as lines, notifications first: taken as
                // such, the last line the answer.
                let mut answer = None;
                for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    match deliver(line) {
                        Some(m @ Message::Response(_)) => answer = Some(m),
                        Some(m) => {
                            let _ = inbound.send(on_stream(m)).await;
                        }
                        None => {}
                    }
                }
                if answer.is_some() {
                    return answer;
                }
                fail(format!(
                    "upstream server '{server}' sent an invalid message"
                ))
                .await
            }
            Err(e) => {
                fail(format!("upstream server '{server}': {e}")).await;
                link.dead.notify_one();
            }
        }
    }
    None
}

/// What a 2026 request's headers mirror from its body: the revision in `_meta`, the method,
/// and the name it addresses (`name`, `uri` or `taskId`). `None` for any other message.
fn modern_headers(message: &Message) -> Option<(String, String, Option<String>)> {
    let Message::Request(r) = message else {
        return None;
    };
    let params: serde_json::Value = serde_json::from_str(r.params.as_deref()?.get()).ok()?;
    let version = params
        .pointer("/_meta/io.modelcontextprotocol~1protocolVersion")?
        .as_str()?
        .to_string();
    let field = match r.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    let name = field
        .and_then(|f| params.get(f))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    Some((version, r.method.clone(), name))
}

/// A header value as the transport spec has it: plain visible ASCII as is, anything else (or
/// with surrounding spaces) as `=?base64?…?=`.
fn header_safe(value: &str) -> String {
    let visible = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    let plain = visible && !padded && !looks_encoded;
    if plain {
        value.to_string()
    } else {
        use base64::Engine;
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// The server's own stream (notifications, requests: `list_changed` arrives here). Re-opened
/// with `Last-Event-ID` when the server or a proxy closes it; a non-2xx answer (405: the server
/// has none) ends it. The connection closing aborts it.
async fn get_stream(link: Arc<Link>) {
    let inbound = &link.inbound;
    let mut last_event_id: Option<String> = None;
    let mut pause = std::time::Duration::from_millis(500);
    loop {
        let mut request = link.request(Method::GET, Bytes::new());
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(v) = last_event_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert("last-event-id", v);
        }
        let response = match link.http.request(request).await {
            Ok(r) if r.status().is_success() => r,
            Ok(_) => return,
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
                continue;
            }
        };
        let mut events = std::pin::pin!(sse::events(
            response.into_body().into_data_stream(),
            link.max_message
        ));
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                tracing::warn!(server = %link.server, "upstream stream sent too much; reconnecting");
                link.dead.notify_one();
                return;
            };
            if event.id.is_some() {
                last_event_id = event.id.clone();
            }
            if let Ok(m) = Message::parse(event.data.as_bytes())
                && inbound.send(m.into()).await.is_err()
            {
                return;
            }
        }
        if inbound.is_closed() {
            return;
        }
        tokio::time::sleep(pause).await;
    }
}
