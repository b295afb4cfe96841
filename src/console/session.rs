//! Who is using the console. With `[settings.auth]`: whoever signed in with the admin
//! credentials, known by a cookie (HttpOnly, SameSite=Strict, Path=/ui) whose token the store
//! keeps only hashed, for 12 hours. Without: only clients on this machine (as for `/api`),
//! each given such a session without a password. Every change is a POST from this origin
//! carrying the session's CSRF token, which is derived from the cookie's token (nothing more to
//! keep, and nothing a page of another origin can know).

use crate::client_addr::ClientAddr;
use crate::secrets::{ct_eq, random_token, sha256_hex};
use crate::state::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

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
pub fn local(client: std::net::IpAddr, request: &Request) -> bool {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    client.is_loopback() && peer.is_none_or(|p| p.is_loopback())
}

/// Lets through only a signed-in user (setting [`Signed`]); the sign-in page and the assets
/// are open. Without `[settings.auth]`, a client of this machine is signed in as `local`.
pub async fn require(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/ui/login" || path == "/ui/login/oidc" || path.starts_with("/ui/assets/") {
        return next.run(request).await;
    }
    let auth = state.config.effective().settings.auth.enabled;
    if !auth && !local(client, &request) {
        return super::layout::message(
            StatusCode::FORBIDDEN,
            "Not from here",
            "The console answers remote clients only with [settings.auth] enabled.",
        );
    }
    if let Some(token) = cookie_token(request.headers())
        && let Some(user) = lookup(&state, &token).await
    {
        request.extensions_mut().insert(Signed {
            user,
            csrf: csrf_of(&token),
            local: !auth,
        });
        return next.run(request).await;
    }
    if auth {
        return Redirect::to("/ui/login").into_response();
    }
    // A client of this machine: a session without a password.
    let Ok(token) = create(&state, "local").await else {
        return super::layout::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Store unavailable",
            "The console's sessions are kept in the store, which does not answer.",
        );
    };
    request.extensions_mut().insert(Signed {
        user: "local".into(),
        csrf: csrf_of(&token),
        local: true,
    });
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&token, LIFETIME_MS / 1000));
    response
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

/// A change may go ahead: the form's CSRF token is the session's, and the request comes from
/// this origin (when the browser says where from).
/// A change is accepted with the session's CSRF token, from a page of this origin.
fn check_change(signed: &Signed, same_origin: bool, csrf: &str) -> Result<(), Refused> {
    if !ct_eq(csrf, &signed.csrf) || !same_origin {
        return Err(Refused);
    }
    Ok(())
}

/// A form posted from a console page: it carries the session's CSRF token.
pub trait CsrfForm: serde::de::DeserializeOwned + Send {
    fn csrf(&self) -> &str;
}

/// A form of nothing but the token (a button: delete, restart, cancel, …).
#[derive(serde::Deserialize)]
pub struct Token {
    #[serde(default)]
    csrf: String,
}

impl CsrfForm for Token {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Fields as posted, in order (a form whose fields the page decides, like the playground's).
impl CsrfForm for Vec<(String, String)> {
    fn csrf(&self) -> &str {
        self.iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A change asked for from a console page, taken only with the session's CSRF token and from
/// this origin: who asked, and the form.
pub struct Checked<T> {
    pub signed: Signed,
    pub form: T,
}

impl<S: Send + Sync, T: CsrfForm> FromRequest<S> for Checked<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let signed = request
            .extensions()
            .get::<Signed>()
            .cloned()
            .ok_or_else(|| Refused.into_response())?;
        let same = same_origin(request.headers());
        let axum::Form(form) = axum::Form::<T>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_change(&signed, same, form.csrf()).map_err(IntoResponse::into_response)?;
        Ok(Checked { signed, form })
    }
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
