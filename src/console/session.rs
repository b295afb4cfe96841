//! Who is using the console. With `[settings.auth]`: whoever signed in with the admin
//! credentials, known by a cookie (HttpOnly, SameSite=Strict, Path=/ui) whose token the store
//! keeps only hashed, for 12 hours. Without: only clients on this machine (as for `/api`),
//! each given such a session without a password. Every change is a POST from this origin
//! carrying the session's CSRF token, which is derived from the cookie's token (nothing more to
//! keep, and nothing a page of another origin can know).

use crate::client_addr::ClientAddr;
use crate::secrets::{ct_eq, random_token, sha256_hex};
use crate::state::AppState;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures::future::BoxFuture;
use std::net::IpAddr;

pub const COOKIE: &str = "mcpd_console";
const LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// The signed-in user of a request (an extension the middleware sets).
#[derive(Clone, Debug)]
pub struct Signed {
    pub user: String,
    /// The value every form of this session carries.
    pub csrf: String,
    /// Signed in without a password, as a client of this machine (no `[settings.auth]`).
    pub local: bool,
}

fn csrf_of(token: &str) -> String {
    sha256_hex(&format!("mcp-director console csrf\0{token}"))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
}

/// The value of the cookie `name`, among all the request's cookies.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

fn set_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("mcpd_console=; Path=/ui; Max-Age=0"))
}

/// A new session for `user`: its token.
async fn create(state: &AppState, user: &str) -> Result<String, sqlx::Error> {
    let token = random_token();
    let now = crate::analytics::now_ms();
    sqlx::query(
        "INSERT INTO console_sessions (token_sha256, username, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(sha256_hex(&token))
    .bind(user)
    .bind(now)
    .bind(now + LIFETIME_MS)
    .execute(state.store.pool())
    .await?;
    Ok(token)
}

/// A new session for `user`: its cookie.
pub async fn start(state: &AppState, user: &str) -> Result<HeaderValue, sqlx::Error> {
    Ok(set_cookie(&create(state, user).await?, LIFETIME_MS / 1000))
}

/// Ends the session of these headers (if any): the cookie that clears it.
pub async fn end(state: &AppState, headers: &HeaderMap) -> HeaderValue {
    if let Some(token) = cookie_token(headers) {
        let _ = sqlx::query("DELETE FROM console_sessions WHERE token_sha256 = $1")
            .bind(sha256_hex(&token))
            .execute(state.store.pool())
            .await;
    }
    set_cookie("", 0)
}

async fn lookup(state: &AppState, token: &str) -> Option<String> {
    let now = crate::analytics::now_ms();
    let _ = sqlx::query("DELETE FROM console_sessions WHERE expires_ms < $1")
        .bind(now)
        .execute(state.store.pool())
        .await;
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT username FROM console_sessions WHERE token_sha256 = $1 AND expires_ms >= $2",
    )
    .bind(sha256_hex(token))
    .bind(now)
    .fetch_optional(state.store.pool())
    .await
    .ok()?;
    row.map(|(user,)| user)
}

/// Whether the request comes from this machine: its connection and the client it is for.
fn local(client: IpAddr, parts: &Parts) -> bool {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    client.is_loopback() && peer.is_none_or(|p| p.is_loopback())
}

/// Who asks: a signed-in user, or (without `[settings.auth]`) a client of this machine, given
/// a session without a password (the cookie to set comes with it). Anyone else is sent to sign
/// in, or refused.
async fn signed_in(
    state: &AppState,
    client: IpAddr,
    parts: &Parts,
) -> Result<(Signed, Option<HeaderValue>), Response> {
    let auth = state.config.effective().settings.auth.enabled;
    if !auth && !local(client, parts) {
        return Err(super::layout::message(
            StatusCode::FORBIDDEN,
            "Not from here",
            "The console answers remote clients only with [settings.auth] enabled.",
        ));
    }
    if let Some(token) = cookie_token(&parts.headers)
        && let Some(user) = lookup(state, &token).await
    {
        let csrf = csrf_of(&token);
        return Ok((
            Signed {
                user,
                csrf,
                local: !auth,
            },
            None,
        ));
    }
    if auth {
        return Err(Redirect::to("/ui/login").into_response());
    }
    let Ok(token) = create(state, "local").await else {
        return Err(super::layout::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Store unavailable",
            "The console's sessions are kept in the store, which does not answer.",
        ));
    };
    let signed = Signed {
        user: "local".into(),
        csrf: csrf_of(&token),
        local: true,
    };
    Ok((signed, Some(set_cookie(&token, LIFETIME_MS / 1000))))
}

/// Whether the browser, if it says where the request comes from, says from here.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin.split_once("://").map_or(origin, |(_, h)| h) == host
}

