//! OAuth: the clients registered with the director's authorization server and the grants in
//! force (one per consent); a grant revoked, a client forgotten (its grants with it). Tokens
//! themselves are never shown: the store holds only their hashes.

use super::layout::{action_button, encode, notices, page};
use super::session::Cx;
use crate::admin::Admin;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use mcp_director_api::AdminApi;

pub async fn show(cx: Cx) -> Response {
    let (state, signed) = (&cx.state, &cx.signed);
    let admin = Admin(state.clone());
    let clients = admin.list_oauth_clients().await;
    let grants = admin.list_oauth_grants().await;
    let enabled = state.config.effective().settings.oauth.enabled;
    let when = |t: &str| t.get(..19).unwrap_or(t).replace('T', " ");
    let body = html! {
        (notices(cx.fields.given("notice"), None))
        @if !enabled {
            p class="muted" { "The authorization server is off ([settings.oauth] enabled = false): clients cannot sign in." }
        }
        h2 { "Grants in force" }
        @match &grants {
            Err(e) => p class="error" role="alert" { (e.to_string()) },
            Ok(g) if g.is_empty() => p class="muted" id="no-grants" { "No grants." },
            Ok(g) => div class="table" {
                table id="grants" {
                    thead { tr {
                        th scope="col" { "Client" } th scope="col" { "Subject" } th scope="col" { "Scope" }
                        th scope="col" { "Expires" } th scope="col" { span class="muted" { "Actions" } }
                    } }
                    tbody {
                        @for grant in g {
                            @let client = grant.client_name.clone().unwrap_or_else(|| grant.client_id.clone());
                            tr data-grant=(grant.id) {
                                th scope="row" { (client) }
                                td { (grant.subject) }
                                td { (grant.scope) }
                                td { (when(&grant.expires_at)) }
                                td class="actions" {
                                    (action_button(signed, &format!("/ui/oauth/grants/{}/revoke", grant.id), "Revoke", &format!("{client}'s grant to {}", grant.subject), true))
                                }
                            }
                        }
                    }
                }
            },
        }
        h2 { "Registered clients" }
        @match &clients {
            Err(e) => p class="error" role="alert" { (e.to_string()) },
            Ok(c) if c.is_empty() => p class="muted" id="no-clients" { "No clients." },
            Ok(c) => div class="table" {
                table id="clients" {
                    thead { tr {
                        th scope="col" { "Client" } th scope="col" { "Redirect URIs" } th scope="col" { "Grants" }
                        th scope="col" { "Registered" } th scope="col" { span class="muted" { "Actions" } }
                    } }
                    tbody {
                        @for client in c {
                            @let name = client.client_name.clone().unwrap_or_else(|| client.client_id.clone());
                            tr data-client=(client.client_id) {
                                th scope="row" { (name) br; code class="muted" { (client.client_id) } }
                                td { @for uri in &client.redirect_uris { code { (uri) } br; } }
                                td { (client.grants) }
                                td { (when(&client.created_at)) }
                                td class="actions" {
                                    (action_button(signed, &format!("/ui/oauth/clients/{}/delete", encode(&client.client_id)), "Delete", &name, true))
                                }
                            }
                        }
                    }
                }
            },
        }
    };
    page(StatusCode::OK, "OAuth", Some(signed), "/ui/oauth", body)
}

/// A grant revoked (`/ui/oauth/grants/{id}/revoke`) or a client deleted
/// (`/ui/oauth/clients/{id}/delete`).
pub async fn act(cx: Cx) -> Response {
    let id = cx.param(1).to_string();
    let admin = Admin(cx.state.clone());
    let notice = match (cx.param(0), cx.param(2)) {
        ("grants", "revoke") => match admin.revoke_oauth_grant(id).await {
            Ok(g) => format!("Revoked the grant of {} to {}.", g.client_id, g.subject),
            Err(e) => format!("Not revoked: {e}"),
        },
        ("clients", "delete") => match admin.delete_oauth_client(id).await {
            Ok(c) => format!("Deleted {} and its grants.", c.client_id),
            Err(e) => format!("Not deleted: {e}"),
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    super::layout::done("/ui/oauth", &notice)
}
