//! The authorization endpoint. GET validates the request and shows the consent page (after an
//! external sign-in when one is configured); POST takes the decision and redirects with a
//! single-use code bound to client, redirect URI, PKCE challenge, scope and resource.
//!
//! Cross-site request forgery is stopped three ways: the form carries a random token, the
//! browser that began the request carries a cookie only it has (`__Host-` prefixed on https),
//! and a cross-origin `Origin` is refused.

use super::consent::{self, SignIn, View};
use super::grants::{self, Code, Pending};
use super::{MCP_SCOPE, OAuthError, enabled, issuer, our_resource};
use crate::analytics::now_ms;
use crate::secrets::{ct_eq, random_token, sha256_hex, verify_password};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// Wrong passwords a pending request survives; then the user starts again from the client.
const MAX_SIGN_IN_FAILURES: i64 = 5;
/// How long a user has between GET /authorize and the decision.
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;
/// Scopes a client may ask for; `mcp` is what /mcp and /sse require.
const SCOPES: &[&str] = &[MCP_SCOPE, "offline_access"];

/// Form or query parameters; a repeated parameter is an error (RFC 6749 §3.1).
pub fn params(raw: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::bad(
                "invalid_request",
                format!("parameter `{k}` is repeated"),
            ));
        }
    }
    Ok(out)
}

/// The cookie that binds a pending request to the browser that began it.
pub fn cookie_name(issuer: &str) -> &'static str {
    if issuer.starts_with("https://") {
        "__Host-mcp-director-authz"
    } else {
        "mcp-director-authz"
    }
}

fn set_cookie(issuer: &str, value: &str) -> Option<HeaderValue> {
    let secure = if issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        cookie_name(issuer),
        PENDING_TTL_MS / 1000
    ))
    .ok()
}

