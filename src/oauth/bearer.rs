//! The resource-server side: what /mcp and /sse accept as a credential, and the
//! `WWW-Authenticate` challenge that sends a client to discovery (RFC 6750 §3, RFC 9728 §5.1).

use super::{MCP_SCOPE, OAuthError, grants, issuer, principal, profile_for, resources};
use crate::secrets::{ct_eq, sha256_hex};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use std::time::{Duration, Instant};

use crate::profile::Credential;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The endpoint a request was for: its protected resource metadata is named in challenges.
#[derive(Clone, Copy)]
pub enum Endpoint {
    Mcp,
    Sse,
}

/// The challenge of a 401/403 from /mcp or /sse. With OAuth on it names the endpoint's protected
/// resource metadata and the scope to ask for, so a client can start discovery from the
/// response alone.
pub fn challenge(state: &AppState, endpoint: Endpoint, error: Option<(&str, &str)>) -> HeaderValue {
    let path = match endpoint {
        Endpoint::Mcp => "mcp",
        Endpoint::Sse => "sse",
    };
    let mut value = if state.config.effective().settings.oauth.enabled {
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/{path}\", scope=\"{MCP_SCOPE}\"",
            issuer(state)
        )
    } else {
        "Bearer realm=\"mcp-director\"".to_string()
    };
    if let Some((code, description)) = error {
        let clean: String = description
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{clean}\""
        ));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn refused(
    state: &AppState,
    endpoint: Endpoint,
    status: StatusCode,
    code: &'static str,
    description: &str,
) -> OAuthError {
    state.metrics.oauth_failure("resource", code);
    let mut e = OAuthError::new(status, code, description);
    e.www_authenticate = Some(challenge(state, endpoint, Some((code, description))));
    e
}

/// The credential of a request to /mcp or /sse.
///
/// OAuth off: the profile token from `Authorization: Bearer`, else `?token=`.
/// OAuth on: a bearer token in the header is required. It is a profile token, or an access
/// token this director issued for one of its own URIs with the `mcp` scope, held by a subject
/// the configuration still admits. Tokens in the URL are refused (400, RFC 6750 §3.1): URLs end
/// up in logs and histories.
pub async fn admit(
    state: &AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Credential, OAuthError> {
    let config = state.config.effective();
    if !config.settings.oauth.enabled {
        return Ok(match bearer(headers).or(query_token) {
            Some(t) => Credential::Token(t.to_string()),
            None => Credential::None,
        });
    }
    let refuse =
        |status, code, description: &str| refused(state, endpoint, status, code, description);
    if query_token.is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "access tokens are not accepted in the URL; send Authorization: Bearer",
        ));
    }
    let Some(token) = bearer(headers) else {
        let mut e = OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is required",
        );
        e.www_authenticate = Some(challenge(state, endpoint, None));
        return Err(e);
    };
    let hash = sha256_hex(token);
    let is_profile_token = config
        .profiles
        .values()
        .any(|p| p.token_sha256.as_deref().is_some_and(|h| ct_eq(h, &hash)));
    if is_profile_token {
        return Ok(Credential::Token(token.to_string()));
    }
    let grant = match state.access_cache.get(&hash) {
        Some(grant) => Some(grant),
        None => {
            let grant = grants::access(&state.store, &hash)
                .await
                .map_err(OAuthError::store)?;
            if let Some(g) = &grant {
                state.access_cache.put(hash, g.clone());
            }
            grant
        }
    };
    let grant = grant.ok_or_else(|| {
        refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is unknown, expired or revoked",
        )
    })?;
    if !resources(&issuer(state)).contains(&grant.resource) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token was issued for another resource",
        ));
    }
    if !super::still_allowed(&config, &grant.subject, &grant.claims) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the signed-in account is no longer allowed",
        ));
    }
    if !grant.scope.split_whitespace().any(|s| s == MCP_SCOPE) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token lacks the mcp scope",
        ));
    }
    Ok(Credential::Granted {
        principal: principal(&grant.subject),
        profile: profile_for(&config, &grant.subject, &grant.claims),
    })
}

/// Access tokens verified recently, by hash: a session presents the same token on every
/// request, and a store lookup each time would cost more than the request. An entry is used
/// for 5 s at most (a revocation made elsewhere, by another replica, counts within that) and
/// never past the token's expiry; this process's token endpoint clears it whenever it runs.
#[derive(Default)]
pub struct AccessCache(
    std::sync::Mutex<std::collections::HashMap<String, (Instant, grants::Grant)>>,
);

const CACHE_FRESH: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

impl AccessCache {
    fn get(&self, hash: &str) -> Option<grants::Grant> {
        let cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, grant) = cache.get(hash)?;
        (at.elapsed() < CACHE_FRESH && grant.expires_ms > crate::analytics::now_ms())
            .then(|| grant.clone())
    }

    fn put(&self, hash: String, grant: grants::Grant) {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FRESH);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(hash, (Instant::now(), grant));
    }

    /// Forgets everything (tokens were issued, refreshed or revoked).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
