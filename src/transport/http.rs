//! MCP over HTTP: Streamable HTTP on `/mcp` (POST, GET, DELETE) and the legacy HTTP+SSE
//! transport (`GET /sse`, then `POST /mcp?sessionId=`).

use crate::gateway::{Gateway, SUPPORTED_VERSIONS};
use crate::jsonrpc::{ErrorObject, INVALID_REQUEST, Message, Response as RpcResponse};
use crate::oauth;
use crate::profile::{self, Credential, Refusal, Scope};
use crate::server::AppState;
use crate::session::{RequestStream, Session, Sink, TransportKind};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Query parameters of `/mcp` and `/sse`: the legacy session, and the profile, project and
/// token that select a new session's view. Never logged.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct McpQuery {
    session_id: Option<String>,
    profile: Option<String>,
    project: Option<String>,
    token: Option<String>,
}

/// A new session's scope (profile, project, filter), or why it cannot have it.
fn choose_scope(state: &AppState, q: &McpQuery, credential: &Credential) -> Result<Scope, Refusal> {
    let config = state.config.effective();
    profile::scope(
        &config,
        q.profile.as_deref(),
        q.project.as_deref(),
        credential,
    )
}

/// The request's credential (see [`oauth::admit`]).
async fn admit(
    state: &AppState,
    endpoint: oauth::Endpoint,
    q: &McpQuery,
    headers: &HeaderMap,
) -> Result<Credential, Rejection> {
    oauth::admit(state, endpoint, headers, q.token.as_deref())
        .await
        .map_err(Rejection::OAuth)
}

/// A session created with a credential (a signed-in subject, a profile token) is used only
/// with that same credential: a leaked session id alone is worth nothing.
fn check_owner(session: &Session, credential: &Credential) -> Result<(), Rejection> {
    let Some(owner) = session.credential() else {
        return Ok(());
    };
    let presented = match credential {
        Credential::Granted { principal, .. } => principal.clone(),
        Credential::Token(t) => format!("token:{}", crate::secrets::sha256_hex(t)),
        Credential::None => String::new(),
    };
    if crate::secrets::ct_eq(&presented, owner) {
        Ok(())
    } else {
        Err(plain_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this session belongs to another principal",
        ))
    }
}

/// Why a session cannot be created, as an HTTP rejection.
fn refusal(state: &AppState, endpoint: oauth::Endpoint, refusal: &Refusal) -> Option<Rejection> {
    match refusal {
        Refusal::TokenRequired(p) => Some(Rejection::token_required(state, endpoint, p)),
        Refusal::NotGranted(_) => Some(Rejection::OAuth(oauth::OAuthError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            refusal.to_string(),
        ))),
        Refusal::UnknownProfile(_) | Refusal::UnknownProject(_) => None,
    }
}

/// Why an MCP HTTP request is refused: a JSON-RPC error body (the spec's
/// `JsonRpcErrorResponse`), the spec's plain `Error` body, or a missing/wrong profile token.
pub enum Rejection {
    Rpc(StatusCode, Box<(serde_json::Value, ErrorObject)>),
    Plain(StatusCode, &'static str, &'static str),
    /// 401/403 with a `WWW-Authenticate` challenge, or another OAuth-shaped refusal.
    OAuth(oauth::OAuthError),
    /// Over `settings.rate_limit`: 429 with `Retry-After` (whole seconds, at least 1).
    RateLimited(Duration),
}

impl Rejection {
    fn token_required(state: &AppState, endpoint: oauth::Endpoint, profile: &str) -> Self {
        let mut e = oauth::OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("profile `{profile}` requires its token"),
        );
        e.www_authenticate = Some(oauth::challenge(state, endpoint, None));
        Rejection::OAuth(e)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Rpc(status, e) => {
                let (id, error) = *e;
                let body = Message::Response(RpcResponse::err(id, error)).to_json();
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Rejection::Plain(status, error, description) => {
                mcp_director_api::ApiError::new(status, error, description).into_response()
            }
            Rejection::RateLimited(wait) => {
                let mut r = mcp_director_api::ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Rate limit exceeded",
                )
                .into_response();
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                r
            }
            Rejection::OAuth(e) => e.into_response(),
        }
    }
}

