//! 2025-era Streamable HTTP sessions: `initialize` mints one (`Mcp-Session-Id`), its requests
//! are answered as JSON or as a request stream, `GET` opens its standalone stream (or resumes
//! a request stream), `DELETE` ends it.

use super::guard::*;
use super::stream::*;
use super::{McpQuery, SESSION_HEADER};
use crate::client_addr::ClientAddr;
use crate::gateway::Gateway;
use crate::jsonrpc::{ErrorObject, INVALID_REQUEST, Message, Response as RpcResponse};
use crate::oauth;
use crate::profile::Credential;
use crate::session::{Session, Sink, TransportKind};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use mcp_director_api::models::LimitSettings;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn session_from_header(
    g: &Gateway,
    headers: &HeaderMap,
) -> Result<Arc<Session>, Rejection> {
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

/// A request of a 2025-era session (or the `initialize` that opens one).
pub(super) async fn post(
    state: &AppState,
    q: &McpQuery,
    headers: &HeaderMap,
    credential: Credential,
    message: Message,
    limits: &LimitSettings,
) -> Result<Response, Rejection> {
    let g = state.gateway.clone();
    if !(accepts(headers, "application/json") || accepts(headers, "text/event-stream"))
        && headers.contains_key(header::ACCEPT)
    {
        return Err(plain_error(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "Accept must include application/json and text/event-stream",
        ));
    }
    let is_initialize = message.method() == Some("initialize");
    check_version(state, headers, is_initialize)?;

    let (session, new_session) = if is_initialize && !headers.contains_key(SESSION_HEADER) {
        let scope = match choose_scope(state, q, &credential) {
            Ok(scope) => scope,
            Err(r) => {
                if let Some(rejection) = refusal(state, oauth::Endpoint::Mcp, &r) {
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
        let session = session_from_header(&g, headers)?;
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

    if !accepts(headers, "text/event-stream") {
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
    Ok(request_stream_response(state, &session, events, slot))
}

/// The standalone stream of a session: notifications and server requests not tied to a POST.
pub async fn get(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Mcp, &q, &headers).await?;
    check_rate(&state, &q, &headers, peer, &credential).await?;
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
