//! Signing in with the admin credentials (`[settings.auth]`) or, when `[settings.auth]` names
//! who may (`oidc_emails`, `oidc_groups`), through the OpenID Connect provider of
//! `[settings.oauth.oidc]`; and out. A wrong password counts against the address as on `/api`:
//! past 10 a minute, it waits.

use super::layout::page;
use super::session::{self, Cx, Fields};
use crate::admin::Admin;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::html;
use mcp_director_api::AdminApi;
use mcp_director_api::models::OidcSettings;

pub async fn form(State(state): State<AppState>) -> Response {
    if !state.config.effective().settings.auth.enabled {
        return Redirect::to("/ui/").into_response();
    }
    render(&state, StatusCode::OK, None)
}

/// The provider, when operators may sign in through it.
fn console_oidc(state: &AppState) -> Option<OidcSettings> {
    let config = state.config.effective();
    let auth = &config.settings.auth;
    if auth.oidc_emails.is_empty() && auth.oidc_groups.is_empty() {
        return None;
    }
    config.settings.oauth.oidc.clone()
}

fn render(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        @if let Some(e) = error { p class="notice error" role="alert" id="sign-in-error" { (e) } }
        @if console_oidc(state).is_some() {
            p { a id="oidc-sign-in" href="/ui/login/oidc" { "Sign in with your identity provider" } }
            p class="muted" { "Or with the admin credentials:" }
        }
        form class="stack" method="post" action="/ui/login" {
            div { label for="username" { "User name" } input id="username" name="username" autocomplete="username" required; }
            div { label for="password" { "Password" } input id="password" name="password" type="password" autocomplete="current-password" required; }
            div { button type="submit" { "Sign in" } }
        }
    };
    page(status, "Sign in", None, "", body)
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Fields::parse(&body);
    let (username, password) = (form.get("username"), form.get("password"));
    if !state.config.effective().settings.auth.enabled {
        return Redirect::to("/ui/").into_response();
    }
    // Only from a page of this console (a sign-in planted by another site is refused).
    if !session::same_origin(&headers) {
        return render(
            &state,
            StatusCode::FORBIDDEN,
            Some("Sign in from this console's own page."),
        );
    }
    if state.admin_failures.blocked(client).is_some() {
        return render(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many wrong passwords: try again in a minute."),
        );
    }
    // The admin API's own check (the same credentials, the same slow hash).
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut as_api = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Basic {basic}")) {
        as_api.insert(header::AUTHORIZATION, v);
    }
    if Admin(state.clone()).authenticate(&as_api).await.is_err() {
        state.admin_failures.failed(client);
        return render(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        );
    }
    match session::start(&state, username).await {
        Ok(cookie) => {
            let mut r = Redirect::to("/ui/").into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            r
        }
        Err(_) => render(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The store does not answer: try again."),
        ),
    }
}

pub async fn sign_out(cx: Cx) -> Response {
    let cleared = session::end(&cx.state, &cx.headers).await;
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, cleared);
    r
}

/// The `state` of a console sign-in at the provider starts so: the provider's answer comes
/// back to `/oauth/callback` (the one redirect URI registered there) and is handed here.
pub const OIDC_STATE_PREFIX: &str = "console.";
/// Binds a provider round trip to the browser that began it; sent only to the callback.
const BROWSER_COOKIE: &str = "mcpd_console_oidc";
const SIGN_IN_MS: i64 = 10 * 60 * 1000;

/// To the provider: a new round trip (state, PKCE, nonce) kept in the store, the browser
/// bound to it by a cookie.
pub async fn oidc_start(State(state): State<AppState>, ClientAddr(client): ClientAddr) -> Response {
    let Some(oidc) = console_oidc(&state) else {
        return Redirect::to("/ui/login").into_response();
    };
    // Anyone may start one, and each asks the provider and keeps a row: as few as sign-ins.
    let key = format!("console-sign-in-ip:{client}");
    if state
        .rate_limits
        .check(&key, &crate::oauth::SIGN_IN)
        .await
        .is_err()
    {
        state.metrics.rate_limited();
        return render(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many sign-ins: try again in a minute."),
        );
    }
    let round = format!("{OIDC_STATE_PREFIX}{}", crate::secrets::random_token());
    let browser = crate::secrets::random_token();
    let iss = crate::oauth::issuer(&state);
    let (url, round_trip) = match crate::oauth::oidc::start(&oidc, &iss, &round).await {
        Ok(started) => started,
        Err(e) => return render(&state, StatusCode::BAD_GATEWAY, Some(&e.description)),
    };
    let now = crate::analytics::now_ms();
    let _ = sqlx::query("DELETE FROM console_sign_ins WHERE expires_ms < $1")
        .bind(now)
        .execute(state.store.pool())
        .await;
    let stored = sqlx::query(
        "INSERT INTO console_sign_ins (state_sha256, browser_sha256, round_trip, expires_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(crate::secrets::sha256_hex(&round))
    .bind(crate::secrets::sha256_hex(&browser))
    .bind(&round_trip)
    .bind(now + SIGN_IN_MS)
    .execute(state.store.pool())
    .await;
    if stored.is_err() {
        return render(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The store does not answer: try again."),
        );
    }
    let mut r = Redirect::to(&url).into_response();
    // Lax: the provider sends the browser back with a top-level GET from its own site.
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{BROWSER_COOKIE}={browser}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age={}",
        SIGN_IN_MS / 1000
    )) {
        r.headers_mut().append(header::SET_COOKIE, cookie);
    }
    r
}