/// The body, unless it is larger than `max` bytes (413 with a JSON-RPC -32600 error).
async fn read_body(body: Body, max: u64) -> Result<Bytes, Rejection> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, max).await.map_err(|_| {
        rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::Value::Null,
            ErrorObject::new(
                INVALID_REQUEST,
                format!("Request body larger than {max} bytes (settings.limits.max_request_bytes)"),
            ),
        )
    })
}

/// A slot for one more SSE stream of `session`; 429 when it holds `max` already.
fn stream_slot(session: &Arc<Session>, max: u32) -> Result<crate::session::StreamSlot, Rejection> {
    session.open_stream(max).ok_or_else(|| {
        plain_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "Too many open streams for this session (settings.limits.max_streams_per_session)",
        )
    })
}

fn rpc_error(status: StatusCode, id: serde_json::Value, error: ErrorObject) -> Rejection {
    Rejection::Rpc(status, Box::new((id, error)))
}

fn plain_error(status: StatusCode, error: &'static str, description: &'static str) -> Rejection {
    Rejection::Plain(status, error, description)
}

/// `Origin` must match `settings.allowed_origins` when present (DNS-rebinding protection);
/// clients that are not browsers send none.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|pattern| match pattern.strip_suffix(":*") {
            Some(base) => {
                origin == base
                    || origin
                        .strip_prefix(base)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .is_some_and(|port| {
                            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                        })
            }
            None => pattern == "*" || pattern == origin,
        })
}

/// One request from this principal — the signed-in subject or profile token when one is
/// presented, else the client's IP address — under its profile's rate limit (the session's
/// profile, or the one a new session would get), else `settings.rate_limit`.
fn check_rate(
    state: &AppState,
    q: &McpQuery,
    headers: &HeaderMap,
    peer: SocketAddr,
    credential: &Credential,
) -> Result<(), Rejection> {
    let config = state.config.effective();
    let unlimited = config.settings.rate_limit.per_minute == 0
        && config.profiles.values().all(|p| p.rate_limit.is_none());
    if unlimited {
        return Ok(());
    }
    // Only a real profile token is a principal: a made-up one would be a fresh bucket each
    // time.
    let key = match credential {
        Credential::Granted { principal, .. } => principal.clone(),
        Credential::Token(token) => {
            let hash = crate::secrets::sha256_hex(token);
            let known = config.profiles.values().any(|p| {
                p.token_sha256
                    .as_deref()
                    .is_some_and(|h| crate::secrets::ct_eq(h, &hash))
            });
            if known {
                format!("token:{hash}")
            } else {
                format!("ip:{}", peer.ip())
            }
        }
        Credential::None => format!("ip:{}", peer.ip()),
    };
    let session_id = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(q.session_id.as_deref());
    let profile = match session_id.and_then(|id| state.gateway.session(id)) {
        Some(session) => session.profile.clone(),
        None => choose_scope(state, q, credential)
            .ok()
            .and_then(|s| s.profile),
    };
    let limits = profile
        .and_then(|p| config.profiles.get(&p))
        .and_then(|p| p.rate_limit.as_ref())
        .unwrap_or(&config.settings.rate_limit);
    state.rate_limits.check(&key, limits).map_err(|wait| {
        state.metrics.rate_limited();
        Rejection::RateLimited(wait)
    })
}

fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = &state.config.effective().settings.allowed_origins;
    match origin.to_str() {
        Ok(o) if origin_allowed(o, allowed) => Ok(()),
        _ => Err(plain_error(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "Origin not allowed",
        )),
    }
}

fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|v| {
            v == mime
                || v == "*/*"
                || v.strip_suffix("/*")
                    .is_some_and(|t| mime.split('/').next() == Some(t))
        })
}

