//! Sign-in at /authorize through an external OpenID Connect provider (`settings.oauth.oidc`):
//! discovery, the authorization code flow with PKCE and a nonce, ID-token validation
//! (signature, issuer, audience, expiry, nonce), then the allowed-subject, email and group
//! rules. The provider's answer arrives at /oauth/callback, which shows the consent page.

use super::grants::{self, Claims};
use super::{OAuthError, authorize, enabled, issuer};
use crate::profile::glob_match;
use crate::secrets::{ct_eq, sha256_hex};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_director_api::models::OidcSettings;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// What the provider round trip needs back at the callback.
#[derive(Serialize, Deserialize)]
struct RoundTrip {
    nonce: String,
    pkce_verifier: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

/// The HTTP client the provider calls go through: our reqwest, no redirects followed (an ID
/// provider's token endpoint never redirects; following one would leak the code elsewhere).
async fn http(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let client = crate::net::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| HttpError(e.to_string()))?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut out = HttpResponse::new(Vec::new());
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    *out.body_mut() = body.to_vec();
    Ok(out)
}

fn provider_error(what: &str, e: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(error = %e, "OpenID Connect provider: {what}");
    OAuthError::new(
        StatusCode::BAD_GATEWAY,
        "temporarily_unavailable",
        format!("the identity provider could not be used: {what}"),
    )
}

async fn discover(oidc: &OidcSettings) -> Result<CoreProviderMetadata, OAuthError> {
    let issuer = IssuerUrl::new(oidc.issuer.clone())
        .map_err(|e| provider_error("its issuer is not a URL", e))?;
    CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| provider_error("discovery failed", e))
}

fn redirect_url(iss: &str) -> Result<RedirectUrl, OAuthError> {
    RedirectUrl::new(format!("{iss}/oauth/callback"))
        .map_err(|e| provider_error("the callback URL is invalid", e))
}

/// The provider's authorization URL for this pending request, and the round trip to keep.
// Boxed: the clients' authorization and the console's sign-in both await it, and one copy of
// its code serves both.
pub fn start<'a>(
    oidc: &'a OidcSettings,
    iss: &'a str,
    request_id: &'a str,
) -> futures::future::BoxFuture<'a, Result<(String, String), OAuthError>> {
    Box::pin(async move {
        let metadata = discover(oidc).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(oidc.client_id.clone()),
            oidc.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect_url(iss)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let request_id = request_id.to_string();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(request_id.clone()),
            Nonce::new_random,
        );
        for scope in &oidc.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _state, nonce) = request.set_pkce_challenge(challenge).url();
        let round_trip = RoundTrip {
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        };
        Ok((
            url.to_string(),
            serde_json::to_string(&round_trip).unwrap_or_default(),
        ))
    })
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, OAuthError> {
    let params = authorize::params(query.as_deref().unwrap_or_default().as_bytes());
    // The console's sign-in comes back here too (the one redirect URI the provider knows).
    #[cfg(feature = "console")]
    if let Ok(p) = &params
        && p.get("state")
            .is_some_and(|s| s.starts_with(crate::console::OIDC_STATE_PREFIX))
    {
        return Ok(crate::console::oidc_callback(&state, &headers, p).await);
    }
    enabled(&state)?;
    let outcome = match params {
        Ok(p) => finish(&state, &headers, &p).await,
        Err(e) => Err(e),
    };
    outcome.map_err(|e| e.counted(&state, "oidc_callback"))
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    p: &std::collections::HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let Some(oidc) = state.config.effective().settings.oauth.oidc.clone() else {
        return Err(OAuthError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "OpenID Connect sign-in is not configured",
        ));
    };
    let request_id = p
        .get("state")
        .ok_or_else(|| OAuthError::bad("invalid_request", "state is required"))?;
    let pending = grants::pending(&state.store, request_id)
        .await
        .map_err(OAuthError::store)?
        .ok_or_else(|| {
            OAuthError::bad(
                "invalid_request",
                "unknown or expired sign-in; start again from the client",
            )
        })?;
    let iss = issuer(state);
    let browser = authorize::browser_cookie(headers, &iss)
        .map(sha256_hex)
        .unwrap_or_default();
    if !ct_eq(&browser, &pending.browser_hash) {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this sign-in was started in another browser",
        ));
    }
    if let Some(error) = p.get("error") {
        return Err(OAuthError::bad(
            "access_denied",
            format!("the identity provider refused the sign-in: {error}"),
        ));
    }
    let code = p
        .get("code")
        .ok_or_else(|| OAuthError::bad("invalid_request", "code is required"))?;
    let round_trip = pending
        .oidc_state
        .as_deref()
        .ok_or_else(|| OAuthError::bad("invalid_request", "this sign-in was already completed"))?;
    let Identity {
        subject: sub,
        email,
        groups,
    } = identify(&oidc, &iss, code, round_trip).await?;
    if !allowed(&oidc, &sub, email.as_deref(), &groups) {
        tracing::warn!(%sub, "OpenID Connect subject not allowed");
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "your account is not allowed to use this director",
        ));
    }
    let subject = format!("oidc:{sub}");
    let claims = Claims { email, groups };
    if !grants::sign_in(&state.store, request_id, &subject, &claims)
        .await
        .map_err(OAuthError::store)?
    {
        return Err(OAuthError::bad(
            "invalid_request",
            "this sign-in was already completed",
        ));
    }
    let shown = claims.email.as_deref().unwrap_or(&subject).to_string();
    authorize::consent_after_sign_in(state, &pending, &shown).await
}

