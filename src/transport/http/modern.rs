//! MCP 2026-07-28 over Streamable HTTP: no session and no handshake. Each POST carries its
//! version and the client's capabilities in `_meta`, mirrored in headers the director checks
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`); it is served as every
//! transport serves one (`transport/stateless.rs`), and answered as JSON or, when it has more
//! to say than its response, as an SSE stream whose closing by the client cancels it.

use super::guard::*;
use super::stream::{QUICK, sse_response};
use super::{McpQuery, SESSION_HEADER, VERSION_HEADER};
use crate::gateway::modern::{self, HEADER_MISMATCH, RequestMeta};
use crate::jsonrpc::{
    ErrorObject, INVALID_REQUEST, METHOD_NOT_FOUND, Message, Request, Response as RpcResponse,
};
use crate::oauth;
use crate::profile::Credential;
use crate::state::AppState;
use crate::transport::stateless::{self, Fresh, Retried, Serving, Step};
use crate::version::Version;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

/// Whether a message is a 2026-07-28 request (or notification): no session named, and a
/// modern version in `_meta` or in `MCP-Protocol-Version` (without `_meta`, a 2025 version
/// there is a 2025 client, and an unknown one gets the 2025 error listing what is served).
pub(super) fn is_modern(headers: &HeaderMap, message: &Message) -> bool {
    if headers.contains_key(SESSION_HEADER) {
        return false;
    }
    let params = match message {
        Message::Request(r) => r.params.as_deref(),
        Message::Notification(n) => n.params.as_deref(),
        Message::Response(_) => None,
    };
    let (has_meta, meta) = RequestMeta::of(params);
    if has_meta && meta.version.is_some() {
        return true;
    }
    headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(Version::parse)
        .is_some_and(|v| v >= Version::V2026_07_28)
}

/// A 2026 error as an HTTP rejection: the statuses the transport spec pins.
fn reject(id: &Value, error: ErrorObject) -> Rejection {
    let status = match error.code {
        METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        modern::HEADER_MISMATCH | modern::MISSING_CAPABILITY | modern::UNSUPPORTED_VERSION => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::BAD_REQUEST,
    };
    rpc_error(status, id.clone(), error)
}

fn mismatch(message: impl Into<String>) -> ErrorObject {
    ErrorObject::new(HEADER_MISMATCH, message)
}

/// A header's value as the client meant it: surrounding whitespace dropped, and the
/// `=?base64?…?=` form decoded. `Err` for a value that is not text or not valid base64.
fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, ErrorObject> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| mismatch(format!("Header mismatch: {name} is not text")))?
        .trim_matches([' ', '\t']);
    match text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    {
        Some(encoded) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| mismatch(format!("Header mismatch: {name} is not valid base64")))?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| mismatch(format!("Header mismatch: {name} is not UTF-8")))
        }
        None => Ok(Some(text.to_string())),
    }
}

/// The checks of the transport spec, in the order its conformance suite expects: version
/// header, `_meta`, header against `_meta`, a version served, then `Mcp-Method`/`Mcp-Name`.
fn validate(headers: &HeaderMap, r: &Request) -> Result<RequestMeta, ErrorObject> {
    let Some(header_version) = header_text(headers, VERSION_HEADER)? else {
        return Err(mismatch("Missing MCP-Protocol-Version header"));
    };
    let (_, meta) = RequestMeta::of(r.params.as_deref());
    let Some(version) = meta.version().map(str::to_string) else {
        return Err(ErrorObject::invalid_params(format!(
            "Invalid params: _meta[\"{}\"] is required",
            modern::META_VERSION
        )));
    };
    if !meta.capabilities.as_ref().is_some_and(Value::is_object) {
        return Err(ErrorObject::invalid_params(format!(
            "Invalid params: _meta[\"{}\"] (an object) is required",
            modern::META_CAPABILITIES
        )));
    }
    if header_version != version {
        return Err(mismatch(format!(
            "Header mismatch: MCP-Protocol-Version {header_version:?} but _meta says {version:?}"
        )));
    }
    if !Version::parse(&version).is_some_and(|v| modern::STATELESS_VERSIONS.contains(&v)) {
        return Err(modern::unsupported_version(&version));
    }
    match header_text(headers, "mcp-method")? {
        Some(m) if m == r.method => {}
        Some(m) => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method {m:?} but the body's method is {:?}",
                r.method
            )));
        }
        None => return Err(mismatch("Missing Mcp-Method header")),
    }
    let named = match r.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(field) = named {
        let body = r
            .params
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|p| p.get(field).and_then(Value::as_str).map(str::to_string));
        match (header_text(headers, "mcp-name")?, body) {
            (Some(h), Some(b)) if h == b => {}
            (None, _) => return Err(mismatch("Missing Mcp-Name header")),
            (Some(h), b) => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name {h:?} but params.{field} is {b:?}"
                )));
            }
        }
    }
    Ok(meta)
}

/// Checks each `Mcp-Param-*` header the tool's schema asks for (`x-mcp-header` on a property)
/// against the argument it mirrors.
fn check_param_headers(
    headers: &HeaderMap,
    tool: &Value,
    arguments: &Value,
) -> Result<(), ErrorObject> {
    fn walk<'a>(schema: &'a Value, path: &mut Vec<&'a str>, out: &mut Vec<(String, Vec<&'a str>)>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, prop) in props {
            path.push(name);
            if let Some(header) = prop.get("x-mcp-header").and_then(Value::as_str) {
                out.push((header.to_string(), path.clone()));
            }
            walk(prop, path, out);
            path.pop();
        }
    }
    let mut mirrored = Vec::new();
    if let Some(schema) = tool.get("inputSchema") {
        walk(schema, &mut Vec::new(), &mut mirrored);
    }
    for (header, path) in mirrored {
        let name = format!("mcp-param-{}", header.to_ascii_lowercase());
        let value = path
            .iter()
            .try_fold(arguments, |v, k| v.get(*k))
            .filter(|v| !v.is_null());
        let sent = header_text(headers, &name)?;
        let matches = match (&sent, value) {
            (None, None) => true,
            (Some(h), Some(Value::String(s))) => h == s,
            (Some(h), Some(Value::Bool(b))) => h == &b.to_string(),
            (Some(h), Some(Value::Number(n))) => {
                h.parse::<f64>().ok() == n.as_f64() && n.as_f64().is_some()
            }
            _ => false,
        };
        if !matches {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Param-{header} does not match the argument it mirrors"
            )));
        }
    }
    Ok(())
}

/// A 2026 POST: a notification (accepted and dropped: 2026 defines none over HTTP), or a
/// request, checked, then served.
pub(super) async fn post(
    state: &AppState,
    q: &McpQuery,
    headers: &HeaderMap,
    credential: Credential,
    message: Message,
) -> Result<Response, Rejection> {
    let r = match message {
        Message::Notification(_) => return Ok(StatusCode::ACCEPTED.into_response()),
        Message::Response(resp) => {
            return Err(reject(
                &resp.id,
                ErrorObject::new(
                    INVALID_REQUEST,
                    "Invalid Request: a 2026-07-28 server sends no requests to answer",
                ),
            ));
        }
        Message::Request(r) => r,
    };
    let meta = validate(headers, &r).map_err(|e| reject(&r.id, e))?;
    let log_level = modern::log_level(&meta).map_err(|e| reject(&r.id, e))?;
    let scope = match choose_scope(state, q, &credential) {
        Ok(scope) => scope,
        Err(refused) => {
            return Err(
                refusal(state, oauth::Endpoint::Mcp, &refused).unwrap_or_else(|| {
                    reject(&r.id, ErrorObject::invalid_params(refused.to_string()))
                }),
            );
        }
    };
    let fresh = Fresh {
        scope,
        capabilities: meta.capabilities.clone().unwrap_or_else(|| json!({})),
        log_level,
    };
    let sse = accepts(headers, "text/event-stream");
    let g = &state.gateway;
    let r = match stateless::retry_of(&r).map_err(|e| reject(&r.id, e))? {
        None => r,
        Some(retry) => {
            let principal = fresh.scope.principal.as_deref().unwrap_or("anonymous");
            match stateless::resume(g, r.clone(), retry, principal)
                .await
                .map_err(|e| reject(&r.id, e))?
            {
                Retried::Resumed(serving) => return Ok(serve(state, serving, sse).await),
                Retried::Anew(r) => r,
            }
        }
    };
    if r.method == "tools/call"
        && let Some(params) = r.params.as_deref()
        && let Ok(p) = serde_json::from_str::<Value>(params.get())
        && let Some(name) = p.get("name").and_then(Value::as_str)
    {
        let view = g.view_for(fresh.scope.project.as_deref());
        if let Some(tool) = view.tool(name) {
            let arguments = p.get("arguments").cloned().unwrap_or(json!({}));
            check_param_headers(headers, tool, &arguments).map_err(|e| reject(&r.id, e))?;
        }
    }
    let (session, guard) = stateless::open(g, fresh);
    if r.method == "subscriptions/listen" {
        let messages = crate::transport::listen::listen(g, &session, &r).await;
        let events = messages.map(|m| crate::sse::format(None, None, &m.to_json()));
        let ended = super::stream::stream_end(state, &session);
        return Ok(sse_response(events, ended, (guard, session)));
    }
    Ok(serve(state, stateless::serve(g, session, r, guard), sse).await)
}

/// Answers a call: at once as JSON when it has nothing but its final message within QUICK
/// (or the client takes only JSON), else as an SSE stream; the work runs inside the stream, so
/// a client that closes it cancels the request.
async fn serve(state: &AppState, mut s: Serving, sse: bool) -> Response {
    let mut said = Vec::new();
    let deadline = tokio::time::Instant::now() + QUICK;
    loop {
        let step = if sse {
            match tokio::time::timeout_at(deadline, s.step()).await {
                Ok(step) => step,
                Err(_) => break,
            }
        } else {
            s.step().await
        };
        match step {
            Step::Say(m) => said.push(crate::sse::format(None, None, &m.to_json())),
            Step::Final(message) if said.is_empty() || !sse => return json(message),
            Step::Final(message) => {
                said.push(crate::sse::format(None, None, &message.to_json()));
                return sse_response(
                    futures::stream::iter(said),
                    std::future::pending::<()>(),
                    (),
                );
            }
        }
    }
    // Still going: the rest streams, the work inside the stream.
    let mut shutdown = state.shutdown.subscribe();
    let ended = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let rest = futures::stream::unfold(Some(s), |s| async move {
        let mut s = s?;
        match s.step().await {
            Step::Say(m) => Some((crate::sse::format(None, None, &m.to_json()), Some(s))),
            Step::Final(m) => Some((crate::sse::format(None, None, &m.to_json()), None)),
        }
    });
    sse_response(futures::stream::iter(said).chain(rest), ended.boxed(), ())
}

/// A final message as JSON, with the status its error calls for.
fn json(message: Message) -> Response {
    let status = match &message {
        Message::Response(RpcResponse {
            outcome: Err(e), ..
        }) if e.code == METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        Message::Response(RpcResponse {
            outcome: Err(e), ..
        }) if (modern::UNSUPPORTED_VERSION..=HEADER_MISMATCH).contains(&e.code) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        message.to_json(),
    )
        .into_response()
}
