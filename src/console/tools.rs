//! The merged tool catalog, searchable, with each definition (input schema, annotations).

use super::layout::page;
use super::session::Signed;
use crate::admin::Admin;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use mcp_director_api::AdminApi;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(search): Query<Search>,
) -> Response {
    let all = Admin(state).list_tools().await.unwrap_or_default();
    let q = search.q.trim().to_lowercase();
    let found: Vec<_> = all
        .iter()
        .filter(|t| {
            q.is_empty()
                || t.name.to_lowercase().contains(&q)
                || t.description
                    .as_deref()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&q)
        })
        .collect();
    let body = html! {
        form class="search" method="get" action="/ui/tools" role="search" {
            label for="q" class="visually-hidden" { "Search tools" }
            input id="q" name="q" type="search" value=(search.q) placeholder="Search by name or description";
            button type="submit" { "Search" }
        }
        p class="muted" id="tool-count" { (found.len()) " of " (all.len()) " tools" }
        div class="table" {
            table id="tools" {
                thead { tr { th scope="col" { "Tool" } th scope="col" { "Server" } th scope="col" { "Description and definition" } } }
                tbody {
                    @for t in &found {
                        tr data-tool=(t.name) {
                            th scope="row" { code { (t.name) } }
                            td { (t.server) }
                            td {
                                @if let Some(title) = &t.title { strong { (title) } br; }
                                (t.description.clone().unwrap_or_default())
                                details {
                                    summary { "Input schema" }
                                    pre { (serde_json::to_string_pretty(&t.input_schema).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, "Tools", Some(&signed), "/ui/tools", body)
}