pub fn browser_cookie<'a>(headers: &'a HeaderMap, issuer: &str) -> Option<&'a str> {
    let name = cookie_name(issuer);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A 302 to the client with the authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`).
fn redirect(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
    iss: &str,
) -> Response {
    let Some(url) = answer_url(redirect_uri, pairs, state, iss) else {
        return OAuthError::bad("invalid_request", "the redirect URI is not a URL").into_response();
    };
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, location);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The redirect URI with the authorization response's parameters.
fn answer_url(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
    iss: &str,
) -> Option<url::Url> {
    let mut url = url::Url::parse(redirect_uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", iss);
    }
    Some(url)
}

/// Whether the browser may be sent to this redirect URI without the user seeing anything:
/// only back to the user's own machine (a native client's loopback listener). Any client can
/// register any https URI, so before consent an error there is shown, not redirected
/// (MCP 2025-11-25 "Open Redirection", OAuth 2.1 §7.12.2).
fn trusted_without_consent(redirect_uri: &str) -> bool {
    url::Url::parse(redirect_uri).is_ok_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    })
}

pub async fn begin(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    begin_request(&state, query.unwrap_or_default().as_bytes())
        .await
        .map_err(|e| e.counted(&state, "authorize"))
}

async fn begin_request(state: &AppState, query: &[u8]) -> Result<Response, OAuthError> {
    let p = params(query)?;
    let iss = issuer(state);
    // Until client and redirect URI are trusted, errors are shown here, never redirected.
    let client_id = p
        .get("client_id")
        .ok_or_else(|| OAuthError::bad("invalid_request", "client_id is required"))?;
    let client = if super::client_metadata::is_metadata_url(client_id) {
        super::client_metadata::resolve(state, client_id).await?
    } else {
        grants::client(&state.store, client_id)
            .await
            .map_err(OAuthError::store)?
            .ok_or_else(|| OAuthError::bad("invalid_client", "unknown client_id"))?
    };
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::bad("invalid_request", "redirect_uri is required"))?;
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(OAuthError::bad(
            "invalid_request",
            "redirect_uri does not exactly match a registered redirect URI",
        ));
    }
    let st = p.get("state").map(String::as_str);
    let fail = |error: &'static str, description: &str| {
        state.metrics.oauth_failure("authorize", error);
        let pairs = [("error", error), ("error_description", description)];
        if trusted_without_consent(redirect_uri) {
            return Ok(redirect(redirect_uri, &pairs, st, &iss));
        }
        let back = answer_url(redirect_uri, &pairs, st, &iss)
            .map(|u| u.to_string())
            .unwrap_or_default();
        Ok(consent::error_page(error, description, &back))
    };
    if p.get("response_type").map(String::as_str) != Some("code") {
        return fail("unsupported_response_type", "response_type must be `code`");
    }
    let Some(challenge) = p.get("code_challenge") else {
        return fail(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        );
    };
    if p.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        );
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !well_formed {
        return fail(
            "invalid_request",
            "code_challenge must be BASE64URL(SHA-256(code_verifier)) without padding",
        );
    }
    let requested = p.get("scope").map(String::as_str).unwrap_or(MCP_SCOPE);
    if let Some(unknown) = requested.split_whitespace().find(|s| !SCOPES.contains(s)) {
        return fail(
            "invalid_scope",
            &format!("scope `{unknown}` is not offered (mcp, offline_access)"),
        );
    }
    let scope = if requested.trim().is_empty() {
        MCP_SCOPE.to_string()
    } else {
        requested.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let resource = match p.get("resource") {
        None => super::resources(&iss)[0].clone(),
        Some(r) => match our_resource(&iss, r) {
            Some(r) => r,
            None => {
                return fail(
                    "invalid_target",
                    "resource is not this director (use its /mcp URL)",
                );
            }
        },
    };

    let request_id = random_token();
    let csrf = random_token();
    let browser = random_token();
    let mut pending = Pending {
        request_id: request_id.clone(),
        csrf_hash: sha256_hex(&csrf),
        browser_hash: sha256_hex(&browser),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: st.map(str::to_string),
        scope,
        resource,
        code_challenge: challenge.clone(),
        expires_ms: now_ms() + PENDING_TTL_MS,
        ..Default::default()
    };
    let oidc = state.config.effective().settings.oauth.oidc.clone();
    if let Some(oidc) = oidc {
        // Sign in at the provider first; its callback shows the consent page.
        let (provider_url, round_trip) = super::oidc::start(&oidc, &iss, &request_id).await?;
        pending.oidc_state = Some(round_trip);
        grants::insert_pending(&state.store, &pending)
            .await
            .map_err(OAuthError::store)?;
        let mut r = StatusCode::FOUND.into_response();
        let h = r.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&provider_url) {
            h.insert(header::LOCATION, location);
        }
        if let Some(cookie) = set_cookie(&iss, &browser) {
            h.insert(header::SET_COOKIE, cookie);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    grants::insert_pending(&state.store, &pending)
        .await
        .map_err(OAuthError::store)?;
    Ok(consent::page(
        &View {
            client_name: client.name.as_deref(),
            client_id: &client.client_id,
            redirect_uri,
            scopes: &pending.scope,
            request_id: &request_id,
            csrf_token: &csrf,
            sign_in: SignIn::Password,
        },
        set_cookie(&iss, &browser),
    ))
}

/// The consent page for a pending request whose subject has signed in elsewhere; a fresh
/// form token replaces the old one.
pub async fn consent_after_sign_in(
    state: &AppState,
    pending: &Pending,
    subject: &str,
) -> Result<Response, OAuthError> {
    let client = grants::client(&state.store, &pending.client_id)
        .await
        .map_err(OAuthError::store)?
        .ok_or_else(|| OAuthError::bad("invalid_client", "the client is gone"))?;
    let csrf = random_token();
    sqlx::query("UPDATE oauth_requests SET csrf_hash = $1 WHERE request_id = $2")
        .bind(sha256_hex(&csrf))
        .bind(&pending.request_id)
        .execute(state.store.pool())
        .await
        .map_err(OAuthError::store)?;
    Ok(consent::page(
        &View {
            client_name: client.name.as_deref(),
            client_id: &client.client_id,
            redirect_uri: &pending.redirect_uri,
            scopes: &pending.scope,
            request_id: &pending.request_id,
            csrf_token: &csrf,
            sign_in: SignIn::SignedIn(subject),
        },
        None,
    ))
}

pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    enabled(&state)?;
    decide_request(&state, &headers, &body)
        .await
        .map_err(|e| e.counted(&state, "consent"))
}

async fn decide_request(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let iss = issuer(state);
    let forbidden = |d: &str| OAuthError::new(StatusCode::FORBIDDEN, "access_denied", d);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ours = url::Url::parse(&iss)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if origin.to_str().ok() != Some(ours.as_str()) {
            return Err(forbidden(&format!(
                "the form was posted from another origin ({})",
                origin.to_str().unwrap_or("?")
            )));
        }
    }
    let p = params(body)?;
    let field = |name: &str| {
        p.get(name)
            .map(String::as_str)
            .ok_or_else(|| OAuthError::bad("invalid_request", format!("`{name}` is required")))
    };
    let (request_id, csrf, decision) = (
        field("request_id")?,
        field("csrf_token")?,
        field("decision")?,
    );
    let approve = match decision {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(OAuthError::bad(
                "invalid_request",
                "decision must be approve or deny",
            ));
        }
    };
    let pending = grants::pending(&state.store, request_id)
        .await
        .map_err(OAuthError::store)?
        .ok_or_else(|| {
            OAuthError::bad(
                "invalid_request",
                "unknown or expired authorization request; start again from the client",
            )
        })?;
    let browser = browser_cookie(headers, &iss)
        .map(sha256_hex)
        .unwrap_or_default();
    if !ct_eq(&sha256_hex(csrf), &pending.csrf_hash) || !ct_eq(&browser, &pending.browser_hash) {
        return Err(forbidden(
            "the form token or browser cookie does not match this authorization request",
        ));
    }
    let subject = match &pending.subject {
        Some(subject) => subject.clone(),
        None if !approve => String::new(),
        None => {
            if state.config.effective().settings.oauth.oidc.is_some() {
                return Err(forbidden("sign in at the identity provider first"));
            }
            match local_sign_in(state, p.get("username"), p.get("password")).await {
                Some(subject) => subject,
                None => {
                    grants::sign_in_failed(&state.store, request_id, MAX_SIGN_IN_FAILURES)
                        .await
                        .map_err(OAuthError::store)?;
                    return Err(forbidden("wrong username or password"));
                }
            }
        }
    };
    // Taken once: a second decision on the same request finds nothing.
    let Some(pending) = grants::take_pending(&state.store, request_id)
        .await
        .map_err(OAuthError::store)?
    else {
        return Err(OAuthError::bad(
            "invalid_request",
            "this authorization request was already decided",
        ));
    };
    let st = pending.state.as_deref();
    if !approve {
        state.metrics.oauth_failure("consent", "access_denied");
        return Ok(redirect(
            &pending.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
            st,
            &iss,
        ));
    }
    let code = random_token();
    let ttl = state.config.effective().settings.oauth.code_ttl_secs;
    grants::insert_code(
        &state.store,
        &code,
        &Code {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            resource: pending.resource.clone(),
            scope: pending.scope.clone(),
            subject: subject.clone(),
            claims: pending.claims.clone(),
            family: random_token(),
            expires_ms: now_ms() + (ttl.min(3600) * 1000) as i64,
        },
    )
    .await
    .map_err(OAuthError::store)?;
    tracing::info!(client_id = %pending.client_id, %subject, "authorization approved");
    Ok(redirect(
        &pending.redirect_uri,
        &[("code", &code)],
        st,
        &iss,
    ))
}

/// `local:<username>` when the admin credentials (`settings.auth`) match. argon2 runs off the
/// async workers, and both checks always run, so timing does not tell which one failed.
async fn local_sign_in(
    state: &AppState,
    username: Option<&String>,
    password: Option<&String>,
) -> Option<String> {
    let config = state.config.effective();
    let auth = &config.settings.auth;
    let (Some(want_user), Some(hash)) = (auth.username.clone(), auth.password_hash.clone()) else {
        return None;
    };
    let (user, password) = (username?.clone(), password?.clone());
    let user_ok = ct_eq(&user, &want_user);
    let password_ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    (auth.enabled && user_ok && password_ok).then(|| format!("local:{user}"))
}
