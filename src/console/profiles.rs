//! Profiles: who sees which servers and tools. A profile that requires a token gets one when
//! it is created, shown on that page only (the store keeps its hash).

use super::layout::{action_button, lines, name, names, optional, page};
use super::session::Cx;
use crate::admin::Admin;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use mcp_director_api::AdminApi;
use mcp_director_api::models::Profile;

pub async fn show(cx: Cx) -> Response {
    render(&cx, StatusCode::OK, cx.fields.given("notice"), None, None).await
}

/// The create form as a profile (`allow` and `deny`: one pattern per line).
fn profile(cx: &Cx) -> Result<Profile, String> {
    let f = &cx.fields;
    Ok(Profile {
        name: Some(name(f.get("name"))?),
        description: optional(f.get("description")),
        servers: names(f.get("servers")),
        allow: lines(f.get("allow")),
        deny: lines(f.get("deny")),
        require_token: f.given("require_token").is_some(),
        ..Profile::default()
    })
}

pub async fn create(cx: Cx) -> Response {
    let created = match profile(&cx) {
        Ok(profile) => Admin(cx.state.clone())
            .create_profile(profile)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => {
            let name = c.profile.name.map(|n| n.to_string()).unwrap_or_default();
            match c.token {
                Some(token) => {
                    let shown = token_shown(&format!("Created {name}."), &token);
                    render(&cx, StatusCode::CREATED, None, None, Some(shown)).await
                }
                None => super::layout::done("/ui/profiles", &format!("Created {name}.")),
            }
        }
        Err(e) => render(&cx, StatusCode::BAD_REQUEST, None, Some(&e), None).await,
    }
}

/// A new token, shown on this answer only: never in a URL, never stored.
fn token_shown(what: &str, token: &str) -> Markup {
    html! {
        div class="notice" role="status" id="new-token" {
            p { (what) " Its token, shown this once:" }
            pre { code id="token" { (token) } }
            p class="hint" { "Clients pass it as " code { "?token=…" } " or " code { "Authorization: Bearer …" } "." }
        }
    }
}

/// A profile's deletion or token rotation (`/ui/profiles/{name}/{action}`).
pub async fn act(cx: Cx) -> Response {
    let name = cx.param(0).to_string();
    let admin = Admin(cx.state.clone());
    let error = match cx.param(1) {
        "delete" => match admin.delete_profile(name.clone()).await {
            Ok(_) => return super::layout::done("/ui/profiles", &format!("Deleted {name}.")),
            Err(e) => e,
        },
        "token" => match admin.rotate_profile_token(name.clone()).await {
            Ok(c) => {
                let what = format!("{name} has a new token; the old one no longer works.");
                let shown = token_shown(&what, c.token.as_deref().unwrap_or_default());
                return render(&cx, StatusCode::OK, None, None, Some(shown)).await;
            }
            Err(e) => e,
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let error = error.to_string();
    render(&cx, StatusCode::BAD_REQUEST, None, Some(&error), None).await
}

async fn render(
    cx: &Cx,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    extra: Option<Markup>,
) -> Response {
    let signed = &cx.signed;
    let admin = Admin(cx.state.clone());
    let profiles = admin.list_profiles().await.unwrap_or_default();
    let servers = admin.list_servers().await.unwrap_or_default();
    let body = html! {
        (super::layout::notices(notice, error))
        @if let Some(x) = extra { (x) }
        div class="table" {
            table id="profiles" {
                thead { tr {
                    th scope="col" { "Profile" } th scope="col" { "Servers" } th scope="col" { "Allow" }
                    th scope="col" { "Deny" } th scope="col" { "Token" } th scope="col" { span class="muted" { "Actions" } }
                } }
                tbody {
                    @for p in &profiles {
                        @let name = p.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                        tr data-profile=(name) {
                            th scope="row" { (name) @if let Some(d) = &p.description { br; span class="muted" { (d) } } }
                            td { @if p.servers.is_empty() { span class="muted" { "all" } } @else { (p.servers.join(", ")) } }
                            td { (p.allow.join(", ")) }
                            td { (p.deny.join(", ")) }
                            td { @if p.require_token { "required" } @else { span class="muted" { "none" } } }
                            td class="actions" {
                                (action_button(signed, &format!("/ui/profiles/{name}/token"), if p.require_token { "Rotate token" } else { "Make token" }, &name, false))
                                " "
                                (action_button(signed, &format!("/ui/profiles/{name}/delete"), "Delete", &name, true))
                            }
                        }
                    }
                }
            }
        }
        h2 id="create" { "Create a profile" }
        form class="stack" method="post" action="/ui/profiles" aria-labelledby="create" {
            input type="hidden" name="csrf" value=(signed.csrf);
            div { label for="p-name" { "Name" } input id="p-name" name="name" required autocomplete="off"; }
            div { label for="p-description" { "Description" } input id="p-description" name="description" autocomplete="off"; }
            div { label for="p-servers" { "Servers " span class="hint" { "(names separated by spaces or commas; empty: all. Configured: " (servers.iter().filter_map(|s| s.name.as_ref().map(|n| n.to_string())).collect::<Vec<_>>().join(", ")) ")" } }
                  input id="p-servers" name="servers" autocomplete="off"; }
            div { label for="p-allow" { "Allow " span class="hint" { "(tool name patterns such as fs/read_*, one per line; empty: all)" } }
                  textarea id="p-allow" name="allow" rows="2" {} }
            div { label for="p-deny" { "Deny " span class="hint" { "(patterns, one per line)" } }
                  textarea id="p-deny" name="deny" rows="2" {} }
            div { label { input type="checkbox" name="require_token" value="on" checked; " Requires a token (one is made and shown once)" } }
            div { button type="submit" { "Create profile" } }
        }
    };
    page(status, "Profiles", Some(signed), "/ui/profiles", body)
}
