//! The playground: call a tool as a chosen profile sees it, with a form made from the tool's
//! `inputSchema`, and see the result, the progress and the errors (as MCP Inspector shows
//! them, but through the director). The call runs in a session of its own inside the director,
//! scoped as a client of that profile would be (the operator needs no profile token), so the
//! page shows what such a client gets: a tool the profile hides is not there to call.
//!
//! Without script the form posts and the page comes back with the result; with script the
//! same POST asks for `text/event-stream` and the page shows progress as it comes.

use super::layout::page;
use super::session::{Cx, Signed};
use crate::gateway::Gateway;
use crate::jsonrpc::{Message, Request, raw};
use crate::profile::{Filter, Scope};
use crate::session::{Negotiated, Session, Sink, TransportKind};
use crate::state::AppState;
use crate::version::Version;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The profile to call as (`""`: none) and the tool.
#[derive(Default)]
pub struct Chosen {
    profile: String,
    tool: String,
}

pub async fn show(cx: Cx) -> Response {
    let chosen = Chosen {
        profile: cx.fields.get("profile").to_string(),
        tool: cx.fields.get("tool").to_string(),
    };
    render(&cx.state, &cx.signed, &chosen, &[], None)
}

/// What the playground is called with: the choice, the arguments' fields (`a.<property>`), and
/// whether to run the call as a task (the CSRF token was checked before).
struct Call {
    chosen: Chosen,
    as_task: bool,
    fields: Vec<(String, String)>,
}

impl Call {
    fn from_form(form: &super::session::Fields) -> Self {
        let mut call = Call {
            chosen: Chosen::default(),
            as_task: false,
            fields: Vec::new(),
        };
        for (k, v) in form.iter() {
            match k.as_str() {
                "profile" => call.chosen.profile = v.clone(),
                "tool" => call.chosen.tool = v.clone(),
                "as_task" => call.as_task = v == "true",
                _ => {
                    if let Some(name) = k.strip_prefix("a.") {
                        call.fields.push((name.to_string(), v.clone()));
                    }
                }
            }
        }
        call
    }
}

pub async fn call(cx: Cx) -> Response {
    let (state, signed) = (&cx.state, &cx.signed);
    let call = Call::from_form(&cx.fields);
    let streamed = cx
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let config = state.config.effective();
    let filter = match profile_filter(&config, &call.chosen.profile) {
        Ok(f) => f,
        Err(e) => return answer(state, signed, &call, streamed, Outcome::refused(e)),
    };
    let view = state.gateway.view();
    let tool = view
        .tools
        .iter()
        .find(|t| t.key == call.chosen.tool && filter.sees(&t.server, &t.key));
    let Some(tool) = tool else {
        let why = format!("This profile sees no tool `{}`.", call.chosen.tool);
        return answer(state, signed, &call, streamed, Outcome::refused(why));
    };
    let schema = tool.value.get("inputSchema").cloned().unwrap_or_default();
    let arguments = match arguments(&schema, &call.fields) {
        Ok(a) => a,
        Err(e) => return answer(state, signed, &call, streamed, Outcome::refused(e)),
    };
    let scope = Scope {
        profile: (!call.chosen.profile.is_empty()).then(|| call.chosen.profile.clone()),
        project: None,
        filter,
        // What the call creates (a task) is the operator's, not a profile token holder's.
        principal: Some(format!("console:{}", signed.user)),
    };
    let mut params = json!({
        "name": call.chosen.tool,
        "arguments": arguments,
        "_meta": {"progressToken": "playground"},
    });
    if call.as_task {
        params["task"] = json!({});
    }
    let running = Running::start(state.gateway.clone(), scope, params);
    if !streamed {
        let outcome = running.finish(|_| {}).await;
        return answer(state, signed, &call, false, outcome);
    }
    // Progress as it comes, then the result section (rendered here, as without script).
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let chosen_tool = call.chosen.tool.clone();
    spawn(async move {
        let progress_tx = tx.clone();
        let outcome = running
            .finish(move |p| {
                let _ = progress_tx.try_send(crate::sse::format(
                    Some("progress"),
                    None,
                    &p.to_string(),
                ));
            })
            .await;
        let html = result_section(&chosen_tool, &outcome).into_string();
        let _ = tx
            .send(crate::sse::format(Some("result"), None, &html))
            .await;
    });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(event), rx))
    });
    let body = axum::body::Body::from_stream(events);
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Runs `task` on its own. Boxed, so that the console's tasks share one instantiation of the
/// runtime's task code.
fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(Box::pin(task) as futures::future::BoxFuture<'static, ()>);
}

