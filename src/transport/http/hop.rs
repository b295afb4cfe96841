//! Replicas as one service: a request for a 2025-era session this replica does not hold, whose
//! id names another live replica (`cluster.rs`), is forwarded to that replica over an internal
//! hop and its answer (a JSON body or an SSE stream) streamed back. The hop is authenticated
//! by a MAC under the secret every replica shares (`MCP_DIRECTOR_CLUSTER_SECRET`); without
//! it, or when the owner is gone, the request is served here (404: the client starts over, as
//! the spec says). The owner checks the client's credential as if it had come directly.

use crate::client_addr::ClientAddr;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use sha2::Sha256;
use std::sync::OnceLock;

/// Marks a forwarded request: the MAC of the session id it is for.
const HOP: &str = "x-mcp-director-hop";

fn mac(secret: &str, session: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"mcp-director hop\0");
    mac.update(session.as_bytes());
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The session a request names: `Mcp-Session-Id`, or the legacy transport's `?sessionId=`.
fn session_of(request: &Request) -> Option<String> {
    if let Some(id) = request
        .headers()
        .get(super::SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(id.to_string());
    }
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId=").map(|id| id.to_string()))
}

pub async fn forward_foreign_sessions(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    let (Some(secret), Some(id)) = (crate::cluster::secret(), session_of(&request)) else {
        return next.run(request).await;
    };
    let own = state.gateway.node.prefix();
    let owner = id.split_once('.').map(|(prefix, _)| prefix);
    let is_hop = request.headers().get(HOP).is_some();
    if is_hop || state.gateway.session(&id).is_some() || owner.is_none_or(|o| o == own) {
        // A forged hop gets no further than an ordinary request would.
        return next.run(request).await;
    }
    let Some(owner) = owner else {
        return next.run(request).await;
    };
    let url = match crate::cluster::owner_url(&state.store, owner).await {
        Ok(Some(url)) => url,
        other => {
            tracing::debug!(session = %id, ?other, "no live replica holds this session");
            return next.run(request).await;
        }
    };
    match forward(request, &url, &id, secret, client).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(session = %id, owner = %url, error = %e, "forwarding to the session's replica failed");
            (
                axum::http::StatusCode::BAD_GATEWAY,
                "the replica holding this session is unreachable",
            )
                .into_response()
        }
    }
}

async fn forward(
    request: Request,
    owner: &str,
    session: &str,
    secret: &str,
    client: std::net::IpAddr,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    static CLIENT: OnceLock<crate::net::HyperClient> = OnceLock::new();
    let http = CLIENT.get_or_init(crate::net::hyper_client);
    let (mut parts, body) = request.into_parts();
    // Bounded already: the body limit applies before the handlers, and a hop carries one
    // message (or nothing, for GET and DELETE).
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{}{path}", owner.trim_end_matches('/')).parse::<Uri>()?;
    parts.headers.remove(axum::http::header::HOST);
    parts
        .headers
        .insert(HOP, HeaderValue::from_str(&mac(secret, session))?);
    parts.headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&client.to_string())?,
    );
    let forwarded = hyper::Request::from_parts(parts, http_body_util::Full::new(body));
    let answer = http.request(forwarded).await?;
    let (parts, body) = answer.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}
