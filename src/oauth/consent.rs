//! The consent page of GET /authorize (and of the OpenID Connect callback): who asks, for
//! what, and where the answer goes. Every interpolated value is HTML-escaped; the page runs no
//! script and may only be framed by nobody.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub struct View<'a> {
    pub client_name: Option<&'a str>,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a str,
    pub request_id: &'a str,
    pub csrf_token: &'a str,
    pub sign_in: SignIn<'a>,
}

pub enum SignIn<'a> {
    /// The local admin credentials are asked with the decision.
    Password,
    /// Already signed in at the OpenID Connect provider.
    SignedIn(&'a str),
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn redirect_origin(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// An authorization error shown instead of redirected: the user decides whether to follow the
/// link back to the client.
pub fn error_page(error: &str, description: &str, back: &str) -> Response {
    let host = url::Url::parse(back)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorization failed - MCP Director</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #222; }}
code {{ background: #f3f3f3; padding: 0 .2rem; }}
</style>
</head>
<body>
<h1>This authorization request cannot be completed</h1>
<p id="error"><code>{error}</code>: {description}</p>
<p>The application that sent you here asked to be answered at <strong id="redirect-host">{host}</strong>.
Continue there only if you trust it: <a id="back" href="{back}" rel="noreferrer">return to {host}</a>.</p>
</body>
</html>
"#,
        error = escape(error),
        description = escape(description),
        host = escape(&host),
        back = escape(back),
    );
    let mut r = (StatusCode::BAD_REQUEST, Html(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn page(v: &View<'_>, set_cookie: Option<HeaderValue>) -> Response {
    let client = v.client_name.unwrap_or(v.client_id);
    // A client that published its own metadata names itself: show where it did, since anyone
    // can choose a name.
    let publisher = if super::client_metadata::is_metadata_url(v.client_id) {
        let host = url::Url::parse(v.client_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        format!(
            r#" <span class="publisher" id="client-publisher">(as published by {})</span>"#,
            escape(&host)
        )
    } else {
        String::new()
    };
    let host = url::Url::parse(v.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                format!(
                    "{h}{}",
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
        })
        .unwrap_or_default();
    let scopes: String = v
        .scopes
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let sign_in = match v.sign_in {
        SignIn::Password => r#"<fieldset><legend>Sign in to approve</legend>
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
</fieldset>"#
            .to_string(),
        SignIn::SignedIn(subject) => {
            format!(r#"<p class="who">Signed in as <strong>{}</strong></p>"#, escape(subject))
        }
    };
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {client} - MCP Director</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; }}
.client {{ font-weight: 600; }}
fieldset {{ border: 1px solid #ccc; border-radius: 6px; margin: 1rem 0; }}
label {{ display: block; margin: .5rem 0; }}
input {{ display: block; width: 100%; padding: .4rem; box-sizing: border-box; }}
.buttons {{ display: flex; gap: 1rem; margin-top: 1.5rem; }}
button {{ padding: .6rem 1.4rem; font-size: 1rem; border-radius: 6px; border: 1px solid #888; cursor: pointer; }}
button[value=approve] {{ background: #1a5fb4; color: white; border-color: #1a5fb4; }}
.host {{ font-family: monospace; }}
</style>
</head>
<body>
<h1>Authorize <span class="client" id="client-name">{client}</span></h1>
<p><span class="client">{client}</span>{publisher} wants to use the MCP servers behind this director on your behalf.</p>
<p>Permissions requested:</p>
<ul id="scopes">{scopes}</ul>
<p>After your decision you will be sent to <span class="host" id="redirect-host">{host}</span>.</p>
<form method="post" action="/authorize">
<input type="hidden" name="request_id" value="{request_id}">
<input type="hidden" name="csrf_token" value="{csrf}">
{sign_in}
<div class="buttons">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>
</body>
</html>
"#,
        client = escape(client),
        host = escape(&host),
        request_id = escape(v.request_id),
        csrf = escape(v.csrf_token),
    );
    let mut r = Html(body).into_response();
    let h = r.headers_mut();
    // form-action must allow the redirect that follows the POST (browsers apply it to redirects).
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
        redirect_origin(v.redirect_uri)
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // same-origin, not no-referrer: under no-referrer browsers post the form with `Origin: null`.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Some(cookie) = set_cookie {
        h.insert(header::SET_COOKIE, cookie);
    }
    r
}