/// Who the provider says signed in: the subject, the email when verified, the groups.
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// Redeems the provider's `code` (with the round trip's PKCE verifier) and validates the ID
/// token it answers (signature, issuer, audience, expiry, nonce).
// Boxed: the clients' authorization and the console's sign-in both await it, and one copy of
// its code serves both.
pub fn identify<'a>(
    oidc: &'a OidcSettings,
    iss: &'a str,
    code: &'a str,
    round_trip: &'a str,
) -> futures::future::BoxFuture<'a, Result<Identity, OAuthError>> {
    Box::pin(async move {
        let round_trip: RoundTrip = serde_json::from_str(round_trip).map_err(|_| {
            OAuthError::bad("invalid_request", "this sign-in was already completed")
        })?;
        let metadata = discover(oidc).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(oidc.client_id.clone()),
            oidc.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect_url(iss)?);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| provider_error("it has no token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(round_trip.pkce_verifier))
            .request_async(&http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "OpenID Connect code exchange failed");
                OAuthError::bad(
                    "access_denied",
                    "the identity provider did not accept the code",
                )
            })?;
        let id_token = tokens.id_token().ok_or_else(|| {
            OAuthError::bad("access_denied", "the identity provider sent no ID token")
        })?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(round_trip.nonce))
            .map_err(|e| {
                tracing::warn!(error = %e, "ID token rejected");
                OAuthError::bad("access_denied", format!("the ID token is not valid: {e}"))
            })?;
        Ok(Identity {
            subject: claims.subject().as_str().to_string(),
            email: claims
                .email()
                .filter(|_| claims.email_verified().unwrap_or(false))
                .map(|e| e.as_str().to_string()),
            groups: groups_from(id_token, &oidc.groups_claim),
        })
    })
}

/// The groups claim, read from the ID token's payload (already validated by the caller; this
/// only decodes a custom claim the typed claims do not carry).
fn groups_from(id_token: &openidconnect::core::CoreIdToken, claim: &str) -> Vec<String> {
    use base64::Engine;
    let raw = id_token.to_string();
    raw.split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .and_then(|v| v.get(claim).cloned())
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        .unwrap_or_default()
}

/// The allowed-subject, email and group rules; an empty list allows any.
pub fn allowed(oidc: &OidcSettings, sub: &str, email: Option<&str>, groups: &[String]) -> bool {
    let subject_ok = oidc.allowed_subjects.is_empty()
        || oidc.allowed_subjects.iter().any(|g| glob_match(g, sub));
    let email_ok = oidc.allowed_emails.is_empty()
        || email.is_some_and(|e| oidc.allowed_emails.iter().any(|g| glob_match(g, e)));
    let group_ok =
        oidc.allowed_groups.is_empty() || groups.iter().any(|g| oidc.allowed_groups.contains(g));
    subject_ok && email_ok && group_ok
}
