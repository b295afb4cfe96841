//! The 2024-11-05 HTTP+SSE transport: `GET /sse` is the session (its first event names the
//! endpoint to POST to), and every answer goes out on that stream.

use super::McpQuery;
use super::guard::*;
use super::stream::session_events;
use crate::client_addr::ClientAddr;
use crate::gateway::Gateway;
use crate::jsonrpc::{ErrorObject, Message};
use crate::oauth;
use crate::profile::Credential;
use crate::session::{Session, Sink, TransportKind};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// A message POSTed to the endpoint of a legacy session.
pub(super) async fn post(
    state: &AppState,
    id: &str,
    credential: Credential,
    message: Message,
) -> Result<Response, Rejection> {
    let g = state.gateway.clone();
    let Some(session) = g
        .session(id)
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
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Legacy HTTP+SSE (2024-11-05): the stream is the session.
pub async fn sse(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Sse, &q, &headers).await?;
    check_rate(&state, &q, &headers, peer, &credential).await?;
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
