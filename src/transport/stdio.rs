//! MCP over stdio for one client: newline-delimited JSON-RPC on stdin/stdout; logs go to
//! stderr. Each request is served concurrently, so a long tool call does not block a ping.
//! A client that never initializes and sends 2026-07-28 requests (`_meta` naming the
//! revision, or `server/discover`) is served statelessly, request by request, as over HTTP.

use crate::gateway::Gateway;
use crate::gateway::modern::{self, RequestMeta};
use crate::jsonrpc::{ErrorObject, Message, Notification, RATE_LIMITED, Request, Response};
use crate::profile::Scope;
use crate::rate_limit::RateLimits;
use crate::session::{Session, Sink, TransportKind};
use crate::transport::stateless::{self, Fresh, Retried, Serving, Step};
use crate::version::Version;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// How long the first request of a stdio client may wait for the servers to start.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one client, with the profile chosen at start, until its input ends.
pub async fn serve<R, W>(
    gateway: Arc<Gateway>,
    input: R,
    mut output: W,
    scope: Scope,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let session = Session::new(
        crate::session::new_id(),
        TransportKind::Stdio,
        scope.clone(),
    );
    // The client's open `subscriptions/listen` requests, by id: a cancel ends one.
    let listens: Listens = Arc::default();
    gateway.add_session(session.clone());
    let mut outbound = session.outbound.attach(None);
    let writer = tokio::spawn(async move {
        while let Some((_, message)) = outbound.recv().await {
            let mut line = message.to_json();
            line.push('\n');
            if output.write_all(line.as_bytes()).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    // The client was launched with us and asks at once: its first request waits for the
    // servers (bounded), so it sees their tools.
    gateway.started(STARTUP_WAIT).await;
    let limits = RateLimits::default();
    let max = gateway.settings().settings.limits.max_request_bytes;
    let mut lines = crate::ndjson::Lines::new(input, usize::try_from(max).unwrap_or(usize::MAX));
    loop {
        let line = match lines.next().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                // Past the limit the stream cannot be resynchronised: the client is told, and
                // the session ends.
                let error = ErrorObject::new(
                    crate::jsonrpc::INVALID_REQUEST,
                    format!("Invalid Request: {e} (settings.limits.max_request_bytes)"),
                );
                session
                    .outbound
                    .send(Response::err(serde_json::Value::Null, error).into());
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Message::parse(line) {
            Ok(message) => {
                if let Message::Request(r) = &message
                    && let Some(wait) = rate_limited(&gateway, &session, &limits)
                {
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    let error = ErrorObject::new(RATE_LIMITED, "Rate limit exceeded")
                        .with_data(serde_json::json!({ "retryAfterSecs": secs }));
                    session
                        .outbound
                        .send(Response::err(r.id.clone(), error).into());
                    continue;
                }
                if let Message::Request(r) = &message
                    && is_modern(&session, r)
                {
                    let stateless = stateless_request(
                        gateway.clone(),
                        session.clone(),
                        scope.clone(),
                        r.clone(),
                        listens.clone(),
                    );
                    tokio::spawn(stateless);
                    continue;
                }
                if let Message::Notification(n) = &message
                    && n.method == "notifications/cancelled"
                    && let Some(listen) = cancelled_listen(&listens, n)
                {
                    listen.abort();
                    continue;
                }
                let g = gateway.clone();
                let s = session.clone();
                tokio::spawn(async move {
                    let sink = Sink::new(s.clone());
                    if let Some(response) = g.handle(&s, message, sink).await {
                        s.outbound.send(response.into());
                    }
                });
            }
            Err(e) => session.outbound.send(Response::err(e.id, e.error).into()),
        }
    }
    for (_, listen) in lock(&listens).drain() {
        listen.abort();
    }
    // Ending the session closes its stream: the writer sends what is queued, then stops.
    gateway.remove_session(&session.id).await;
    if tokio::time::timeout(std::time::Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        tracing::debug!("stdout not drained in time");
    }
    Ok(())
}

/// Takes one request from the client's bucket (its profile's rate limit, else
/// `settings.rate_limit`); the wait when it is empty.
fn rate_limited(
    gateway: &Gateway,
    session: &Session,
    limits: &RateLimits,
) -> Option<std::time::Duration> {
    let config = gateway.settings();
    let quota = session
        .profile
        .as_ref()
        .and_then(|p| config.profiles.get(p))
        .and_then(|p| p.rate_limit.as_ref())
        .unwrap_or(&config.settings.rate_limit);
    limits.check_here("stdio", quota).err()
}

type Listens = Arc<Mutex<HashMap<String, tokio::task::AbortHandle>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `r` is a 2026 request: the client has not initialized a session, and the request
/// names the revision in `_meta` (or discovers what is served).
fn is_modern(session: &Session, r: &Request) -> bool {
    !session.negotiated().initialized
        && r.method != "initialize"
        && (r.method == "server/discover"
            || RequestMeta::of(r.params.as_deref()).1.version.is_some())
}

/// The listen a `notifications/cancelled` ends, if it names one.
fn cancelled_listen(listens: &Listens, n: &Notification) -> Option<tokio::task::AbortHandle> {
    let id: Value = n
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())?
        .get("requestId")?
        .clone();
    lock(listens).remove(&id.to_string())
}

/// Serves one 2026 request: what it causes, then its response (or the `InputRequiredResult`
/// of a parked call), as lines on the client's stdout; a listen until it is cancelled.
async fn stateless_request(
    g: Arc<Gateway>,
    client: Arc<Session>,
    scope: Scope,
    r: Request,
    listens: Listens,
) {
    let say = |m: Message| client.outbound.send(m);
    let refuse = |e: ErrorObject| client.outbound.send(Response::err(r.id.clone(), e).into());
    let (_, meta) = RequestMeta::of(r.params.as_deref());
    match meta.version() {
        Some(v) if !Version::parse(v).is_some_and(|v| modern::STATELESS_VERSIONS.contains(&v)) => {
            return refuse(modern::unsupported_version(v));
        }
        _ => {}
    }
    let log_level = match modern::log_level(&meta) {
        Ok(level) => level,
        Err(e) => return refuse(e),
    };
    let principal = scope
        .principal
        .clone()
        .unwrap_or_else(|| "anonymous".into());
    let fresh = Fresh {
        scope,
        capabilities: meta.capabilities.clone().unwrap_or_else(|| json!({})),
        log_level,
    };
    let r = match stateless::retry_of(&r) {
        Err(e) => return refuse(e),
        Ok(None) => r,
        Ok(Some(retry)) => match stateless::resume(&g, r.clone(), retry, &principal).await {
            Err(e) => return refuse(e),
            Ok(Retried::Resumed(serving)) => return drive(serving, say).await,
            Ok(Retried::Anew(r)) => r,
        },
    };
    let (session, guard) = stateless::open(&g, fresh);
    if r.method == "subscriptions/listen" {
        let mut messages = Box::pin(crate::transport::listen::listen(&g, &session, &r).await);
        let key = r.id.to_string();
        let out = client.clone();
        let forward = tokio::spawn(async move {
            let _held = (guard, session);
            while let Some(m) = messages.next().await {
                out.outbound.send(m);
            }
        });
        lock(&listens).insert(key, forward.abort_handle());
        return;
    }
    drive(stateless::serve(&g, session, r, guard), say).await;
}

/// Tells the client everything a 2026 call says, its final message last.
async fn drive(mut serving: Serving, say: impl Fn(Message)) {
    loop {
        match serving.step().await {
            Step::Say(m) => say(m),
            Step::Final(m) => return say(m),
        }
    }
}