/// The provider's answer for a console sign-in: the round trip taken (once), the browser
/// checked, the code redeemed, the person checked against `oidc_emails`/`oidc_groups`.
pub async fn oidc_callback(
    state: &AppState,
    headers: &HeaderMap,
    params: &std::collections::HashMap<String, String>,
) -> Response {
    let refused = |status, why: &str| {
        page(
            status,
            "Not signed in",
            None,
            "",
            html! { p class="notice error" role="alert" id="sign-in-error" { (why) } p { a href="/ui/login" { "Back to sign-in" } } },
        )
    };
    let Some(oidc) = console_oidc(state) else {
        return refused(
            StatusCode::NOT_FOUND,
            "Signing in to the console through an identity provider is not configured.",
        );
    };
    let round = params.get("state").map(String::as_str).unwrap_or_default();
    let taken: Option<(String, String)> = sqlx::query_as(
        "DELETE FROM console_sign_ins WHERE state_sha256 = $1 AND expires_ms >= $2
         RETURNING browser_sha256, round_trip",
    )
    .bind(crate::secrets::sha256_hex(round))
    .bind(crate::analytics::now_ms())
    .fetch_optional(state.store.pool())
    .await
    .ok()
    .flatten();
    let Some((browser_sha256, round_trip)) = taken else {
        return refused(
            StatusCode::BAD_REQUEST,
            "This sign-in is unknown, expired or already used: start again.",
        );
    };
    let browser = session::cookie(headers, BROWSER_COOKIE)
        .map(crate::secrets::sha256_hex)
        .unwrap_or_default();
    if !crate::secrets::ct_eq(&browser, &browser_sha256) {
        return refused(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser.",
        );
    }
    if let Some(error) = params.get("error") {
        return refused(
            StatusCode::FORBIDDEN,
            &format!("The identity provider refused the sign-in: {error}."),
        );
    }
    let Some(code) = params.get("code") else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The identity provider sent no code.",
        );
    };
    let iss = crate::oauth::issuer(state);
    let who = match crate::oauth::oidc::identify(&oidc, &iss, code, &round_trip).await {
        Ok(who) => who,
        Err(e) => return refused(StatusCode::FORBIDDEN, &e.description),
    };
    if !operator(&state.config.effective().settings.auth, &who) {
        tracing::warn!(sub = %who.subject, "console sign-in through the identity provider refused");
        return refused(
            StatusCode::FORBIDDEN,
            "Your account may not use this console.",
        );
    }
    let user = who
        .email
        .clone()
        .unwrap_or_else(|| format!("oidc:{}", who.subject));
    tracing::info!(%user, "console sign-in through the identity provider");
    match session::start(state, &user).await {
        Ok(cookie) => {
            // A page of ours moves on to the console: a redirect would still be the provider's
            // navigation, which a SameSite=Strict cookie does not follow.
            let mut r = page(
                StatusCode::OK,
                "Signed in",
                None,
                "",
                html! {
                    meta http-equiv="refresh" content="0; url=/ui/";
                    p id="signed-in" { "Signed in as " strong { (user) } ". " a href="/ui/" { "Continue to the console" } "." }
                },
            );
            r.headers_mut().append(header::SET_COOKIE, cookie);
            if let Ok(clear) = HeaderValue::from_str(&format!(
                "{BROWSER_COOKIE}=; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=0"
            )) {
                r.headers_mut().append(header::SET_COOKIE, clear);
            }
            r
        }
        Err(_) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store does not answer: try again.",
        ),
    }
}

/// Whether the provider's person may use the console: a verified email matching
/// `oidc_emails`, or a group in `oidc_groups`.
fn operator(
    auth: &mcp_director_api::models::AdminAuthSettings,
    who: &crate::oauth::oidc::Identity,
) -> bool {
    let email = who.email.as_deref().is_some_and(|e| {
        auth.oidc_emails
            .iter()
            .any(|g| crate::profile::glob_match(g, e))
    });
    email || who.groups.iter().any(|g| auth.oidc_groups.contains(g))
}
