//! OAuth 2.1 as the MCP authorization spec (2025-11-25) describes it. The director is the
//! authorization server (metadata, registration, /authorize with a consent page, /token) and
//! the resource server for /mcp and /sse (bearer.rs). Tokens are opaque random strings bound to
//! one of this director's URIs (RFC 8707); the store keeps only their hashes (grants.rs).
//!
//! Users sign in at /authorize with the local admin credentials (`settings.auth`) or through
//! an external OpenID Connect provider (`settings.oauth.oidc`, oidc.rs). Their subject becomes
//! the session's principal: it picks the profile (`settings.oauth.profiles`) and owns tasks.
//! A client's token is never passed on: upstream connections carry only their own headers.

mod authorize;
pub mod bearer;
mod client_metadata;
mod consent;
pub mod grants;
mod metadata;
pub mod oidc;
mod register;
mod token;

pub use bearer::{Endpoint, admit, challenge};

use crate::profile::glob_match;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcp_director_api::models::{Config, RateLimitSettings};

/// The scope an access token needs for /mcp and /sse.
pub const MCP_SCOPE: &str = "mcp";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::openid_configuration),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource_mcp),
        )
        .route(
            "/.well-known/oauth-protected-resource/sse",
            get(metadata::protected_resource_sse),
        )
        .route("/authorize", get(authorize::begin).post(authorize::decide))
        .route("/oauth/callback", get(oidc::callback))
        .route("/token", post(token::exchange))
        .route("/register", post(register::register))
}

/// The issuer: `settings.oauth.issuer`, else `http://` + the listening address (a wildcard
/// address is named by its loopback), without a trailing slash.
pub fn issuer(state: &AppState) -> String {
    if let Some(configured) = &state.config.effective().settings.oauth.issuer {
        return configured.trim_end_matches('/').to_string();
    }
    let mut addr = state.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// The URIs this director's tokens may be bound to (RFC 8707 resource indicators), the
/// canonical MCP endpoint first. A token is valid on /mcp and /sse alike, and nowhere else.
pub fn resources(issuer: &str) -> [String; 3] {
    [
        format!("{issuer}/mcp"),
        format!("{issuer}/sse"),
        issuer.to_string(),
    ]
}

/// The requested resource as stored: one of [`resources`] (a trailing slash is the same
/// resource), or None when it names something else.
fn our_resource(issuer: &str, requested: &str) -> Option<String> {
    let requested = requested.trim_end_matches('/');
    resources(issuer).into_iter().find(|r| r == requested)
}

/// Whether a signed-in subject may still use its grants under the current configuration: the
/// admin account still exists as it was, or the provider's allow rules still admit it.
pub fn still_allowed(config: &Config, subject: &str, claims: &grants::Claims) -> bool {
    let oauth = &config.settings.oauth;
    if let Some(user) = subject.strip_prefix("local:") {
        let auth = &config.settings.auth;
        return oauth.oidc.is_none()
            && auth.enabled
            && auth
                .username
                .as_deref()
                .is_some_and(|u| crate::secrets::ct_eq(u, user));
    }
    match (subject.strip_prefix("oidc:"), &oauth.oidc) {
        (Some(sub), Some(oidc)) => {
            oidc::allowed(oidc, sub, claims.email.as_deref(), &claims.groups)
        }
        _ => false,
    }
}

/// The session principal of a signed-in subject.
pub fn principal(subject: &str) -> String {
    format!("oauth:{subject}")
}

/// The profile `settings.oauth.profiles` gives this subject: the first rule whose conditions
/// all hold.
pub fn profile_for(config: &Config, subject: &str, claims: &grants::Claims) -> Option<String> {
    config
        .settings
        .oauth
        .profiles
        .iter()
        .find(|rule| {
            rule.subject.as_ref().is_none_or(|g| glob_match(g, subject))
                && rule.email.as_ref().is_none_or(|g| {
                    claims
                        .email
                        .as_deref()
                        .is_some_and(|email| glob_match(g, email))
                })
                && rule
                    .group
                    .as_ref()
                    .is_none_or(|g| claims.groups.iter().any(|have| have == g))
        })
        .map(|rule| rule.profile.clone())
}

/// An OAuth error in the RFC 6749 §5.2 shape (the spec's `Error` body), never cached.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub www_authenticate: Option<HeaderValue>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
        }
    }

    pub fn bad(error: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    pub fn disabled() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "OAuth is disabled (settings.oauth.enabled is false)",
        )
    }

    pub fn store(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "OAuth store unusable");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the store is unusable",
        )
    }

    /// Counts the failure by endpoint and error code (both from fixed sets).
    pub fn counted(self, state: &AppState, endpoint: &'static str) -> Self {
        state.metrics.oauth_failure(endpoint, self.error);
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut r = mcp_director_api::ApiError::new(self.status, self.error, self.description)
            .into_response();
        let headers = r.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        r
    }
}

