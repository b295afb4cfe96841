//! Projects: which servers a project's sessions use (`/mcp?project=`), with the working
//! directory and roots its stdio children get; one created, one deleted.

use super::layout::{action_button, names, notices, optional, page};
use super::servers::Added;
use super::session::{Checked, Signed, Token};
use crate::admin::Admin;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use mcp_director_api::AdminApi;
use serde::Deserialize;

pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(q): Query<Added>,
) -> Response {
    render(&state, &signed, StatusCode::OK, q.notice.as_deref(), None).await
}

/// The create form's fields.
#[derive(Deserialize, Default)]
pub struct NewProject {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Names separated by spaces or commas.
    #[serde(default)]
    servers: String,
    #[serde(default)]
    cwd: String,
}

impl super::session::CsrfForm for NewProject {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn create(
    State(state): State<AppState>,
    Checked { signed, form }: Checked<NewProject>,
) -> Response {
    let body = serde_json::json!({
        "name": form.name.trim(),
        "description": optional(&form.description),
        "servers": names(&form.servers),
        "cwd": optional(&form.cwd),
    });
    let created = match serde_json::from_value(body) {
        Ok(project) => Admin(state.clone())
            .create_project(project)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match created {
        Ok(_) => super::layout::done("/ui/projects", &format!("Created {}.", form.name.trim())),
        Err(e) => render(&state, &signed, StatusCode::BAD_REQUEST, None, Some(&e)).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Checked { signed, .. }: Checked<Token>,
) -> Response {
    match Admin(state.clone()).delete_project(name.clone()).await {
        Ok(_) => super::layout::done("/ui/projects", &format!("Deleted {name}.")),
        Err(e) => {
            let e = e.to_string();
            render(&state, &signed, StatusCode::BAD_REQUEST, None, Some(&e)).await
        }
    }
}

async fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let projects = Admin(state.clone())
        .list_projects()
        .await
        .unwrap_or_default();
    let body = html! {
        (notices(notice, error))
        @if projects.is_empty() {
            p class="muted" id="no-projects" { "No projects: every session sees every server." }
        } @else {
            div class="table" {
                table id="projects" {
                    thead { tr {
                        th scope="col" { "Project" } th scope="col" { "Servers" } th scope="col" { "Working directory" }
                        th scope="col" { "Roots" } th scope="col" { span class="muted" { "Actions" } }
                    } }
                    tbody {
                        @for p in &projects {
                            @let name = p.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                            tr data-project=(name) {
                                th scope="row" { (name) @if let Some(d) = &p.description { br; span class="muted" { (d) } } }
                                td { @if p.servers.is_empty() { span class="muted" { "all" } } @else { (p.servers.join(", ")) } }
                                td { code { (p.cwd.clone().unwrap_or_default()) } }
                                td { @for r in &p.roots { code { (r.uri) } br; } }
                                td { (action_button(signed, &format!("/ui/projects/{name}/delete"), "Delete", &name, true)) }
                            }
                        }
                    }
                }
            }
        }
        p class="hint" { "Clients choose a project with " code { "/mcp?project=name" } " (or " code { "--project" } " on stdio)." }
        h2 id="create" { "Create a project" }
        form class="stack" method="post" action="/ui/projects" aria-labelledby="create" {
            input type="hidden" name="csrf" value=(signed.csrf);
            div { label for="j-name" { "Name" } input id="j-name" name="name" required autocomplete="off"; }
            div { label for="j-description" { "Description" } input id="j-description" name="description" autocomplete="off"; }
            div { label for="j-servers" { "Servers " span class="hint" { "(names separated by spaces or commas; empty: all)" } }
                  input id="j-servers" name="servers" autocomplete="off"; }
            div { label for="j-cwd" { "Working directory " span class="hint" { "(of its stdio servers' processes)" } }
                  input id="j-cwd" name="cwd" autocomplete="off"; }
            div { button type="submit" { "Create project" } }
        }
    };
    page(status, "Projects", Some(signed), "/ui/projects", body)
}
