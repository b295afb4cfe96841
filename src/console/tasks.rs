//! Tasks: the async tasks of every client, newest first, by status; a running one cancelled
//! (as its owner's `tasks/cancel` would). Kept live like the overview.

use super::layout::{action_button, notices, page, respond};
use super::session::{Cx, Signed};
use crate::admin::Admin;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mcp_director_api::{AdminApi, ListTasksQuery};

/// The statuses offered as filters (`""`: all).
const STATUSES: &[&str] = &[
    "",
    "working",
    "input_required",
    "completed",
    "failed",
    "cancelled",
];

/// The status asked for, if it is one of [`STATUSES`]; else all (`""`).
fn status(cx: &Cx) -> &'static str {
    let asked = cx.fields.get("status");
    STATUSES
        .iter()
        .find(|s| **s == asked)
        .copied()
        .unwrap_or("")
}

pub async fn show(cx: Cx) -> Response {
    let status = status(&cx);
    let list = list_part(&cx.state, &cx.signed, status).await;
    let body = html! {
        (notices(cx.fields.given("notice"), None))
        nav aria-label="Status" class="search" {
            @for s in STATUSES {
                a href={ "/ui/tasks?status=" (s) } aria-current=[(*s == status).then_some("page")] {
                    (if s.is_empty() { "all" } else { s })
                }
            }
        }
        section id="live" data-live={ "/ui/live/tasks?status=" (status) } aria-live="polite" { (list) }
    };
    page(StatusCode::OK, "Tasks", Some(&cx.signed), "/ui/tasks", body)
}

pub async fn live(cx: Cx) -> Response {
    let list = list_part(&cx.state, &cx.signed, status(&cx)).await;
    respond(StatusCode::OK, list.into_string())
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

pub async fn cancel(cx: Cx) -> Response {
    let id = cx.param(0);
    let short = id.get(..12).unwrap_or(id);
    match Admin(cx.state.clone()).cancel_task(id.to_string()).await {
        Ok(_) => super::layout::done("/ui/tasks", &format!("Cancelled task {short}…")),
        Err(e) => super::layout::done("/ui/tasks", &format!("Task {short}… not cancelled: {e}")),
    }
}