/// An unsupported `MCP-Protocol-Version` is a 400 naming the supported ones; a missing one is
/// allowed (the spec says assume 2025-03-26) unless settings require it.
fn check_version(state: &AppState, headers: &HeaderMap, initialize: bool) -> Result<(), Rejection> {
    let unsupported = |got: &str| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            serde_json::Value::Null,
            ErrorObject::new(
                INVALID_REQUEST,
                format!(
                    "Bad Request: unsupported MCP-Protocol-Version {got:?}; supported: {}",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            )
            .with_data(json!({"supported": SUPPORTED_VERSIONS})),
        )
    };
    match headers.get(VERSION_HEADER) {
        Some(v) => match v.to_str() {
            Ok(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(()),
            Ok(v) => Err(unsupported(v)),
            Err(_) => Err(unsupported("<not text>")),
        },
        None if !initialize
            && state
                .config
                .effective()
                .settings
                .require_protocol_version_header =>
        {
            Err(unsupported(""))
        }
        None => Ok(()),
    }
}

fn session_from_header(g: &Gateway, headers: &HeaderMap) -> Result<Arc<Session>, Rejection> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            serde_json::Value::Null,
            ErrorObject::new(
                INVALID_REQUEST,
                "Bad Request: Mcp-Session-Id header is required",
            ),
        ));
    };
    match g.session(id) {
        Some(s) if s.transport == TransportKind::StreamableHttp => Ok(s),
        _ => Err(rpc_error(
            StatusCode::NOT_FOUND,
            serde_json::Value::Null,
            ErrorObject::new(-32001, "Session not found"),
        )),
    }
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Mcp, &q, &headers).await?;
    check_rate(&state, &q, &headers, peer, &credential)?;
    let limits = state.config.effective().settings.limits.clone();
    let body = read_body(body, limits.max_request_bytes).await?;
    let g = state.gateway.clone();
    let message = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return Err(rpc_error(StatusCode::BAD_REQUEST, e.id, e.error)),
    };

    // Legacy HTTP+SSE: the session came from GET /sse; every answer goes out on that stream.
    if let Some(id) = q.session_id {
        let Some(session) = g
            .session(&id)
            .filter(|s| s.transport == TransportKind::LegacySse)
        else {
            return Err(rpc_error(
                StatusCode::NOT_FOUND,
                serde_json::Value::Null,
                ErrorObject::new(-32001, "Session not found"),
            ));
        };
        // The 2024-11-05 transport makes the endpoint URL (with its session id, sent only on
        // the credential-checked stream) the capability: clients POST to it as given, without
        // their credential. One that sends a credential must send the session's own.
        if !matches!(credential, Credential::None) {
            check_owner(&session, &credential)?;
        }
        let sink = Sink::new(session.clone());
        tokio::spawn(async move {
            if let Some(response) = g.handle(&session, message, sink).await {
                session.outbound.send(response.into());
            }
        });
        return Ok(StatusCode::ACCEPTED.into_response());
    }

    if !(accepts(&headers, "application/json") || accepts(&headers, "text/event-stream"))
        && headers.contains_key(header::ACCEPT)
    {
        return Err(plain_error(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "Accept must include application/json and text/event-stream",
        ));
    }
    let is_initialize = message.method() == Some("initialize");
    check_version(&state, &headers, is_initialize)?;

    let (session, new_session) = if is_initialize && !headers.contains_key(SESSION_HEADER) {
        let scope = match choose_scope(&state, &q, &credential) {
            Ok(scope) => scope,
            Err(r) => {
                if let Some(rejection) = refusal(&state, oauth::Endpoint::Mcp, &r) {
                    return Err(rejection);
                }
                let id = match &message {
                    Message::Request(req) => req.id.clone(),
                    _ => serde_json::Value::Null,
                };
                let body = Message::Response(RpcResponse::err(
                    id,
                    ErrorObject::invalid_params(r.to_string()),
                ))
                .to_json();
                return Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response());
            }
        };
        let session = Session::new(
            crate::session::new_id(),
            TransportKind::StreamableHttp,
            scope,
        );
        g.add_session(session.clone());
        (session, true)
    } else {
        let session = session_from_header(&g, &headers)?;
        check_owner(&session, &credential)?;
        (session, false)
    };

    let Message::Request(request) = message else {
        g.handle(&session, message, Sink::new(session.clone()))
            .await;
        return Ok(StatusCode::ACCEPTED.into_response());
    };

    // `initialize` is answered as JSON, so a failed one can take its new session with it.
    if new_session {
        let sink = Sink::new(session.clone());
        let answer = g.handle(&session, Message::Request(request), sink).await;
        let failed = answer.as_ref().is_none_or(|r| r.outcome.is_err());
        let body = answer
            .map(|r| Message::Response(r).to_json())
            .unwrap_or_default();
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if failed {
            g.remove_session(&session.id).await;
        } else if let Ok(v) = HeaderValue::from_str(&session.id) {
            response.headers_mut().insert(SESSION_HEADER, v);
        }
        return Ok(response);
    }

    if !accepts(&headers, "text/event-stream") {
        let sink = Sink::new(session.clone());
        let answer = g.handle(&session, Message::Request(request), sink).await;
        return Ok(json_answer(answer.map(Message::Response)));
    }
    // The client accepts SSE: the answer is a stream that carries what the request causes
    // (progress, server requests) before its response, and can be resumed by a client that
    // loses it. The work starts here; one finished within QUICK is answered as one complete
    // body (one write), anything longer goes on in a task of its own while the stream is sent.
    let slot = stream_slot(&session, limits.max_streams_per_session)?;
    let stream = session.request_stream();
    let sink = Sink {
        request_stream: Some(stream.clone()),
        session: session.clone(),
        task: None,
    };
    let answered = stream.clone();
    let (g2, s2) = (g.clone(), session.clone());
    let mut work = Box::pin(async move {
        if let Some(response) = g2.handle(&s2, Message::Request(request), sink).await {
            let _ = answered.push(response.into());
        }
    });
    let done = tokio::select! {
        biased;
        () = &mut work => true,
        () = tokio::time::sleep(QUICK) => false,
    };
    if !done {
        tokio::spawn(work);
    }
    session.keep(&stream);
    // 2025-11-25 clients get a priming event first (an id and an empty data field), so even
    // a connection lost before the first message can be resumed.
    let priming = (session.negotiated().version.as_str() >= "2025-11-25").then(|| {
        format!(
            "retry: 1000\n{}",
            crate::sse::format(None, Some(&stream.event_id(0)), "")
        )
    });
    let mut events = Box::pin(futures::stream::iter(priming).chain(request_events(stream, 0)));
    if done && let Some(texts) = events.by_ref().collect::<Vec<_>>().now_or_never() {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            texts.concat(),
        )
            .into_response());
    }
    Ok(request_stream_response(&state, &session, events, slot))
}

