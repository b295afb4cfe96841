//! Streamable HTTP upstreams (MCP 2025-03-26 and later): each message is a POST; answers come
//! back as JSON or as an SSE stream; a GET stream carries what the server sends on its own.

use super::Pipe;
use crate::jsonrpc::{ErrorObject, Message, Response};
use crate::sse;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

#[derive(Default)]
struct Session {
    id: Option<String>,
    version: Option<String>,
}

pub fn connect(
    server: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    http: reqwest::Client,
) -> Result<Pipe, String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("bad url {url}: {e}"))?;
    let base = super::header_map(headers)?;
    let (outbound, mut to_server) = mpsc::channel::<Message>(256);
    let (inbound_tx, inbound) = mpsc::channel::<Message>(256);
    // Everything the server sends passes through one relay task, so that a dead server (its
    // session gone, or unreachable) can close `inbound` at once: the connection then fails its
    // waiting requests and the supervisor reconnects.
    let (from_server, mut relay_rx) = mpsc::channel::<Message>(256);
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
        inbound: from_server,
        dead,
    });
    let direct_link = link.clone();
    let direct: super::Direct = Arc::new(move |m| {
        let link = direct_link.clone();
        Box::pin(async move { post(&link, m).await })
    });
    let task = tokio::spawn(async move {
        let mut posts = JoinSet::new();
        let mut get_stream_opened = false;
        while let Some(message) = to_server.recv().await {
            // The GET stream opens once the session is initialized.
            if !get_stream_opened
                && matches!(&message, Message::Notification(n) if n.method == "notifications/initialized")
            {
                get_stream_opened = true;
                posts.spawn(get_stream(link.clone()));
            }
            let link = link.clone();
            posts.spawn(async move {
                if let Some(m) = post(&link, message).await {
                    let _ = link.inbound.send(m).await;
                }
            });
            while posts.try_join_next().is_some() {}
        }
        // Best effort: tell the server the session is over.
        let headers = link.headers();
        if headers.contains_key("mcp-session-id") {
            let _ = link
                .http
                .delete(link.url.clone())
                .headers(headers)
                .send()
                .await;
        }
        posts.abort_all();
    });
    Ok(Pipe {
        direct: Some(direct),
        outbound,
        inbound,
        pid: None,
        shutdown: Box::new(move || {
            task.abort();
            relay.abort();
        }),
    })
}

/// One connection's shared state, used by every POST and the GET stream.
struct Link {
    server: String,
    http: reqwest::Client,
    url: reqwest::Url,
    /// The server's configured headers.
    base: HeaderMap,
    session: Mutex<Session>,
    /// Into the relay (see `connect`).
    inbound: mpsc::Sender<Message>,
    /// Closes the connection.
    dead: Arc<tokio::sync::Notify>,
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
    let fail = |why: String| {
        let inbound = inbound.clone();
        let id = request_id.clone();
        async move {
            if let Some(id) = id {
                let error = ErrorObject::internal(why);
                let _ = inbound.send(Response::err(id, error).into()).await;
            }
        }
    };
    let mut request = link
        .http
        .post(link.url.clone())
        .headers(link.headers())
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json");
    if let Some(traceparent) = crate::telemetry::outgoing_traceparent() {
        request = request.header("traceparent", traceparent);
    }
    let response = request.body(message.to_json()).send().await;
    let response = match response {
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
        let body = response.text().await.unwrap_or_default();
        let lost = status == reqwest::StatusCode::NOT_FOUND
            || (status == reqwest::StatusCode::BAD_REQUEST
                && body.to_ascii_lowercase().contains("session"));
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
    let deliver = |text: &str| {
        let parsed = Message::parse(text.as_bytes());
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
        let mut events = std::pin::pin!(sse::events(response.bytes_stream()));
        while let Some(event) = events.next().await {
            if let Some(m) = deliver(&event.data)
                && inbound.send(m).await.is_err()
            {
                return None;
            }
        }
    } else if content_type.starts_with("application/json") {
        match response.bytes().await {
            Ok(body) => match deliver(&String::from_utf8_lossy(&body)) {
                Some(m) => return Some(m),
                None => {
                    fail(format!(
                        "upstream server '{server}' sent an invalid message"
                    ))
                    .await
                }
            },
            Err(e) => fail(format!("upstream server '{server}': {e}")).await,
        }
    }
    None
}

/// The server's own stream (notifications, requests: `list_changed` arrives here). Re-opened
/// with `Last-Event-ID` when the server or a proxy closes it; a non-2xx answer (405: the server
/// has none) ends it. The connection closing aborts it.
async fn get_stream(link: Arc<Link>) {
    let inbound = &link.inbound;
    let mut last_event_id: Option<String> = None;
    let mut pause = std::time::Duration::from_millis(500);
    loop {
        let mut request = link
            .http
            .get(link.url.clone())
            .headers(link.headers())
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = &last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = match request.send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(_) => return,
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
                continue;
            }
        };
        let mut events = std::pin::pin!(sse::events(response.bytes_stream()));
        while let Some(event) = events.next().await {
            if event.id.is_some() {
                last_event_id = event.id.clone();
            }
            if let Ok(m) = Message::parse(event.data.as_bytes())
                && inbound.send(m).await.is_err()
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
