//! Profiles: who sees which servers and tools. A profile that requires a token gets one when
//! it is created, shown on that page only (the store keeps its hash).

use super::layout::{action_button, lines, names, optional, page};
use super::session::{Checked, Signed, Token};
use crate::admin::Admin;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use mcp_director_api::AdminApi;
use serde::Deserialize;

pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(q): Query<super::servers::Added>,
) -> Response {
    render(
        &state,
        &signed,
        StatusCode::OK,
        q.notice.as_deref(),
        None,
        None,
    )
    .await
}

/// The create form's fields (`servers` may repeat).
#[derive(Deserialize, Default)]
pub struct NewProfile {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    servers: String,
    /// One pattern per line.
    #[serde(default)]
    allow: String,
    #[serde(default)]
    deny: String,
    #[serde(default)]
    require_token: Option<String>,
}

impl super::session::CsrfForm for NewProfile {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn create(
    State(state): State<AppState>,
    Checked { signed, form }: Checked<NewProfile>,
) -> Response {
    let body = serde_json::json!({
        "name": form.name.trim(),
        "description": optional(&form.description),
        "servers": names(&form.servers),
        "allow": lines(&form.allow),
        "deny": lines(&form.deny),
        "require_token": form.require_token.is_some(),
    });
    let created = match serde_json::from_value(body) {
        Ok(profile) => Admin(state.clone())
            .create_profile(profile)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match created {
        Ok(c) => {
            let name = c.profile.name.map(|n| n.to_string()).unwrap_or_default();
            match c.token {
                Some(token) => {
                    let shown = token_shown(&format!("Created {name}."), &token);
                    render(
                        &state,
                        &signed,
                        StatusCode::CREATED,
                        None,
                        None,
                        Some(shown),
                    )
                    .await
                }
                None => super::layout::done("/ui/profiles", &format!("Created {name}.")),
            }
        }
        Err(e) => {
            render(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                None,
                Some(&e),
                None,
            )
            .await
        }
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
pub async fn act(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    Checked { signed, .. }: Checked<Token>,
) -> Response {
    let admin = Admin(state.clone());
    let error = match action.as_str() {
        "delete" => match admin.delete_profile(name.clone()).await {
            Ok(_) => return super::layout::done("/ui/profiles", &format!("Deleted {name}.")),
            Err(e) => e,
        },
        "token" => match admin.rotate_profile_token(name.clone()).await {
            Ok(c) => {
                let what = format!("{name} has a new token; the old one no longer works.");
                let shown = token_shown(&what, c.token.as_deref().unwrap_or_default());
                return render(&state, &signed, StatusCode::OK, None, None, Some(shown)).await;
            }
            Err(e) => e,
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let error = error.to_string();
    render(
        &state,
        &signed,
        StatusCode::BAD_REQUEST,
        None,
        Some(&error),
        None,
    )
    .await
}

async fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    extra: Option<Markup>,
) -> Response {
    let admin = Admin(state.clone());
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
