//! What every MCP request over HTTP passes before it is served: Origin, credential, rate,
//! body size, Accept and protocol version; and the rejections they answer with.

use super::{McpQuery, SESSION_HEADER, VERSION_HEADER};
use crate::gateway::SUPPORTED_VERSIONS;
use crate::jsonrpc::{ErrorObject, INVALID_REQUEST, Message, Response as RpcResponse};
use crate::oauth;
use crate::profile::{self, Credential, Refusal, Scope};
use crate::session::Session;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A new session's scope (profile, project, filter), or why it cannot have it.
pub(super) fn choose_scope(
    state: &AppState,
    q: &McpQuery,
    credential: &Credential,
) -> Result<Scope, Refusal> {
    let config = state.config.effective();
    profile::scope(
        &config,
        q.profile.as_deref(),
        q.project.as_deref(),
        credential,
    )
}

/// The request's credential (see [`oauth::admit`]).
pub(super) async fn admit(
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
pub(super) fn check_owner(session: &Session, credential: &Credential) -> Result<(), Rejection> {
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
pub(super) fn refusal(
    state: &AppState,
    endpoint: oauth::Endpoint,
    refusal: &Refusal,
) -> Option<Rejection> {
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
pub(super) async fn read_body(body: Body, max: u64) -> Result<Bytes, Rejection> {
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
pub(super) fn stream_slot(
    session: &Arc<Session>,
    max: u32,
) -> Result<crate::session::StreamSlot, Rejection> {
    session.open_stream(max).ok_or_else(|| {
        plain_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "Too many open streams for this session (settings.limits.max_streams_per_session)",
        )
    })
}

pub(super) fn rpc_error(
    status: StatusCode,
    id: serde_json::Value,
    error: ErrorObject,
) -> Rejection {
    Rejection::Rpc(status, Box::new((id, error)))
}

pub(super) fn plain_error(
    status: StatusCode,
    error: &'static str,
    description: &'static str,
) -> Rejection {
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
pub(super) async fn check_rate(
    state: &AppState,
    q: &McpQuery,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
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
                format!("ip:{peer}")
            }
        }
        Credential::None => format!("ip:{peer}"),
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
    state.rate_limits.check(&key, limits).await.map_err(|wait| {
        state.metrics.rate_limited();
        Rejection::RateLimited(wait)
    })
}

pub(super) fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Rejection> {
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

pub(super) fn accepts(headers: &HeaderMap, mime: &str) -> bool {
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
pub(super) fn check_version(
    state: &AppState,
    headers: &HeaderMap,
    initialize: bool,
) -> Result<(), Rejection> {
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
