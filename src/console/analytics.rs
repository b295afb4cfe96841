//! Analytics: calls, error rate and latency (p50/p95) per tool, server and profile over a
//! window, as tables and bar charts (SVG drawn here: no chart library, no script).

use super::layout::page;
use super::session::Cx;
use crate::admin::Admin;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mcp_director_api::AdminApi;
use mcp_director_api::models::AnalyticsRow;

/// The windows offered: seconds and name.
const WINDOWS: &[(u64, &str)] = &[
    (3600, "last hour"),
    (86_400, "last day"),
    (604_800, "last week"),
];

/// The profile filter's value for sessions without a profile.
const NO_PROFILE: &str = "~";

/// The page's filters: `window` (seconds, one of [`WINDOWS`]), `server`, and `profile` (`""`:
/// every profile; [`NO_PROFILE`]: sessions without one).
pub async fn show(cx: Cx) -> Response {
    let (state, signed) = (&cx.state, &cx.signed);
    let window = cx.fields.get("window").parse().ok();
    let window = window
        .filter(|w| WINDOWS.iter().any(|(s, _)| s == w))
        .unwrap_or(3600);
    let (server, profile) = (cx.fields.get("server"), cx.fields.get("profile"));
    let query = mcp_director_api::GetAnalyticsQuery {
        window_secs: Some(window),
        server: (!server.is_empty()).then(|| server.to_string()),
        profile: match profile {
            "" => None,
            NO_PROFILE => Some(String::new()),
            p => Some(p.to_string()),
        },
        buckets: Some(24),
        name: None,
    };
    let (rows, series) = Admin(state.clone())
        .get_analytics(query)
        .await
        .map(|r| (r.rows, r.series))
        .unwrap_or_default();
    let config = state.config.effective();
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
        form class="pick" method="get" action="/ui/analytics" {
            div class="field" {
                label for="window" { "Window" }
                select id="window" name="window" {
                    @for (secs, name) in WINDOWS {
                        option value=(secs) selected[*secs == window] { (name) }
                    }
                }
            }
            div class="field" {
                label for="server" { "Server" }
                select id="server" name="server" {
                    option value="" { "every server" }
                    @for name in config.servers.keys() {
                        option value=(name) selected[*name == server] { (name) }
                    }
                }
            }
            div class="field" {
                label for="profile" { "Profile" }
                select id="profile" name="profile" {
                    option value="" { "every profile" }
                    option value=(NO_PROFILE) selected[profile == NO_PROFILE] { "(no profile)" }
                    @for name in config.profiles.keys() {
                        option value=(name) selected[*name == profile] { (name) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        @if rows.is_empty() {
            p class="muted" id="no-calls" { "No calls in this window." }
        } @else {
            h2 { "Calls and errors over time (UTC)" }
            (lines(
                "Calls and errors over time",
                &series.iter().map(|b| b.start.as_str()).collect::<Vec<_>>(),
                &[("calls", "calls", series.iter().map(|b| b.calls as f64).collect()),
                  ("errors", "errors", series.iter().map(|b| b.errors as f64).collect())],
                |v| format!("{v:.0}"),
            ))
            h2 { "Latency over time (ms, UTC)" }
            (lines(
                "Latency over time in milliseconds",
                &series.iter().map(|b| b.start.as_str()).collect::<Vec<_>>(),
                &[("p50", "p50", series.iter().map(|b| b.p50_ms).collect()),
                  ("p95", "p95", series.iter().map(|b| b.p95_ms).collect())],
                |v| format!("{v:.1}"),
            ))
            h2 { "Calls per tool" }
            (bars("Calls per tool", rows.iter().map(|r| (label(r), r.calls as f64, r.errors > 0)).collect(), |v| format!("{v:.0}")))
            h2 { "p95 latency per tool (ms)" }
            (bars("p95 latency per tool in milliseconds", rows.iter().map(|r| (label(r), r.p95_ms, false)).collect(), |v| format!("{v:.1}")))
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
        Some(signed),
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
fn bars(title: &str, mut rest: Vec<(String, f64, bool)>, show: fn(f64) -> String) -> Markup {
    // The 20 longest, picked one by one (a sort would add more code than 20 bars need).
    let mut items = Vec::new();
    while items.len() < 20 {
        let longest = (0..rest.len())
            .rev()
            .max_by(|&a, &b| rest[a].1.total_cmp(&rest[b].1));
        let Some(i) = longest else { break };
        items.push(rest.remove(i));
    }
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

/// A line chart over time: one line per `(class, name, values)`, the x axis the buckets'
/// starts (`labels`, RFC 3339; the first and last are written), a legend naming each line.
fn lines(
    title: &str,
    labels: &[&str],
    series: &[(&str, &str, Vec<f64>)],
    show: fn(f64) -> String,
) -> Markup {
    let (w, h, left, bottom) = (720.0, 180.0, 56.0, 22.0);
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let n = labels.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + (w - left - 10.0) * i as f64 / n;
    let y = |v: f64| 8.0 + (h - bottom - 8.0) * (1.0 - v / max);
    let time = |t: &str| t.get(5..16).unwrap_or(t).replace('T', " ");
    html! {
        svg class="lines" role="img" aria-label=(title) viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) {
            title { (title) }
            line class="axis" x1=(left) y1=(y(0.0)) x2=(w - 10.0) y2=(y(0.0)) {}
            line class="axis" x1=(left) y1=(y(max)) x2=(w - 10.0) y2=(y(max)) {}
            text x=(left - 6.0) y=(y(max) + 4.0) text-anchor="end" { (show(max)) }
            text x=(left - 6.0) y=(y(0.0) + 4.0) text-anchor="end" { "0" }
            @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                text x=(left) y=(h - 4.0) { (time(first)) }
                text x=(w - 10.0) y=(h - 4.0) text-anchor="end" { (time(last)) }
            }
            @for (class, _, values) in series {
                polyline class=(class) points=(values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect::<Vec<_>>().join(" ")) {}
            }
        }
        ul class="legend" {
            @for (class, name, values) in series {
                li { svg class="lines" width="16" height="6" aria-hidden="true" { line class=(class) x1="0" y1="3" x2="16" y2="3" {} }
                     " " (name) " (highest " (show(values.iter().copied().fold(0.0, f64::max))) ")" }
            }
        }
    }
}