/// How long a request may take to be answered in one body (see `post`).
const QUICK: Duration = Duration::from_millis(10);

/// A JSON answer (an empty body for none).
fn json_answer(message: Option<Message>) -> Response {
    let body = message.map(|m| m.to_json()).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A request stream's messages from index `from` on, as SSE text, ending after the response.
fn request_events(stream: Arc<RequestStream>, from: u64) -> impl Stream<Item = String> {
    futures::stream::unfold(Some((stream, from)), |state| async move {
        let (stream, index) = state?;
        let (index, m) = stream.next(index).await?;
        let last = matches!(m, Message::Response(_));
        let text = crate::sse::format(None, Some(&stream.event_id(index + 1)), &m.to_json());
        Some((text, (!last).then_some((stream, index + 1))))
    })
}

/// Resolves when a stream of `session` must end: the session or the director is.
fn stream_end(state: &AppState, session: &Arc<Session>) -> impl Future<Output = ()> + use<> {
    let session = session.clone();
    let mut shutdown = state.shutdown.subscribe();
    async move {
        tokio::select! {
            () = session.ended() => {},
            _ = shutdown.wait_for(|s| *s) => {},
        }
    }
}

/// A request stream as an SSE response: written by hand, since the priming event needs an
/// empty `data:` line (axum omits empty data), with a keep-alive comment every 15 s. It holds
/// a stream slot, and ends with the session or the director.
fn request_stream_response(
    state: &AppState,
    session: &Arc<Session>,
    events: impl Stream<Item = String> + Send + 'static,
    slot: crate::session::StreamSlot,
) -> Response {
    let ended = stream_end(state, session);
    // Events ready together leave in one chunk (one write): the priming event with the
    // headers, a quick answer with the end of the body.
    let events = Box::pin(events.take_until(Box::pin(ended)).ready_chunks(64));
    let body = futures::stream::unfold((events, slot), |(mut events, slot)| async move {
        let chunk = match tokio::time::timeout(Duration::from_secs(15), events.next()).await {
            Ok(Some(texts)) => Bytes::from(texts.concat()),
            Ok(None) => return None,
            Err(_) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(chunk), (events, slot)))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The standalone stream of a session: notifications and server requests not tied to a POST.
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Mcp, &q, &headers).await?;
    check_rate(&state, &q, &headers, peer, &credential)?;
    if !accepts(&headers, "text/event-stream") {
        return Err(plain_error(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "Accept must include text/event-stream",
        ));
    }
    check_version(&state, &headers, false)?;
    let session = session_from_header(&state.gateway, &headers)?;
    check_owner(&session, &credential)?;
    let max = state
        .config
        .effective()
        .settings
        .limits
        .max_streams_per_session;
    let slot = stream_slot(&session, max)?;
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    // A request's stream, resumed where the client lost it (its response included).
    if let Some(last) = last.filter(|l| l.starts_with('r')) {
        let Some((stream, next)) = session.resume(last) else {
            return Err(plain_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "Unknown or expired stream in Last-Event-ID",
            ));
        };
        return Ok(request_stream_response(
            &state,
            &session,
            request_events(stream, next),
            slot,
        ));
    }
    let rx = session
        .outbound
        .attach(last.and_then(|v| v.parse::<u64>().ok()));
    // The slot is held until the stream ends or the client goes away.
    let events = session_events(rx, &state, &session, None).map(move |e| {
        let _ = &slot;
        e
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The events of a session's standalone stream, ending when the session or the director does.
fn session_events(
    rx: mpsc::Receiver<(u64, Message)>,
    state: &AppState,
    session: &Arc<Session>,
    event_name: Option<&'static str>,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let ended = stream_end(state, session);
    receiver_stream(rx)
        .map(move |(id, m)| {
            let e = Event::default().id(id.to_string()).data(m.to_json());
            Ok(match event_name {
                Some(name) => e.event(name),
                None => e,
            })
        })
        .take_until(Box::pin(ended))
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

pub async fn delete(
    State(state): State<AppState>,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Mcp, &q, &headers).await?;
    let session = session_from_header(&state.gateway, &headers)?;
    check_owner(&session, &credential)?;
    state.gateway.remove_session(&session.id).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Legacy HTTP+SSE (2024-11-05): the stream is the session.
pub async fn sse(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Sse, &q, &headers).await?;
    check_rate(&state, &q, &headers, peer, &credential)?;
    let scope = match choose_scope(&state, &q, &credential) {
        Ok(scope) => scope,
        Err(r) => {
            return Err(
                refusal(&state, oauth::Endpoint::Sse, &r).unwrap_or_else(|| {
                    plain_error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "unknown profile or project",
                    )
                }),
            );
        }
    };
    let session = Session::new(crate::session::new_id(), TransportKind::LegacySse, scope);
    state.gateway.add_session(session.clone());
    let rx = session.outbound.attach(None);
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/mcp?sessionId={}", session.id));
    // The session ends with the stream.
    let guard = SessionGuard {
        gateway: state.gateway.clone(),
        id: session.id.to_string(),
    };
    let events = session_events(rx, &state, &session, Some("message")).map(move |e| {
        let _ = &guard;
        e
    });
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(endpoint) }).chain(events);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

struct SessionGuard {
    gateway: Arc<Gateway>,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let gateway = self.gateway.clone();
        let id = std::mem::take(&mut self.id);
        tokio::spawn(async move {
            gateway.remove_session(&id).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec![
            "http://localhost:*".to_string(),
            "https://app.example".to_string(),
        ];
        assert!(origin_allowed("http://localhost:3000", &allowed));
        assert!(origin_allowed("http://localhost", &allowed));
        assert!(origin_allowed("https://app.example", &allowed));
        assert!(!origin_allowed("http://localhost.evil.example", &allowed));
        assert!(!origin_allowed("http://localhost:3000.evil", &allowed));
        assert!(!origin_allowed("http://evil.example.com", &allowed));
        assert!(!origin_allowed("https://app.example:444", &allowed));
    }
}
