//! Replicas as one service: a request for a 2025-era session this replica does not hold, whose
//! id names another live replica (`cluster/mod.rs`), or the retry of a 2026 call parked on
//! another replica (its `requestState` names it), is forwarded to that replica over an
//! internal hop and its answer (a JSON body or an SSE stream) streamed back. Only with the
//! secret every replica shares (`MCP_DIRECTOR_CLUSTER_SECRET`), which also vouches for the
//! client address the hop carries; without it, or when the owner is gone, the request is
//! served here (404 for a session: the client starts over, as the spec says). The owner checks
//! the client's credential as if it had come directly.

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

/// Marks a forwarded request: `<ms>.<MAC of "<ms>|<client address>">`, vouching for the
/// client address it carries in `X-Forwarded-For` (the owner keys rate limits on it).
const HOP: &str = "x-mcp-director-hop";

/// How old a hop's mark may be (clocks of replicas differ a little; a mark seen on the wire is
/// of no use for long).
const HOP_FRESH_MS: i64 = 60_000;

fn mac(secret: &str, at_ms: i64, client: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"mcp-director hop\0");
    mac.update(format!("{at_ms}|{client}").as_bytes());
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The client a request forwarded by another replica of this deployment came from, when its
/// mark checks out (a forged or stale one vouches for nothing).
pub fn forwarded_client(headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    let mark = headers.get(HOP)?.to_str().ok()?;
    let secret = crate::cluster::secret()?;
    let client = headers.get("x-forwarded-for")?.to_str().ok()?;
    let (at, given) = mark.split_once('.')?;
    let at: i64 = at.parse().ok()?;
    if (crate::analytics::now_ms() - at).abs() > HOP_FRESH_MS {
        return None;
    }
    crate::secrets::ct_eq(&mac(secret, at, client), given)
        .then(|| client.parse().ok())
        .flatten()
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
    let Some(secret) = crate::cluster::secret() else {
        return next.run(request).await;
    };
    if request.headers().get(HOP).is_some() {
        // Forwarded once already: served here. A forged hop gets no further than an ordinary
        // request would.
        return next.run(request).await;
    }
    let (request, held) = match session_of(&request) {
        Some(id) if state.gateway.session(&id).is_some() => return next.run(request).await,
        Some(id) => (request, id),
        None => match retried_call(request).await {
            (request, Some(state)) => (request, state),
            (request, None) => return next.run(request).await,
        },
    };
    let own = state.gateway.node.prefix();
    let Some(owner) = held.split_once('.').map(|(prefix, _)| prefix) else {
        return next.run(request).await;
    };
    if owner == own {
        return next.run(request).await;
    }
    let url = match crate::cluster::owner_url(&state.store, owner).await {
        Ok(Some(url)) => url,
        other => {
            tracing::debug!(held = %held, ?other, "no live replica holds this session or call");
            return next.run(request).await;
        }
    };
    match forward(request, &url, secret, client).await {
        Ok(response) => response,
        // The replica is gone (it stopped, or was killed before the others noticed): what it
        // held is lost, which the client learns as if it had asked there (404 for a session,
        // the request served here for a retried call), and starts over.
        Err(Failed::Unreachable(request, e)) => {
            crate::cluster::forget_owner(owner);
            tracing::info!(held = %held, owner = %url, error = %e, "the replica holding this is unreachable");
            next.run(*request).await
        }
        Err(Failed::Other(e)) => {
            tracing::warn!(held = %held, owner = %url, error = %e, "forwarding to the replica holding this failed");
            (
                axum::http::StatusCode::BAD_GATEWAY,
                "the replica holding this session is unreachable",
            )
                .into_response()
        }
    }
}

/// For a sessionless POST (2026-07-28) that retries a call with a `requestState`: the request
/// as it came and what the state names (`<replica prefix>.<handle>`).
async fn retried_call(request: Request) -> (Request, Option<String>) {
    if request.method() != axum::http::Method::POST {
        return (request, None);
    }
    let (parts, body) = request.into_parts();
    // Bounded already: the body limit applies before the handlers.
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return (Request::from_parts(parts, Body::empty()), None),
    };
    let held = memchr::memmem::find(&bytes, b"requestState")
        .and_then(|_| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|m| {
            let state = m.get("params")?.get("requestState")?.as_str()?;
            let prefix = crate::gateway::mrtr::holder(state)?;
            Some(format!("{prefix}.call"))
        });
    (Request::from_parts(parts, Body::from(bytes)), held)
}

enum Failed {
    /// No connection to the replica: the request, untouched, to serve here.
    Unreachable(Box<Request>, Box<dyn std::error::Error + Send + Sync>),
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed::Other(e.into())
    }
}

async fn forward(
    request: Request,
    owner: &str,
    secret: &str,
    client: std::net::IpAddr,
) -> Result<Response, Failed> {
    static CLIENT: OnceLock<crate::net::HyperClient> = OnceLock::new();
    let http = CLIENT.get_or_init(crate::net::hyper_client);
    let (parts, body) = request.into_parts();
    // Bounded already: the body limit applies before the handlers, and a hop carries one
    // message (or nothing, for GET and DELETE).
    let body = body.collect().await?.to_bytes();
    let mut hop = parts.clone();
    let path = hop.uri.path_and_query().map_or("/", |p| p.as_str());
    hop.uri = format!("{}{path}", owner.trim_end_matches('/')).parse::<Uri>()?;
    hop.headers.remove(axum::http::header::HOST);
    let (at, client) = (crate::analytics::now_ms(), client.to_string());
    hop.headers.insert(
        HOP,
        HeaderValue::from_str(&format!("{at}.{}", mac(secret, at, &client)))?,
    );
    hop.headers.remove("x-forwarded-for");
    hop.headers
        .insert("x-forwarded-for", HeaderValue::from_str(&client)?);
    let forwarded = hyper::Request::from_parts(hop, http_body_util::Full::new(body.clone()));
    let answer = match http.request(forwarded).await {
        Ok(answer) => answer,
        Err(e) if e.is_connect() => {
            return Err(Failed::Unreachable(
                Box::new(Request::from_parts(parts, Body::from(body))),
                e.into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let (parts, body) = answer.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}
