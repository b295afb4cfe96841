//! Projects: which servers a project's sessions use (`/mcp?project=`), with the working
//! directory and roots its stdio children get; one created, one deleted.

use super::layout::{action_button, name, names, notices, optional, page};
use super::session::Cx;
use crate::admin::Admin;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use mcp_director_api::AdminApi;
use mcp_director_api::models::Project;

pub async fn show(cx: Cx) -> Response {
    render(&cx, StatusCode::OK, cx.fields.given("notice"), None).await
}

/// The create form as a project (`servers`: names separated by spaces or commas).
fn project(cx: &Cx) -> Result<Project, String> {
    let f = &cx.fields;
    Ok(Project {
        name: Some(name(f.get("name"))?),
        description: optional(f.get("description")),
        servers: names(f.get("servers")),
        cwd: optional(f.get("cwd")),
        ..Project::default()
    })
}

pub async fn create(cx: Cx) -> Response {
    let created = match project(&cx) {
        Ok(project) => Admin(cx.state.clone())
            .create_project(project)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match created {
        Ok(p) => {
            let name = p.name.map(|n| n.to_string()).unwrap_or_default();
            super::layout::done("/ui/projects", &format!("Created {name}."))
        }
        Err(e) => render(&cx, StatusCode::BAD_REQUEST, None, Some(&e)).await,
    }
}

pub async fn delete(cx: Cx) -> Response {
    let name = cx.param(0);
    match Admin(cx.state.clone())
        .delete_project(name.to_string())
        .await
    {
        Ok(_) => super::layout::done("/ui/projects", &format!("Deleted {name}.")),
        Err(e) => {
            let e = e.to_string();
            render(&cx, StatusCode::BAD_REQUEST, None, Some(&e)).await
        }
    }
}

async fn render(
    cx: &Cx,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let signed = &cx.signed;
    let projects = Admin(cx.state.clone())
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