/// The profile's rules (`""`: none, every tool).
fn profile_filter(
    config: &mcp_director_api::models::Config,
    profile: &str,
) -> Result<Filter, String> {
    if profile.is_empty() {
        return Ok(Filter::default());
    }
    config
        .profiles
        .get(profile)
        .map(Filter::from_profile)
        .ok_or_else(|| format!("There is no profile `{profile}`."))
}

/// How a call ended.
struct Outcome {
    /// Progress notifications' params, in order.
    progress: Vec<Value>,
    result: Result<Value, Value>,
}

impl Outcome {
    /// Not called at all: why.
    fn refused(why: impl Into<String>) -> Self {
        Outcome {
            progress: Vec::new(),
            result: Err(json!({"message": why.into()})),
        }
    }
}

/// A call under way in its own session.
struct Running {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    stream: Arc<crate::session::RequestStream>,
}

impl Running {
    fn start(gateway: Arc<Gateway>, scope: Scope, params: Value) -> Self {
        let session = Session::new(crate::session::new_id(), TransportKind::Console, scope);
        *session
            .negotiated
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Negotiated {
            version: Version::V2025_11_25,
            initialized: true,
            ..Negotiated::default()
        };
        gateway.add_session(session.clone());
        let stream = session.request_stream();
        let sink = Sink {
            request_stream: Some(stream.clone()),
            session: session.clone(),
            task: None,
        };
        let request = Request {
            id: json!(1),
            method: "tools/call".into(),
            params: Some(raw(&params)),
        };
        let (g, s, st) = (gateway.clone(), session.clone(), stream.clone());
        spawn(async move {
            if let Some(response) = g.handle(&s, Message::Request(request), sink).await {
                st.push(response.into());
            }
        });
        Running {
            gateway,
            session,
            stream,
        }
    }

    /// Waits for the response, handing each progress notification to `progress` meanwhile;
    /// then ends the session.
    async fn finish(self, mut progress: impl FnMut(&Value)) -> Outcome {
        let mut seen = Vec::new();
        let mut seq = 0;
        let result = loop {
            let Some((n, message)) = self.stream.next(seq).await else {
                break Err(json!({"message": "The call ended without an answer."}));
            };
            seq = n + 1;
            match message {
                Message::Notification(n) if n.method == "notifications/progress" => {
                    let p: Value = n
                        .params
                        .as_deref()
                        .and_then(|p| serde_json::from_str(p.get()).ok())
                        .unwrap_or_default();
                    progress(&p);
                    seen.push(p);
                }
                Message::Response(r) => {
                    break match r.outcome {
                        Ok(v) => Ok(serde_json::from_str(v.get()).unwrap_or_default()),
                        Err(e) => Err(serde_json::to_value(e).unwrap_or_default()),
                    };
                }
                _ => {}
            }
        };
        self.gateway.remove_session(&self.session.id).await;
        Outcome {
            progress: seen,
            result,
        }
    }
}

