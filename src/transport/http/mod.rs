//! MCP over HTTP: Streamable HTTP on `/mcp` (POST, GET, DELETE) and the legacy HTTP+SSE
//! transport (`GET /sse`, then `POST /mcp?sessionId=`).
//!
//! - `guard.rs`: what every request passes (Origin, credential, rate, body, Accept, version);
//! - `session.rs`: 2025-era sessions (`initialize`, their requests, GET stream, DELETE);
//! - `modern.rs`: 2026-07-28 requests (no session: each carries its version and capabilities);
//! - `legacy_sse.rs`: the 2024-11-05 HTTP+SSE transport;
//! - `stream.rs`: how answers leave (JSON, request streams, session streams).

mod guard;
pub mod hop;
mod legacy_sse;
mod modern;
mod session;
mod stream;

pub use guard::{Rejection, origin_allowed};
pub use legacy_sse::sse;
pub use session::{delete, get};

use crate::client_addr::ClientAddr;
use crate::jsonrpc::Message;
use crate::oauth;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use guard::*;
use serde::Deserialize;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Query parameters of `/mcp` and `/sse`: the legacy session, and the profile, project and
/// token that select a new session's view. Never logged.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct McpQuery {
    session_id: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) project: Option<String>,
    token: Option<String>,
}

/// `POST /mcp`: one JSON-RPC message, to a legacy HTTP+SSE session (`?sessionId=`) or of a
/// Streamable HTTP session.
pub async fn post(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    Query(q): Query<McpQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Rejection> {
    check_origin(&state, &headers)?;
    let credential = admit(&state, oauth::Endpoint::Mcp, &q, &headers).await?;
    check_rate(&state, &q, &headers, peer, &credential).await?;
    let limits = state.config.effective().settings.limits.clone();
    let body = read_body(body, limits.max_request_bytes).await?;
    let message = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return Err(rpc_error(StatusCode::BAD_REQUEST, e.id, e.error)),
    };
    match &q.session_id {
        Some(id) => legacy_sse::post(&state, id, credential, message).await,
        None if modern::is_modern(&headers, &message) => {
            modern::post(&state, &q, &headers, credential, message).await
        }
        None => session::post(&state, &q, &headers, credential, message, &limits).await,
    }
}
