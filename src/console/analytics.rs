//! Analytics: calls, error rate and latency (p50/p95) per tool, server and profile over a
//! window, as tables and bar charts (SVG drawn here: no chart library, no script).

use super::layout::page;
use super::session::Signed;
use crate::admin::Admin;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mcp_director_api::AdminApi;
use mcp_director_api::models::AnalyticsRow;
use serde::Deserialize;

/// The windows offered: seconds and name.
const WINDOWS: &[(u64, &str)] = &[
    (3600, "last hour"),
    (86_400, "last day"),
    (604_800, "last week"),
];

#[derive(Deserialize)]
pub struct Window {
    window: Option<u64>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(q): Query<Window>,
) -> Response {
    let window = q
        .window
        .filter(|w| WINDOWS.iter().any(|(s, _)| s == w))
        .unwrap_or(3600);
    let query = mcp_director_api::GetAnalyticsQuery {
        window_secs: Some(window),
    };
    let rows = Admin(state)
        .get_analytics(query)
        .await
        .map(|r| r.rows)
        .unwrap_or_default();
    // Per server and per profile: the tool rows added up.
    let by = |key: fn(&AnalyticsRow) -> &str| {
        let mut sums: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for r in &rows {
            let e = sums.entry(key(r).to_string()).or_default();
            e.0 += r.calls;
            e.1 += r.errors;
        }
        sums
    };
    // A tool as clients see it: its server's name before its own.
    let label = |r: &AnalyticsRow| {
        if r.server.is_empty() {
            r.name.clone()
        } else {
            format!("{}/{}", r.server, r.name)
        }
    };
    let servers = by(|r| &r.server);
    let profiles = by(|r| &r.profile);
    let body = html! {
        nav aria-label="Window" class="search" {
            @for (secs, name) in WINDOWS {
                a href={ "/ui/analytics?window=" (secs) } aria-current=[(*secs == window).then_some("page")] { (name) }
            }
        }
        @if rows.is_empty() {
            p class="muted" id="no-calls" { "No calls in this window." }
        } @else {
            h2 { "Calls per tool" }
            (bars("Calls per tool", rows.iter().map(|r| (label(r), r.calls as f64, r.errors > 0)), |v| format!("{v:.0}")))
            h2 { "p95 latency per tool (ms)" }
            (bars("p95 latency per tool in milliseconds", rows.iter().map(|r| (label(r), r.p95_ms, false)), |v| format!("{v:.1}")))
            div class="table" {
                table id="analytics" {
                    thead { tr {
                        th scope="col" { "Tool" } th scope="col" { "Server" } th scope="col" { "Profile" }
                        th scope="col" { "Calls" } th scope="col" { "Errors" } th scope="col" { "Error rate" }
                        th scope="col" { "p50 ms" } th scope="col" { "p95 ms" }
                    } }
                    tbody {
                        @for r in &rows {
                            @let tool = label(r);
                            tr data-tool=(tool) {
                                th scope="row" { code { (tool) } }
                                td { (r.server) } td { (r.profile) }
                                td class="calls" { (r.calls) } td { (r.errors) }
                                td { (format!("{:.1} %", r.error_rate * 100.0)) }
                                td { (format!("{:.1}", r.p50_ms)) } td { (format!("{:.1}", r.p95_ms)) }
                            }
                        }
                    }
                }
            }
            h2 { "Per server" }
            (totals("servers", &servers))
            h2 { "Per profile" }
            (totals("profiles", &profiles))
        }
    };
    page(
        StatusCode::OK,
        "Analytics",
        Some(&signed),
        "/ui/analytics",
        body,
    )
}

fn totals(id: &str, sums: &std::collections::BTreeMap<String, (u64, u64)>) -> Markup {
    html! {
        div class="table" {
            table id={ "analytics-" (id) } {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Calls" } th scope="col" { "Errors" } } }
                tbody {
                    @for (name, (calls, errors)) in sums {
                        tr { th scope="row" { (if name.is_empty() { "(none)" } else { name.as_str() }) } td { (calls) } td { (errors) } }
                    }
                }
            }
        }
    }
}

/// A horizontal bar chart: one bar per `(label, value, with errors)`, longest first (20 at most).
fn bars(
    title: &str,
    items: impl Iterator<Item = (String, f64, bool)>,
    show: fn(f64) -> String,
) -> Markup {
    let mut items: Vec<_> = items.collect();
    items.sort_by(|a, b| b.1.total_cmp(&a.1));
    items.truncate(20);
    let max = items
        .iter()
        .map(|i| i.1)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (label_w, bar_w, row_h) = (220.0, 420.0, 22.0);
    let height = row_h * items.len() as f64 + 4.0;
    html! {
        svg class="bars" role="img" aria-label=(title) viewBox={ "0 0 " (label_w + bar_w + 80.0) " " (height) }
            width=(label_w + bar_w + 80.0) height=(height) {
            title { (title) }
            @for (i, (label, value, bad)) in items.iter().enumerate() {
                @let y = i as f64 * row_h + 2.0;
                text x=(label_w - 6.0) y=(y + 15.0) text-anchor="end" { (label) }
                rect class=(if *bad { "bar bad" } else { "bar" }) x=(label_w) y=(y + 3.0) height=(row_h - 6.0) width=((value / max * bar_w).max(1.0)) {}
                text x=(label_w + (value / max * bar_w).max(1.0) + 6.0) y=(y + 15.0) { (show(*value)) }
            }
        }
    }
}