/// The tool's arguments from the form's fields, as its `inputSchema` types them: a number
/// field gives a number, a checkbox a boolean, an object or array field is JSON; an empty
/// optional field is left out.
pub fn arguments(
    schema: &Value,
    fields: &[(String, String)],
) -> Result<Map<String, Value>, String> {
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required = required(schema);
    let mut out = Map::new();
    for (name, prop) in &properties {
        let given = fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let kind = kind(prop);
        if kind == Kind::Boolean {
            // An unticked box sends nothing: false.
            let ticked = given.is_some_and(|v| v == "true");
            if ticked || required.contains(name) {
                out.insert(name.clone(), Value::Bool(ticked));
            }
            continue;
        }
        let Some(text) = given.filter(|v| !v.trim().is_empty()) else {
            if required.contains(name) {
                return Err(format!("`{name}` is required."));
            }
            continue;
        };
        let value = match kind {
            Kind::Integer => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("`{name}` must be a whole number."))?,
            Kind::Number => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                .ok_or_else(|| format!("`{name}` must be a number."))?,
            Kind::Text | Kind::Choice(_) => Value::String(text.clone()),
            Kind::Boolean | Kind::Json => {
                serde_json::from_str(text).map_err(|e| format!("`{name}` must be JSON: {e}."))?
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

fn required(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// How a property is entered.
#[derive(Debug, PartialEq)]
enum Kind {
    Text,
    Choice(Vec<String>),
    Integer,
    Number,
    Boolean,
    /// Objects, arrays, anything else: JSON typed in.
    Json,
}

fn kind(prop: &Value) -> Kind {
    if let Some(choices) = prop.get("enum").and_then(Value::as_array)
        && choices.iter().all(Value::is_string)
    {
        return Kind::Choice(
            choices
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect(),
        );
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        _ => Kind::Json,
    }
}

/// One labelled input for property `name`, holding `value` (what was sent, else the default).
fn field(name: &str, prop: &Value, required: bool, value: Option<&str>) -> Markup {
    let id = format!("arg-{name}");
    let hint_id = format!("{id}-hint");
    let description = prop.get("description").and_then(Value::as_str);
    let default = prop.get("default").map(|d| match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let value = value.map(str::to_string).or(default);
    let input_name = format!("a.{name}");
    let described = description.map(|_| hint_id.as_str());
    html! {
        div class="field" {
            @match kind(prop) {
                Kind::Boolean => {
                    label class="check" {
                        input type="checkbox" id=(id) name=(input_name) value="true"
                            checked[value.as_deref() == Some("true")] aria-describedby=[described];
                        " " (name) @if required { " (required)" }
                    }
                }
                kind => {
                    label for=(id) { (name) @if required { " (required)" } }
                    @match kind {
                        Kind::Choice(choices) => {
                            select id=(id) name=(input_name) required[required] aria-describedby=[described] {
                                @if !required { option value="" { "(none)" } }
                                @for c in &choices {
                                    option value=(c) selected[value.as_deref() == Some(c.as_str())] { (c) }
                                }
                            }
                        }
                        Kind::Integer | Kind::Number => {
                            input type="number" id=(id) name=(input_name) value=[value.as_deref()]
                                step=(if kind == Kind::Integer { "1" } else { "any" })
                                required[required] aria-describedby=[described];
                        }
                        Kind::Json => {
                            textarea id=(id) name=(input_name) rows="3" required[required]
                                aria-describedby=[described] placeholder="JSON" { (value.clone().unwrap_or_default()) }
                        }
                        _ => {
                            input type="text" id=(id) name=(input_name) value=[value.as_deref()]
                                required[required] aria-describedby=[described];
                        }
                    }
                }
            }
            @if let Some(d) = description { p class="hint" id=(hint_id) { (d) } }
        }
    }
}

fn answer(
    state: &AppState,
    signed: &Signed,
    call: &Call,
    streamed: bool,
    outcome: Outcome,
) -> Response {
    if streamed {
        let html = result_section(&call.chosen.tool, &outcome).into_string();
        let mut response = (
            StatusCode::OK,
            crate::sse::format(Some("result"), None, &html),
        )
            .into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        return response;
    }
    render(state, signed, &call.chosen, &call.fields, Some(&outcome))
}

fn render(
    state: &AppState,
    signed: &Signed,
    chosen: &Chosen,
    sent: &[(String, String)],
    outcome: Option<&Outcome>,
) -> Response {
    let config = state.config.effective();
    let filter = profile_filter(&config, &chosen.profile).unwrap_or_default();
    let view = state.gateway.view();
    let tools: Vec<_> = crate::gateway::view::View::visible(&view.tools, &filter).collect();
    let tool = tools.iter().find(|t| t.key == chosen.tool);
    let body = html! {
        form class="pick" method="get" action="/ui/playground" {
            div class="field" {
                label for="profile" { "Call as profile" }
                select id="profile" name="profile" {
                    option value="" selected[chosen.profile.is_empty()] { "(no profile: every tool)" }
                    @for name in config.profiles.keys() {
                        option value=(name) selected[*name == chosen.profile] { (name) }
                    }
                }
            }
            div class="field" {
                label for="tool" { "Tool" }
                select id="tool" name="tool" {
                    @for t in &tools {
                        option value=(t.key) selected[t.key == chosen.tool] { (t.key) }
                    }
                }
            }
            button type="submit" { "Choose" }
        }
        @if let Some(tool) = tool {
            @let schema = tool.value.get("inputSchema").cloned().unwrap_or_default();
            @let required = required(&schema);
            section aria-labelledby="call-title" {
                h2 id="call-title" { code { (tool.key) } }
                @if let Some(d) = tool.value.get("description").and_then(Value::as_str) { p { (d) } }
                form id="call" method="post" action="/ui/playground" {
                    input type="hidden" name="csrf" value=(signed.csrf);
                    input type="hidden" name="profile" value=(chosen.profile);
                    input type="hidden" name="tool" value=(tool.key);
                    @for (name, prop) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
                        (field(name, prop, required.contains(name), sent.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())))
                    }
                    div class="field" {
                        label class="check" {
                            input type="checkbox" name="as_task" value="true";
                            " Run as a task (answered at once; follow it on the Tasks page)"
                        }
                    }
                    button type="submit" { "Call" }
                }
            }
        } @else if !chosen.tool.is_empty() {
            p class="error" role="alert" { "This profile sees no tool " code { (chosen.tool) } "." }
        }
        div id="progress" aria-live="polite" {}
        div id="result" aria-live="polite" {
            @if let Some(outcome) = outcome { (result_section(&chosen.tool, outcome)) }
        }
    };
    page(
        StatusCode::OK,
        "Playground",
        Some(signed),
        "/ui/playground",
        body,
    )
}

/// The outcome of a call: its content, an error as the caller got it, the task it created.
fn result_section(tool: &str, outcome: &Outcome) -> Markup {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    html! {
        section class="outcome" aria-labelledby="outcome-title" {
            h2 id="outcome-title" { "Result of " code { (tool) } }
            @if !outcome.progress.is_empty() {
                h3 { "Progress" }
                ol class="progress-log" {
                    @for p in &outcome.progress { li { (progress_text(p)) } }
                }
            }
            @match &outcome.result {
                Ok(v) if v.get("task").is_some() => {
                    @let task = &v["task"];
                    p class="notice" id="task-created" role="status" {
                        "Task " code { (task["taskId"].as_str().unwrap_or_default()) } " created ("
                        (task["status"].as_str().unwrap_or_default()) "). "
                        a href="/ui/tasks" { "Follow it on the Tasks page" } "."
                    }
                }
                Ok(v) => {
                    @let failed = v.get("isError").and_then(Value::as_bool) == Some(true);
                    @if failed {
                        p class="error" role="alert" { "The tool reported an error." }
                    }
                    div class=(if failed { "content failed" } else { "content" }) id="call-content" {
                        @for c in v.get("content").and_then(Value::as_array).into_iter().flatten() {
                            @match c.get("type").and_then(Value::as_str) {
                                Some("text") => { pre { (c["text"].as_str().unwrap_or_default()) } }
                                Some(kind @ ("image" | "audio")) => {
                                    p { (kind) " (" (c["mimeType"].as_str().unwrap_or("?")) ", "
                                        (c["data"].as_str().map_or(0, |d| d.len() * 3 / 4)) " bytes)" }
                                }
                                Some("resource_link") => { p { "Link: " code { (c["uri"].as_str().unwrap_or_default()) } } }
                                Some("resource") => {
                                    p { "Resource " code { (c["resource"]["uri"].as_str().unwrap_or_default()) } }
                                    @if let Some(t) = c["resource"]["text"].as_str() { pre { (t) } }
                                }
                                _ => { pre { (pretty(c)) } }
                            }
                        }
                    }
                    @if let Some(s) = v.get("structuredContent") {
                        h3 { "Structured content" }
                        pre { (pretty(s)) }
                    }
                    details { summary { "Raw result" } pre { (pretty(v)) } }
                }
                Err(e) => {
                    p class="error" role="alert" id="call-error" {
                        @if let Some(code) = e.get("code") { "Error " (code) ": " }
                        (e["message"].as_str().unwrap_or_default())
                    }
                    @if let Some(data) = e.get("data") { details { summary { "Details" } pre { (pretty(data)) } } }
                }
            }
        }
    }
}

/// `3 / 10: message`
pub fn progress_text(p: &Value) -> String {
    let mut text = p.get("progress").map(Value::to_string).unwrap_or_default();
    if let Some(total) = p.get("total") {
        text.push_str(&format!(" / {total}"));
    }
    if let Some(m) = p.get("message").and_then(Value::as_str) {
        text.push_str(&format!(": {m}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fields_become_typed_arguments() {
        let schema = json!({
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "loud": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "mode": {"enum": ["a", "b"]},
                "note": {"type": "string"}
            },
            "required": ["text", "count"]
        });
        let got = arguments(
            &schema,
            &fields(&[
                ("text", "hi"),
                ("count", " 3 "),
                ("ratio", "0.5"),
                ("loud", "true"),
                ("tags", r#"["x","y"]"#),
                ("mode", "b"),
                ("note", ""),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"text": "hi", "count": 3, "ratio": 0.5, "loud": true, "tags": ["x", "y"], "mode": "b"})
        );
    }

    #[test]
    fn wrong_fields_say_which_and_why() {
        let schema = json!({"properties": {"count": {"type": "integer"}, "tags": {"type": "array"}}, "required": ["count"]});
        let missing = arguments(&schema, &[]).unwrap_err();
        assert!(missing.contains("`count` is required"), "{missing}");
        let bad = arguments(&schema, &fields(&[("count", "three")])).unwrap_err();
        assert!(bad.contains("whole number"), "{bad}");
        let json = arguments(&schema, &fields(&[("count", "1"), ("tags", "[1,")])).unwrap_err();
        assert!(json.contains("`tags` must be JSON"), "{json}");
        // An unticked optional box is left out; a required one is false.
        let schema = json!({"properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"}}, "required": ["b"]});
        assert_eq!(
            Value::Object(arguments(&schema, &[]).unwrap()),
            json!({"b": false})
        );
    }

    #[test]
    fn progress_reads_as_text() {
        assert_eq!(
            progress_text(&json!({"progress": 2, "total": 5, "message": "half"})),
            "2 / 5: half"
        );
        assert_eq!(progress_text(&json!({"progress": 1})), "1");
    }
}