/// A change that did not come from a page of this console.
#[derive(Debug)]
pub struct Refused;

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        super::layout::message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This change did not come from a page of this console (CSRF check failed). Reload the page and try again.",
        )
    }
}

/// A change is accepted with the session's CSRF token, from a page of this origin (when the
/// browser says where from).
fn check_change(signed: &Signed, same_origin: bool, csrf: &str) -> Result<(), Refused> {
    if !ct_eq(csrf, &signed.csrf) || !same_origin {
        return Err(Refused);
    }
    Ok(())
}

/// A query's or a posted form's fields, in order (a name may repeat).
#[derive(Default, Debug)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(encoded: &[u8]) -> Self {
        Fields(url::form_urlencoded::parse(encoded).into_owned().collect())
    }

    /// The first value of `name`; `""` when there is none.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, unless absent or empty.
    pub fn given(&self, name: &str) -> Option<&str> {
        Some(self.get(name)).filter(|v| !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }
}

/// A console request as every page's handler takes it: who asks, the path's parameters in
/// order, and the fields of the query (a GET) or of the form (a POST: a change, whose CSRF
/// token and origin were checked before the handler runs).
pub struct Cx {
    pub state: AppState,
    pub signed: Signed,
    pub headers: HeaderMap,
    pub params: Vec<String>,
    pub fields: Fields,
}

impl Cx {
    /// The `i`th parameter of the path (`""` past the last).
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

/// A page's handler. Every console route is this one type behind one axum handler ([`to`]):
/// axum's glue, the sign-in check and the form parsing are compiled once, not once per
/// handler (the console's share of the binary is budgeted).
pub type Handler = fn(Cx) -> BoxFuture<'static, Response>;

/// The largest form the console takes (a playground call's JSON arguments included).
const FORM_LIMIT: usize = 1 << 20;

/// `handler` as an axum handler, for signed-in users only.
pub fn to(
    handler: Handler,
) -> impl Fn(State<AppState>, ClientAddr, Request) -> BoxFuture<'static, Response>
+ Clone
+ Send
+ Sync
+ 'static {
    move |State(state), ClientAddr(client), request| {
        Box::pin(serve(handler, state, client, request))
    }
}

async fn serve(handler: Handler, state: AppState, client: IpAddr, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let (signed, cookie) = match signed_in(&state, client, &parts).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let params = match RawPathParams::from_request_parts(&mut parts, &state).await {
        Ok(p) => p.iter().map(|(_, v)| v.to_string()).collect(),
        Err(e) => return e.into_response(),
    };
    let fields = if parts.method == Method::POST {
        let Ok(body) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let fields = Fields::parse(&body);
        if let Err(refused) = check_change(&signed, same_origin(&parts.headers), fields.get("csrf"))
        {
            return refused.into_response();
        }
        fields
    } else {
        Fields::parse(parts.uri.query().unwrap_or_default().as_bytes())
    };
    let cx = Cx {
        state,
        signed,
        headers: parts.headers,
        params,
        fields,
    };
    let mut response = handler(cx).await;
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_nothing_else_is_it() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; mcpd_console=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("tok"));
        let mut other = HeaderMap::new();
        other.append(
            header::COOKIE,
            "mcpd_consolex=tok; x=mcpd_console".parse().unwrap(),
        );
        assert_eq!(cookie_token(&other), None);
        let cookie = set_cookie("tok", 60);
        let cookie = cookie.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
            assert!(cookie.contains(part), "{cookie}");
        }
    }

    #[test]
    fn fields_are_decoded_and_the_first_of_a_name_counts() {
        let f = Fields::parse(b"name=a%2Fb+c&csrf=&name=second&x=%E2%9C%93");
        assert_eq!(f.get("name"), "a/b c");
        assert_eq!(f.get("x"), "\u{2713}");
        assert_eq!(f.get("missing"), "");
        assert_eq!(f.given("csrf"), None);
        assert_eq!(f.given("name"), Some("a/b c"));
        assert_eq!(f.iter().count(), 4);
    }

    #[test]
    fn a_change_needs_the_sessions_token_from_this_origin() {
        let signed = Signed {
            user: "u".into(),
            csrf: csrf_of("tok"),
            local: false,
        };
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert!(check_change(&signed, same_origin(&h), &csrf_of("tok")).is_ok());
        assert!(check_change(&signed, same_origin(&h), &csrf_of("other")).is_err());
        assert!(check_change(&signed, same_origin(&h), "").is_err());
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(check_change(&signed, same_origin(&h), &csrf_of("tok")).is_err());
        h.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(check_change(&signed, same_origin(&h), &csrf_of("tok")).is_ok());
    }
}
