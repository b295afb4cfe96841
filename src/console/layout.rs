//! The frame every console page shares: navigation, the signed-in user, and the headers that
//! keep a page to itself (no framing, no script or style from elsewhere, nothing cached).

use super::session::Signed;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The pages in the navigation: path and name.
const NAV: &[(&str, &str)] = &[
    ("/ui/", "Overview"),
    ("/ui/servers", "Servers"),
    ("/ui/tools", "Catalog"),
    ("/ui/playground", "Playground"),
    ("/ui/profiles", "Profiles"),
    ("/ui/projects", "Projects"),
    ("/ui/tasks", "Tasks"),
    ("/ui/oauth", "OAuth"),
    ("/ui/analytics", "Analytics"),
    ("/ui/config", "Configuration"),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page: `current` is the navigation entry it is.
pub fn page(
    status: StatusCode,
    title: &str,
    signed: Option<&Signed>,
    current: &str,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · MCP Director" }
                link rel="stylesheet" href="/ui/assets/console.css";
                link rel="icon" href="/ui/assets/favicon.svg" type="image/svg+xml";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    span class="brand" { "MCP Director" }
                    @if let Some(signed) = signed {
                        nav aria-label="Console" {
                            ul {
                                @for (path, name) in NAV {
                                    li { a href=(path) aria-current=[(*path == current).then_some("page")] { (name) } }
                                }
                            }
                        }
                        div class="who" {
                            @if signed.local {
                                span { "On this machine" }
                            } @else {
                                span { "Signed in as " strong { (signed.user) } }
                                form method="post" action="/ui/logout" {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    button type="submit" class="link" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    respond(status, markup.into_string())
}

/// A button that POSTs to `action` with the session's CSRF token: `verb` on `what` (its
/// accessible name says both); `danger` for what cannot be undone.
pub fn action_button(
    signed: &Signed,
    action: &str,
    verb: &str,
    what: &str,
    danger: bool,
) -> Markup {
    html! {
        form class="inline" method="post" action=(action) {
            input type="hidden" name="csrf" value=(signed.csrf);
            button type="submit" class=[danger.then_some("danger")] aria-label={ (verb) " " (what) } { (verb) }
        }
    }
}

/// What the last change did (`notice`) or why it failed (`error`), above a page's content.
pub fn notices(notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(n) = notice { p class="notice" role="status" { (n) } }
        @if let Some(e) = error { p class="notice error" role="alert" { (e) } }
    }
}

/// A form field of names separated by commas or spaces (`a, b c`), as a list.
pub fn names(field: &str) -> Vec<String> {
    field
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A form field of one entry per line, as a list (blank lines left out).
pub fn lines(field: &str) -> Vec<String> {
    field
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A form's name field as the model's name type (whose pattern it must match).
pub fn name<T: std::str::FromStr<Err: std::fmt::Display>>(field: &str) -> Result<T, String> {
    field.trim().parse().map_err(|e| format!("name: {e}"))
}

/// A form field that may be left empty: its trimmed text, if any.
pub fn optional(field: &str) -> Option<String> {
    Some(field.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// `s` as one part of a URL (a path segment or a query value).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// After a change: back to `page`, which says `notice`.
pub fn done(page: &str, notice: &str) -> Response {
    let notice = encode(notice);
    axum::response::Redirect::to(&format!("{page}?notice={notice}")).into_response()
}

/// A page saying one thing (a refusal, an error).
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, None, "", html! { p { (text) } })
}

/// An HTML answer (a page, or a fragment of one) with the console's headers.
pub fn respond(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // same-origin, not no-referrer: with no-referrer a form's POST says `Origin: null`.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
