//! The overview: every upstream with its state and why, its calls and errors of the last
//! hour, sessions and tasks; kept live (the script fetches `/ui/live/overview` every 2 s).

use super::layout::{page, respond};
use super::session::Cx;
use crate::admin::Admin;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mcp_director_api::AdminApi;

pub async fn show(cx: Cx) -> Response {
    let live = live_part(&cx.state).await;
    page(
        StatusCode::OK,
        "Overview",
        Some(&cx.signed),
        "/ui/",
        html! { section id="live" data-live="/ui/live/overview" aria-live="polite" { (live) } },
    )
}

pub async fn live(cx: Cx) -> Response {
    respond(StatusCode::OK, live_part(&cx.state).await.into_string())
}

async fn live_part(state: &AppState) -> Markup {
    let admin = Admin(state.clone());
    let servers = admin.list_servers().await.unwrap_or_default();
    let mut rows = Vec::new();
    for s in &servers {
        let Some(name) = s.name.as_ref().map(|n| n.to_string()) else {
            continue;
        };
        rows.push(admin.get_server_status(name).await.ok());
    }
    // Calls and errors of the last hour, per server.
    let hour = mcp_director_api::GetAnalyticsQuery {
        window_secs: Some(3600),
        buckets: Some(1),
        ..Default::default()
    };
    let mut usage: std::collections::HashMap<String, (u64, u64)> = Default::default();
    for r in admin
        .get_analytics(hour)
        .await
        .map(|r| r.rows)
        .unwrap_or_default()
    {
        let u = usage.entry(r.server).or_default();
        u.0 += r.calls;
        u.1 += r.errors;
    }
    let sessions = state.gateway.sessions().len();
    let tasks = crate::tasks::count_by_status(&state.store)
        .await
        .unwrap_or_default();
    html! {
        div class="cards" {
            div class="card" { span { "Upstream servers" } strong { (servers.len()) } }
            div class="card" { span { "Running" } strong id="running-count" {
                (rows.iter().flatten().filter(|s| s.state.to_string() == "running").count())
            } }
            div class="card" { span { "Client sessions" } strong { (sessions) } }
            @for (status, n) in &tasks {
                div class="card" { span { "Tasks " (status) } strong { (n) } }
            }
        }
        h2 { "Upstream servers" }
        @if rows.is_empty() {
            p class="muted" { "No servers yet. " a href="/ui/servers" { "Add one" } "." }
        } @else {
            div class="table" {
                table id="upstreams" {
                    caption class="muted" { "Each upstream's state, updated every 2 seconds" }
                    thead { tr {
                        th scope="col" { "Server" } th scope="col" { "State" } th scope="col" { "Transport" }
                        th scope="col" { "Protocol" } th scope="col" { "Tools" }
                        th scope="col" { "Calls, last hour" } th scope="col" { "Errors" } th scope="col" { "Restarts" }
                        th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for status in rows.iter().flatten() {
                            @let state = status.state.to_string();
                            tr data-server=(status.name) {
                                th scope="row" { (status.name) }
                                td class={ "state state-" (state) } { (state) }
                                td { (status.transport.to_string()) }
                                td {
                                    @if let Some(era) = &status.protocol_era { (era.to_string()) " " }
                                    span class="muted" { (status.protocol_version.clone().unwrap_or_default()) }
                                }
                                td { (status.tools.map(|t| t.to_string()).unwrap_or_else(|| "–".into())) }
                                @let (calls, errors) = usage.get(&status.name).copied().unwrap_or_default();
                                td class="calls" { (calls) }
                                td class=[(errors > 0).then_some("error")] { (errors) }
                                td { (status.restarts) }
                                td class="error" { (status.last_error.clone().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    }
}
