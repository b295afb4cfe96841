//! MCP 2026-07-28 over Streamable HTTP: no session and no handshake. Each POST carries its
//! version and the client's capabilities in `_meta`, mirrored in headers the director checks
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`); it is served in a
//! session that lives as long as the request, and answered as JSON or, when it has more to
//! say than its response, as an SSE stream whose closing by the client cancels it.

use super::guard::*;
use super::stream::{QUICK, sse_response};
use super::{McpQuery, SESSION_HEADER, VERSION_HEADER};
use crate::gateway::modern::{self, HEADER_MISMATCH, RequestMeta};
use crate::gateway::mrtr;
use crate::jsonrpc::{
    ErrorObject, INVALID_REQUEST, METHOD_NOT_FOUND, Message, Request, Response as RpcResponse,
};
use crate::oauth;
use crate::profile::{Credential, Scope};
use crate::session::{Session, Sink, TransportKind};
use crate::state::AppState;
use crate::version::Version;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Ends a request's session however the request ends (answered, or its client gone).
struct Ephemeral {
    state: AppState,
    id: Arc<str>,
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        let (gateway, id) = (self.state.gateway.clone(), self.id.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                gateway.remove_session(&id).await;
            });
        }
    }
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
        sse: accepts(headers, "text/event-stream"),
    };
    // Only these take input responses (a task's come through `tasks/update`).
    let retriable = matches!(
        r.method.as_str(),
        "tools/call" | "prompts/get" | "resources/read"
    );
    if retriable
        && let Some(retry) = mrtr::Retry::of(r.params.as_deref()).map_err(|e| reject(&r.id, e))?
    {
        return resume(state, r, retry, fresh).await;
    }
    if r.method == "tools/call"
        && let Some(params) = r.params.as_deref()
        && let Ok(p) = serde_json::from_str::<Value>(params.get())
        && let Some(name) = p.get("name").and_then(Value::as_str)
    {
        let view = state.gateway.view_for(fresh.scope.project.as_deref());
        if let Some(tool) = view.tool(name) {
            let arguments = p.get("arguments").cloned().unwrap_or(json!({}));
            check_param_headers(headers, tool, &arguments).map_err(|e| reject(&r.id, e))?;
        }
    }
    Ok(start(state, r, fresh).await)
}

/// What a new 2026 request is served with: who asks, what the client can be asked, the log
/// level it wants, and whether it takes an SSE answer.
struct Fresh {
    scope: Scope,
    capabilities: Value,
    log_level: Option<u8>,
    sse: bool,
}

/// Serves a 2026 request in a session of its own that ends with it.
async fn start(state: &AppState, r: Request, fresh: Fresh) -> Response {
    let g = state.gateway.clone();
    let session = Session::new(
        crate::session::new_id(),
        TransportKind::Stateless,
        fresh.scope,
    );
    {
        let mut n = session
            .negotiated
            .write()
            .unwrap_or_else(|e| e.into_inner());
        n.version = Version::V2026_07_28;
        n.capabilities = crate::session::ClientCapabilities::from_map(
            fresh
                .capabilities
                .as_object()
                .unwrap_or(&serde_json::Map::new()),
        );
        n.initialized = true;
    }
    // Without a level asked for, no log message at all (u8::MAX: none is that severe).
    *session.log_level.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(fresh.log_level.unwrap_or(u8::MAX));
    g.add_session(session.clone());
    let guard = Ephemeral {
        state: state.clone(),
        id: session.id.clone(),
    };
    if r.method == "subscriptions/listen" {
        return super::listen::listen(state, session, r, guard).await;
    }
    answer(state, session, r, fresh.sse, guard).await
}

/// Serves the request. Answered within QUICK with nothing before its response: JSON (with
/// the status its error calls for). Otherwise an SSE stream of what it causes and then its
/// response; the work runs inside that stream, so a client that closes it cancels the request.
/// An upstream that asks the client something parks the call: the answer is then an
/// `InputRequiredResult` (see `gateway/mrtr.rs`).
async fn answer(
    state: &AppState,
    session: Arc<Session>,
    request: Request,
    sse: bool,
    guard: Ephemeral,
) -> Response {
    let g = state.gateway.clone();
    let stream = session.request_stream();
    let sink = Sink {
        request_stream: Some(stream.clone()),
        session: session.clone(),
        task: None,
    };
    let answered = stream.clone();
    let call = mrtr::call_of(&request.method, request.params.as_deref());
    let id = request.id.clone();
    let worker_session = session.clone();
    let work: Work = Box::pin(async move {
        let _guard = guard;
        if let Some(response) = g
            .handle(&worker_session, Message::Request(request), sink)
            .await
        {
            let _ = answered.push(response.into());
        }
    });
    let serving = Serving {
        state: state.clone(),
        session,
        stream,
        next: 0,
        work: Some(work),
        id,
        call,
        pending: BTreeMap::new(),
    };
    serve(serving, sse).await
}

/// How long after an upstream's request the director waits for more before answering the
/// 2026 client with what was asked: a server asking several things at once sends them in a burst.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

type Work = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A 2026 call being answered: its session and request stream, how far the client has been
/// told, the work (while this answer drives it), the JSON-RPC id to answer with (a retry's
/// own), and the input requests still unanswered.
struct Serving {
    state: AppState,
    session: Arc<Session>,
    stream: Arc<crate::session::RequestStream>,
    next: u64,
    work: Option<Work>,
    id: Value,
    call: String,
    pending: BTreeMap<String, Value>,
}

/// What the client is told next.
enum Step {
    /// A notification (progress, a log message), as JSON text.
    Say(String),
    /// The response (the call is over), or the `InputRequiredResult` of a parked call.
    Final(Message),
}

impl Serving {
    async fn step(&mut self) -> Step {
        if !self.pending.is_empty() {
            return Step::Final(self.park());
        }
        loop {
            let next = self.stream.next(self.next);
            let message = match &mut self.work {
                Some(work) => tokio::select! {
                    biased;
                    m = next => m,
                    () = work => {
                        self.work = None;
                        continue;
                    }
                },
                None => next.await,
            };
            let Some((index, message)) = message else {
                let error = ErrorObject::internal("the call ended without an answer");
                return Step::Final(RpcResponse::err(self.id.clone(), error).into());
            };
            self.next = index + 1;
            match message {
                Message::Notification(n) => return Step::Say(Message::from(n).to_json()),
                Message::Response(r) => {
                    let outcome = r.outcome.map(|result| self.wrap_state(result));
                    return Step::Final(
                        RpcResponse {
                            id: self.id.clone(),
                            outcome,
                        }
                        .into(),
                    );
                }
                Message::Request(r) => {
                    self.ask(r);
                    // Asked together (within GATHER of each other): answered together, in one
                    // InputRequiredResult.
                    while let Ok(Some((index, Message::Request(r)))) =
                        tokio::time::timeout(GATHER, self.stream.next(self.next)).await
                    {
                        self.next = index + 1;
                        self.ask(r);
                    }
                    return Step::Final(self.park());
                }
            }
        }
    }

    /// An upstream's `InputRequiredResult` with its own `requestState`: the state wrapped, so
    /// only this caller can retry this call with it (and the upstream gets its own back).
    fn wrap_state(&self, result: Box<RawValue>) -> Box<RawValue> {
        let Some((_, Some(state))) = mrtr::asks(&result) else {
            return result;
        };
        let principal = self.session.principal();
        let wrapped = self
            .state
            .gateway
            .calls
            .wrap(&state, &principal, &self.call);
        mrtr::with_state(Some(&result), &wrapped)
    }

    fn ask(&mut self, r: Request) {
        let key = match &r.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.pending
            .insert(key, mrtr::input_request(&r.method, r.params.as_deref()));
    }

    /// Parks the call (its work goes on in a task of its own) and answers what it asks.
    fn park(&mut self) -> Message {
        if let Some(work) = self.work.take() {
            tokio::spawn(work);
        }
        let principal = self.session.principal().into_owned();
        let result = self.state.gateway.calls.park(
            &principal,
            mrtr::Parked {
                session: self.session.clone(),
                stream: self.stream.clone(),
                next: self.next,
                pending: std::mem::take(&mut self.pending),
                call: self.call.clone(),
                until: std::time::Instant::now() + mrtr::PARKED_FOR,
            },
        );
        let finished = modern::finish("", &self.session, result);
        RpcResponse::ok(self.id.clone(), finished).into()
    }
}

/// Answers a call: at once as JSON when it has nothing but its final message within QUICK
/// (or the client takes only JSON), else as an SSE stream.
async fn serve(mut s: Serving, sse: bool) -> Response {
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
            Step::Say(text) => said.push(crate::sse::format(None, None, &text)),
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
    let mut shutdown = s.state.shutdown.subscribe();
    let ended = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let rest = futures::stream::unfold(Some(s), |s| async move {
        let mut s = s?;
        match s.step().await {
            Step::Say(text) => Some((crate::sse::format(None, None, &text), Some(s))),
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

/// A retry of a parked call: its answers go upstream, and the call goes on being answered
/// (the rest of it, on this request, under this request's id).
async fn resume(
    state: &AppState,
    mut r: Request,
    retry: mrtr::Retry,
    fresh: Fresh,
) -> Result<Response, Rejection> {
    let g = &state.gateway;
    let sse = fresh.sse;
    let principal = fresh.scope.principal.as_deref().unwrap_or("anonymous");
    let call = mrtr::call_of(&r.method, r.params.as_deref());
    let mut parked = match g
        .calls
        .resume(&retry.state, principal, &call)
        .map_err(|e| reject(&r.id, e))?
    {
        mrtr::Resumed::Parked(parked) => parked,
        // A 2026 upstream's own state: the retry is a new request to it, carrying that state.
        mrtr::Resumed::Upstream(upstream) => {
            r.params = Some(mrtr::with_state(r.params.as_deref(), &upstream));
            return Ok(start(state, r, fresh).await);
        }
    };
    for (key, value) in retry.responses {
        // Keys not asked (any more) are ignored, as the spec says.
        if parked.pending.remove(&key).is_none() {
            continue;
        }
        let Ok(id) = key.parse::<i64>() else { continue };
        let answer = RpcResponse::ok(Value::from(id), crate::jsonrpc::raw(&value));
        let sink = Sink::new(parked.session.clone());
        g.handle(&parked.session, answer.into(), sink).await;
    }
    let serving = Serving {
        state: state.clone(),
        session: parked.session,
        stream: parked.stream,
        next: parked.next,
        work: None,
        id: r.id,
        call,
        pending: parked.pending,
    };
    Ok(serve(serving, sse).await)
}
