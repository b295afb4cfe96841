//! The token endpoint: `authorization_code` with PKCE (S256 only) and `refresh_token` with
//! rotation. Access and refresh tokens are opaque, random, bound to the code's resource, and
//! stored as hashes.

use super::authorize::params;
use super::grants::{self, ACCESS, Grant, REFRESH, Redeemed, Rotated};
use super::{OAuthError, enabled, issuer, our_resource, pkce_s256_matches};
use crate::analytics::now_ms;
use crate::secrets::{ct_eq, random_token, sha256_hex};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mcp_director_api::models::TokenResponse;
use std::collections::HashMap;

pub async fn exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    let outcome = token_request(&state, &headers, &body).await;
    // A token request may revoke a grant (a replayed code or refresh token): verified access
    // tokens are checked anew from here on.
    state.access_cache.clear();
    let (grant_type, tokens) = outcome.map_err(|e| e.counted(&state, "token"))?;
    state.metrics.oauth_grant(grant_type);
    let mut r = Json(tokens).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::bad("invalid_grant", description)
}

async fn token_request(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(&'static str, TokenResponse), OAuthError> {
    let p = params(body)?;
    let client = authenticate_client(state, headers, &p).await?;
    let iss = issuer(state);
    let requested_resource =
        match p.get("resource") {
            None => None,
            Some(r) => Some(our_resource(&iss, r).ok_or_else(|| {
                OAuthError::bad("invalid_target", "resource is not this director")
            })?),
        };
    match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = p
                .get("code")
                .ok_or_else(|| OAuthError::bad("invalid_request", "code is required"))?;
            let redirect_uri = p
                .get("redirect_uri")
                .ok_or_else(|| OAuthError::bad("invalid_request", "redirect_uri is required"))?;
            let verifier = p.get("code_verifier").ok_or_else(|| {
                OAuthError::bad("invalid_request", "code_verifier is required (PKCE)")
            })?;
            let code = match grants::redeem_code(&state.store, code)
                .await
                .map_err(OAuthError::store)?
            {
                Redeemed::Fresh(code) => *code,
                Redeemed::Replayed => {
                    tracing::warn!(client_id = %client.client_id, "authorization code replayed; its tokens are revoked");
                    return Err(invalid_grant(
                        "the authorization code was already used; tokens issued for it are revoked",
                    ));
                }
                Redeemed::Unknown => return Err(invalid_grant("unknown authorization code")),
            };
            // The code is spent whatever follows: a wrong verifier cannot be retried.
            if code.expires_ms <= now_ms() {
                return Err(invalid_grant("the authorization code expired"));
            }
            if code.client_id != client.client_id {
                return Err(invalid_grant("the code was issued to another client"));
            }
            if &code.redirect_uri != redirect_uri {
                return Err(invalid_grant(
                    "redirect_uri differs from the authorization request's",
                ));
            }
            if !pkce_s256_matches(verifier, &code.code_challenge) {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            if requested_resource
                .as_ref()
                .is_some_and(|r| *r != code.resource)
            {
                return Err(OAuthError::bad(
                    "invalid_target",
                    "resource differs from the authorization request's",
                ));
            }
            let refresh_ttl = state
                .config
                .effective()
                .settings
                .oauth
                .refresh_token_ttl_secs;
            let grant = Grant {
                family: code.family,
                client_id: code.client_id,
                subject: code.subject,
                claims: code.claims,
                scope: code.scope,
                resource: code.resource,
                // The grant's absolute end: rotation never extends it.
                expires_ms: now_ms() + (refresh_ttl * 1000) as i64,
            };
            let scope = grant.scope.clone();
            Ok((
                "authorization_code",
                issue(state, &client, grant, scope).await?,
            ))
        }
        Some("refresh_token") => {
            if !client.grant_types.iter().any(|g| g == "refresh_token") {
                return Err(OAuthError::bad(
                    "unauthorized_client",
                    "the client is not registered for refresh_token",
                ));
            }
            let token = p
                .get("refresh_token")
                .ok_or_else(|| OAuthError::bad("invalid_request", "refresh_token is required"))?;
            let grant = match grants::rotate_refresh(&state.store, token)
                .await
                .map_err(OAuthError::store)?
            {
                Rotated::Fresh(g) => g,
                Rotated::Replayed => {
                    tracing::warn!(client_id = %client.client_id, "rotated refresh token presented again; its grant is revoked");
                    return Err(invalid_grant(
                        "the refresh token was already used; every token of this grant is revoked",
                    ));
                }
                Rotated::Invalid => {
                    return Err(invalid_grant("unknown, expired or revoked refresh token"));
                }
            };
            if grant.client_id != client.client_id {
                grants::revoke_family(&state.store, &grant.family)
                    .await
                    .map_err(OAuthError::store)?;
                return Err(invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if requested_resource
                .as_ref()
                .is_some_and(|r| *r != grant.resource)
            {
                return Err(OAuthError::bad(
                    "invalid_target",
                    "resource differs from the original grant's",
                ));
            }
            // Who signed in must still be allowed (the admin account, the provider's rules).
            if !super::still_allowed(&state.config.effective(), &grant.subject, &grant.claims) {
                grants::revoke_family(&state.store, &grant.family)
                    .await
                    .map_err(OAuthError::store)?;
                return Err(invalid_grant("the signed-in account is no longer allowed"));
            }
            // A narrower scope applies to this access token only; the grant keeps its own
            // (RFC 6749 §6).
            let access_scope = match p.get("scope") {
                None => grant.scope.clone(),
                Some(scope) => {
                    let granted: Vec<&str> = grant.scope.split_whitespace().collect();
                    if scope.split_whitespace().next().is_none()
                        || scope.split_whitespace().any(|s| !granted.contains(&s))
                    {
                        return Err(OAuthError::bad(
                            "invalid_scope",
                            "a refresh may only narrow the granted scope",
                        ));
                    }
                    scope.split_whitespace().collect::<Vec<_>>().join(" ")
                }
            };
            Ok((
                "refresh_token",
                issue(state, &client, grant, access_scope).await?,
            ))
        }
        Some(_) => Err(OAuthError::bad(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(OAuthError::bad("invalid_request", "grant_type is required")),
    }
}

/// A new access token (with `access_scope`), and a refresh token (the grant's scope, until the
/// grant's end `grant.expires_ms`) when the client may refresh, in the grant's family.
async fn issue(
    state: &AppState,
    client: &grants::Client,
    grant: Grant,
    access_scope: String,
) -> Result<TokenResponse, OAuthError> {
    let settings = state.config.effective().settings.oauth.clone();
    let access_ttl_ms = (settings.access_token_ttl_secs * 1000) as i64;
    let access = format!("mcpd_at_{}", random_token());
    let access_grant = Grant {
        scope: access_scope.clone(),
        expires_ms: now_ms() + access_ttl_ms,
        ..grant.clone()
    };
    grants::insert_token(&state.store, &access, ACCESS, &access_grant)
        .await
        .map_err(OAuthError::store)?;
    let refresh = if client.grant_types.iter().any(|g| g == "refresh_token") {
        let refresh = format!("mcpd_rt_{}", random_token());
        grants::insert_token(&state.store, &refresh, REFRESH, &grant)
            .await
            .map_err(OAuthError::store)?;
        Some(refresh)
    } else {
        None
    };
    if grants::family_revoked(&state.store, &grant.family)
        .await
        .map_err(OAuthError::store)?
    {
        grants::revoke_family(&state.store, &grant.family)
            .await
            .map_err(OAuthError::store)?;
        return Err(invalid_grant("this grant was revoked"));
    }
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: Some(settings.access_token_ttl_secs),
        refresh_token: refresh,
        scope: Some(access_scope),
    })
}

/// The client: by `client_secret_basic`, `client_secret_post`, or a public client's
/// `client_id`. A client registered with a secret must present it.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<grants::Client, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let decode = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.to_string())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let unauthorized = |description: &str| {
        let mut e = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        if basic.is_some() {
            e.www_authenticate = Some(HeaderValue::from_static("Basic realm=\"mcp-director\""));
        }
        e
    };
    let (client_id, secret) = match &basic {
        Some((id, secret)) => (id.clone(), Some(secret.clone())),
        None => (
            p.get("client_id")
                .cloned()
                .ok_or_else(|| OAuthError::bad("invalid_request", "client_id is required"))?,
            p.get("client_secret").cloned(),
        ),
    };
    let client = grants::client(&state.store, &client_id)
        .await
        .map_err(OAuthError::store)?
        .ok_or_else(|| unauthorized("unknown client"))?;
    match (&client.secret_hash, secret) {
        (None, _) => Ok(client),
        (Some(stored), Some(given)) if ct_eq(stored, &sha256_hex(&given)) => Ok(client),
        (Some(_), _) => Err(unauthorized("client authentication failed")),
    }
}
