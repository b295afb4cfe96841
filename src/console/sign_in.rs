//! Signing in with the admin credentials (`[settings.auth]`), and out. A wrong password counts
//! against the address as on `/api`: past 10 a minute, it waits.

use super::layout::page;
use super::session::{self, Signed, check_change};
use crate::admin::Admin;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::html;
use mcp_director_api::AdminApi;
use serde::Deserialize;

pub async fn form(State(state): State<AppState>) -> Response {
    if !state.config.effective().settings.auth.enabled {
        return Redirect::to("/ui/").into_response();
    }
    render(StatusCode::OK, None)
}

fn render(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        @if let Some(e) = error { p class="notice error" role="alert" id="sign-in-error" { (e) } }
        form class="stack" method="post" action="/ui/login" {
            div { label for="username" { "User name" } input id="username" name="username" autocomplete="username" required; }
            div { label for="password" { "Password" } input id="password" name="password" type="password" autocomplete="current-password" required; }
            div { button type="submit" { "Sign in" } }
        }
    };
    page(status, "Sign in", None, "", body)
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Response {
    if !state.config.effective().settings.auth.enabled {
        return Redirect::to("/ui/").into_response();
    }
    // Only from a page of this console (a sign-in planted by another site is refused).
    if !session::same_origin(&headers) {
        return render(
            StatusCode::FORBIDDEN,
            Some("Sign in from this console's own page."),
        );
    }
    if state.admin_failures.blocked(client).is_some() {
        return render(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many wrong passwords: try again in a minute."),
        );
    }
    // The admin API's own check (the same credentials, the same slow hash).
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    let mut as_api = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Basic {basic}")) {
        as_api.insert(header::AUTHORIZATION, v);
    }
    if Admin(state.clone()).authenticate(&as_api).await.is_err() {
        state.admin_failures.failed(client);
        return render(
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        );
    }
    match session::start(&state, &credentials.username).await {
        Ok(cookie) => {
            let mut r = Redirect::to("/ui/").into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            r
        }
        Err(_) => render(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The store does not answer: try again."),
        ),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    headers: HeaderMap,
    Form(form): Form<super::servers::Change>,
) -> Response {
    if let Err(refused) = check_change(&signed, &headers, &form.csrf) {
        return refused.into_response();
    }
    let cleared = session::end(&state, &headers).await;
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, cleared);
    r
}