/// Sign-in attempts (POST /authorize) per client IP: 30 a minute, 10 at once. argon2 is slow
/// on purpose, and guesses should be too.
pub(crate) const SIGN_IN: RateLimitSettings = RateLimitSettings {
    per_minute: 30,
    burst: Some(10),
};

/// The OAuth endpoints answer anyone (registration, sign-in), so each client IP has a bucket
/// under `settings.rate_limit`, and a much smaller one for sign-in attempts.
pub async fn rate_limit(
    State(state): State<AppState>,
    crate::client_addr::ClientAddr(ip): crate::client_addr::ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.config.effective().settings.rate_limit.clone();
    let mut checked = state
        .rate_limits
        .check(&format!("oauth-ip:{ip}"), &limits)
        .await;
    if checked.is_ok() && request.method() == Method::POST && request.uri().path() == "/authorize" {
        checked = state
            .rate_limits
            .check(&format!("sign-in-ip:{ip}"), &SIGN_IN)
            .await;
    }
    match checked {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            state.metrics.rate_limited();
            let mut r = OAuthError::new(
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
    }
}

/// Every OAuth endpoint answers 404 while OAuth is off.
fn enabled(state: &AppState) -> Result<(), OAuthError> {
    if state.config.effective().settings.oauth.enabled {
        Ok(())
    } else {
        Err(OAuthError::disabled())
    }
}

/// Whether a redirect URI may be registered: https, or http on a loopback host (RFC 8252 §7.3),
/// absolute, without a fragment.
fn redirect_uri_allowed(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || url.cannot_be_a_base() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// `base64url(sha256(verifier))` equals the challenge (RFC 7636 §4.6, S256), compared in
/// constant time. The verifier must be 43–128 unreserved characters.
fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    use sha2::Digest;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    well_formed && crate::secrets::ct_eq(&computed, challenge)
}

/// Starts the hourly purge of expired requests, codes and tokens.
pub fn start_maintenance(store: crate::store::Store) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = grants::purge_expired(&store).await {
                tracing::warn!(error = %e, "purging expired OAuth grants failed");
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_follows_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_s256_matches("short", challenge));
        // `plain` would send the verifier itself as the challenge: never a match.
        assert!(!pkce_s256_matches(verifier, verifier));
    }

    #[test]
    fn redirect_uris_are_https_or_loopback() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:8123/callback",
            "http://localhost/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(redirect_uri_allowed(ok), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "javascript:alert(1)",
            "custom:/x",
            "not a url",
            "http://127.0.0.1.evil.com/cb",
        ] {
            assert!(!redirect_uri_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn resources_are_this_directors_uris_only() {
        let iss = "http://127.0.0.1:7000";
        assert_eq!(
            our_resource(iss, "http://127.0.0.1:7000/mcp").as_deref(),
            Some("http://127.0.0.1:7000/mcp")
        );
        assert_eq!(
            our_resource(iss, "http://127.0.0.1:7000/").as_deref(),
            Some(iss)
        );
        assert_eq!(our_resource(iss, "http://127.0.0.1:7001/mcp"), None);
        assert_eq!(our_resource(iss, "http://127.0.0.1:7000/mcp/other"), None);
    }
}
