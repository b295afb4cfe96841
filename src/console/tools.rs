//! The merged catalog (tools, prompts, resources), searchable, with each definition (input
//! schema, annotations, arguments) and the profiles that see it.

use super::layout::page;
use super::session::Cx;
use crate::admin::Admin;
use crate::profile::Filter;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mcp_director_api::AdminApi;

pub async fn show(cx: Cx) -> Response {
    let (state, asked) = (&cx.state, cx.fields.get("q"));
    let admin = Admin(state.clone());
    let tools = admin.list_tools().await.unwrap_or_default();
    let prompts = admin.list_prompts().await.unwrap_or_default();
    let resources = admin.list_resources().await.unwrap_or_default();
    let q = asked.trim().to_lowercase();
    let hit = |texts: &[Option<&str>]| {
        q.is_empty()
            || texts
                .iter()
                .flatten()
                .any(|t| t.to_lowercase().contains(&q))
    };
    let tools: Vec<_> = tools
        .iter()
        .filter(|t| hit(&[Some(&t.name), t.description.as_deref()]))
        .collect();
    let prompts: Vec<_> = prompts
        .iter()
        .filter(|p| hit(&[Some(&p.name), p.description.as_deref()]))
        .collect();
    let resources: Vec<_> = resources
        .iter()
        .filter(|r| {
            hit(&[
                r.uri.as_deref(),
                r.uri_template.as_deref(),
                Some(&r.name),
                r.description.as_deref(),
            ])
        })
        .collect();
    // Which profiles see an item: each profile's own rules (a project may narrow them further).
    let config = state.config.effective();
    let profiles: Vec<(&String, Filter)> = config
        .profiles
        .iter()
        .map(|(n, p)| (n, Filter::from_profile(p)))
        .collect();
    let seen_by = |server: &str, key: &str| -> Markup {
        let names: Vec<&str> = profiles
            .iter()
            .filter(|(_, f)| f.sees(server, key))
            .map(|(n, _)| n.as_str())
            .collect();
        html! {
            @if profiles.is_empty() { span class="muted" { "(no profiles)" } }
            @else if names.is_empty() { span class="muted" { "none" } }
            @else { (names.join(", ")) }
        }
    };
    let pretty = |v: &serde_json::Map<String, serde_json::Value>| {
        serde_json::to_string_pretty(v).unwrap_or_default()
    };
    let body = html! {
        form class="search" method="get" action="/ui/tools" role="search" {
            label for="q" class="visually-hidden" { "Search the catalog" }
            input id="q" name="q" type="search" value=(asked) placeholder="Search by name, URI or description";
            button type="submit" { "Search" }
        }
        p class="muted" id="tool-count" {
            (tools.len()) " tools, " (prompts.len()) " prompts, " (resources.len()) " resources"
        }
        h2 { "Tools" }
        div class="table" {
            table id="tools" {
                thead { tr {
                    th scope="col" { "Tool" } th scope="col" { "Server" }
                    th scope="col" { "Description and definition" } th scope="col" { "Profiles that see it" }
                } }
                tbody {
                    @for t in &tools {
                        tr data-tool=(t.name) {
                            th scope="row" {
                                code { (t.name) } br;
                                a href={ "/ui/playground?tool=" (super::layout::encode(&t.name)) } aria-label={ "Try it: " (t.name) } { "Try it" }
                            }
                            td { (t.server) }
                            td {
                                @if let Some(title) = &t.title { strong { (title) } br; }
                                (t.description.clone().unwrap_or_default())
                                details {
                                    summary { "Input schema" }
                                    pre { (pretty(&t.input_schema)) }
                                }
                                @if !t.annotations.is_empty() {
                                    details {
                                        summary { "Annotations" }
                                        pre { (pretty(&t.annotations)) }
                                    }
                                }
                            }
                            td { (seen_by(&t.server, &t.name)) }
                        }
                    }
                }
            }
        }
        h2 { "Prompts" }
        @if prompts.is_empty() { p class="muted" { "None." } }
        div class="table" hidden[prompts.is_empty()] {
            table id="prompts" {
                thead { tr {
                    th scope="col" { "Prompt" } th scope="col" { "Server" }
                    th scope="col" { "Description and arguments" } th scope="col" { "Profiles that see it" }
                } }
                tbody {
                    @for p in &prompts {
                        tr data-prompt=(p.name) {
                            th scope="row" { code { (p.name) } }
                            td { (p.server) }
                            td {
                                @if let Some(title) = &p.title { strong { (title) } br; }
                                (p.description.clone().unwrap_or_default())
                                @if !p.arguments.is_empty() {
                                    ul class="args" {
                                        @for a in &p.arguments {
                                            li {
                                                code { (a.get("name").and_then(|v| v.as_str()).unwrap_or_default()) }
                                                @if a.get("required").and_then(|v| v.as_bool()) == Some(true) { " (required)" }
                                                @if let Some(d) = a.get("description").and_then(|v| v.as_str()) { ": " (d) }
                                            }
                                        }
                                    }
                                }
                            }
                            td { (seen_by(&p.server, &p.name)) }
                        }
                    }
                }
            }
        }
        h2 { "Resources" }
        @if resources.is_empty() { p class="muted" { "None." } }
        div class="table" hidden[resources.is_empty()] {
            table id="resources" {
                thead { tr {
                    th scope="col" { "URI" } th scope="col" { "Server" }
                    th scope="col" { "Name and description" } th scope="col" { "Profiles that see it" }
                } }
                tbody {
                    @for r in &resources {
                        @let key = r.uri.clone().or_else(|| r.uri_template.clone()).unwrap_or_default();
                        tr {
                            th scope="row" {
                                code { (key) }
                                @if r.uri_template.is_some() { br; span class="muted" { "template" } }
                            }
                            td { (r.server) }
                            td {
                                strong { (r.title.clone().unwrap_or_else(|| r.name.clone())) }
                                @if let Some(m) = &r.mime_type { " " span class="muted" { (m) } }
                                @if let Some(d) = &r.description { br; (d) }
                            }
                            td { (seen_by(&r.server, &key)) }
                        }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        "Catalog",
        Some(&cx.signed),
        "/ui/tools",
        body,
    )
}
