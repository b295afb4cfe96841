//! Tasks: the async tasks of every client, newest first, by status; a running one cancelled
//! (as its owner's `tasks/cancel` would). Kept live like the overview.

use super::layout::{action_button, notices, page, respond};
use super::session::{Checked, Signed, Token};
use crate::admin::Admin;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mcp_director_api::{AdminApi, ListTasksQuery};
use serde::Deserialize;

/// The statuses offered as filters (`""`: all).
const STATUSES: &[&str] = &[
    "",
    "working",
    "input_required",
    "completed",
    "failed",
    "cancelled",
];

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    status: String,
    notice: Option<String>,
}

impl Filter {
    /// The status asked for, if it is one of [`STATUSES`]; else all (`""`).
    fn status(&self) -> &str {
        let s = self.status.as_str();
        if STATUSES.contains(&s) { s } else { "" }
    }
}

pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(q): Query<Filter>,
) -> Response {
    let status = q.status();
    let list = list_part(&state, &signed, status).await;
    let body = html! {
        (notices(q.notice.as_deref(), None))
        nav aria-label="Status" class="search" {
            @for s in STATUSES {
                a href={ "/ui/tasks?status=" (s) } aria-current=[(*s == status).then_some("page")] {
                    (if s.is_empty() { "all" } else { s })
                }
            }
        }
        section id="live" data-live={ "/ui/live/tasks?status=" (status) } aria-live="polite" { (list) }
    };
    page(StatusCode::OK, "Tasks", Some(&signed), "/ui/tasks", body)
}

pub async fn live(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(q): Query<Filter>,
) -> Response {
    let status = q.status();
    respond(
        StatusCode::OK,
        list_part(&state, &signed, status).await.into_string(),
    )
}

async fn list_part(state: &AppState, signed: &Signed, status: &str) -> Markup {
    let query = ListTasksQuery {
        status: Some(status.to_string()),
        limit: Some(200),
    };
    let tasks = Admin(state.clone()).list_tasks(query).await;
    html! {
        @match tasks {
            Err(e) => p class="error" role="alert" { (e.to_string()) },
            Ok(tasks) if tasks.is_empty() => p class="muted" id="no-tasks" { "No tasks." },
            Ok(tasks) => div class="table" {
                table id="tasks" {
                    caption class="muted" { "The newest 200, updated every 2 seconds" }
                    thead { tr {
                        th scope="col" { "Task" } th scope="col" { "Status" } th scope="col" { "Owner" }
                        th scope="col" { "Created" } th scope="col" { "Updated" } th scope="col" { "Message" }
                        th scope="col" { span class="muted" { "Actions" } }
                    } }
                    tbody {
                        @for t in &tasks {
                            @let status = t.status.to_string();
                            tr data-task=(t.task_id) data-status=(status) {
                                th scope="row" { code { (t.task_id.get(..12).unwrap_or(&t.task_id)) "…" } }
                                td class={ "state state-" (status) } { (status) }
                                td { (t.owner) }
                                td { (t.created_at.get(..19).unwrap_or(&t.created_at).replace('T', " ")) }
                                td { (t.updated_at.get(..19).unwrap_or(&t.updated_at).replace('T', " ")) }
                                td { (t.status_message.clone().unwrap_or_default()) }
                                td class="actions" {
                                    @if matches!(status.as_str(), "working" | "input_required") {
                                        (action_button(signed, &format!("/ui/tasks/{}/cancel", t.task_id), "Cancel", &format!("task {}", t.task_id.get(..12).unwrap_or(&t.task_id)), true))
                                    }
                                }
                            }
                        }
                    }
                }
            },
        }
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Checked<Token>,
) -> Response {
    let short = id.get(..12).unwrap_or(&id).to_string();
    match Admin(state).cancel_task(id).await {
        Ok(_) => super::layout::done("/ui/tasks", &format!("Cancelled task {short}…")),
        Err(e) => super::layout::done("/ui/tasks", &format!("Task {short}… not cancelled: {e}")),
    }
}
