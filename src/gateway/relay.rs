//! What upstreams send on their own, routed to the one session it belongs to, and the client's
//! answers and cancellations routed back. An upstream is not trusted: nothing it sends reaches
//! a session that did not call it.
//!
//! - progress: see `progress.rs` (routed inside the connection, to keep its order);
//! - `resources/updated`: to the sessions subscribed to that URI through that connection;
//! - log messages and requests (sampling, elicitation, roots): to the session whose request
//!   the upstream is serving — the one whose answer stream carried it (Streamable HTTP), the
//!   one whose progress token it names, or the only session that is being served there and can
//!   answer. Shared stdio and SSE upstreams give sessions that can be asked a connection of
//!   their own while another such session is using one (`lanes.rs`), so that last rule finds
//!   one. Anything else is dropped (log messages) or refused (requests), never guessed.

use super::Gateway;
use crate::jsonrpc::{ErrorObject, Id, Message, Notification, Request, Response, raw};
use crate::session::{AnswerTo, Relayed, Session, Sink, TransportKind};
use crate::tasks::Status;
use crate::upstream::{Connection, Event};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Something an upstream sent. `owner` is the session an `isolation = "session"` connection
/// belongs to: what such a connection says concerns that session alone. Requests are answered
/// in tasks of their own, so a slow client or store never holds up the next event.
pub fn from_server(
    g: &Arc<Gateway>,
    server: &str,
    connection: Arc<Connection>,
    owner: Option<&Arc<Session>>,
    event: Event,
) {
    match event {
        Event::Notification(n, _) => notification(g, server, &connection, owner, n),
        Event::Request(r, related) => {
            let (g, server, owner) = (g.clone(), server.to_string(), owner.cloned());
            tokio::spawn(async move {
                request(&g, &server, connection, owner.as_ref(), related, r).await
            });
        }
    }
}

/// Handles, inside the connection's dispatcher (so before any later message, the response
/// included), what belongs to a request being served: progress, and log messages sent while
/// serving it. Anything else (or a log message of no one request) takes the event path.
pub fn hook(gateway: std::sync::Weak<Gateway>) -> crate::upstream::Hook {
    Arc::new(
        move |connection: u64, related: Option<i64>, n: &Notification| {
            let Some(g) = gateway.upgrade() else {
                return false;
            };
            match n.method.as_str() {
                "notifications/progress" => {
                    g.progress.deliver(connection, n);
                    true
                }
                "notifications/message" => {
                    match attribute_by_id(&g, connection, related, None) {
                        Target::One(_, sink) => {
                            log(&sink, n);
                            true
                        }
                        // An isolated connection's owner hears it by the event path; on a shared
                        // one nobody does.
                        _ => false,
                    }
                }
                _ => false,
            }
        },
    )
}

/// A log message to a session, when it wants that level and sees the server.
fn log(sink: &Sink, n: &Notification) {
    let level = n
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| p.get("level").and_then(Value::as_str).map(str::to_string));
    let s = &sink.session;
    if s.negotiated().initialized && super::logging::wanted(s, level.as_deref()) {
        sink.send(n.clone().into());
    }
}

fn notification(
    g: &Gateway,
    server: &str,
    connection: &Arc<Connection>,
    owner: Option<&Arc<Session>>,
    n: Notification,
) {
    let params: serde_json::Map<String, Value> = n
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    match n.method.as_str() {
        "notifications/resources/updated" => {
            let uri = params
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let audience = match owner {
                Some(s) => vec![s.clone()],
                None => g.sessions(),
            };
            for s in audience {
                if s.subscribed_through(uri, connection.id) {
                    s.outbound.send(n.clone().into());
                }
            }
        }
        "notifications/message" => match owner {
            // The hook has given what belongs to a request to its stream.
            Some(owner) if owner.filter.sees_server(server) => log(&Sink::new(owner.clone()), &n),
            _ => tracing::debug!(server, "log message of no one request: not relayed"),
        },
        "notifications/cancelled" => {
            // The upstream withdrew a request it had sent a client.
            let Some(upstream_id) = params.get("requestId") else {
                return;
            };
            for s in g.sessions().into_iter().chain(g.task_sessions()) {
                let ours = {
                    let relayed = s.relayed.lock().unwrap_or_else(|e| e.into_inner());
                    relayed
                        .iter()
                        .find(|(_, r)| match &r.to {
                            AnswerTo::Upstream {
                                connection: c,
                                upstream_id: u,
                            } => Arc::ptr_eq(c, connection) && u == upstream_id,
                            AnswerTo::Director(_) => false,
                        })
                        .map(|(id, _)| *id)
                };
                if let Some(id) = ours {
                    s.relayed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    let mut params = params.clone();
                    params.insert("requestId".into(), json!(id));
                    s.outbound.send(
                        Notification {
                            method: n.method.clone(),
                            params: Some(raw(&params)),
                        }
                        .into(),
                    );
                }
            }
        }
        other => tracing::debug!(server, method = other, "upstream notification not relayed"),
    }
}

/// Whose something an upstream sent is.
enum Target {
    One(Arc<Session>, Sink),
    None,
    /// Several sessions could be meant: it goes to none of them.
    Ambiguous,
}

/// The session (and the stream of its request) a message from `connection` belongs to: the
/// owner of an isolated connection; the request whose answer stream carried it (`related`);
/// the request whose progress token it names; else the only session being served there.
fn attribute(
    g: &Gateway,
    connection: &Arc<Connection>,
    owner: Option<&Arc<Session>>,
    related: Option<i64>,
    params: Option<&RawValue>,
) -> Target {
    if let Some(owner) = owner {
        let sink =
            served(owner, connection.id, related).unwrap_or_else(|| Sink::new(owner.clone()));
        return Target::One(owner.clone(), sink);
    }
    attribute_by_id(g, connection.id, related, params)
}

/// The stream of `s`'s request in flight on connection `connection` (the one with upstream
/// id `upstream_id`, when given; else the latest).
fn served(s: &Arc<Session>, connection: u64, upstream_id: Option<i64>) -> Option<Sink> {
    s.in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|f| f.connection.id == connection)
        .filter(|f| upstream_id.is_none_or(|id| f.upstream_id == id))
        .map(|f| f.sink.clone())
        .last()
}

/// [`attribute`] for a shared connection, known by its id.
fn attribute_by_id(
    g: &Gateway,
    connection: u64,
    related: Option<i64>,
    params: Option<&RawValue>,
) -> Target {
    let served = |s: &Arc<Session>, upstream_id: Option<i64>| -> Option<Sink> {
        served(s, connection, upstream_id)
    };
    // Client sessions, and the sessions task jobs run their requests in (whose sinks lead to
    // the task's creator).
    let sessions: Vec<Arc<Session>> = g.sessions().into_iter().chain(g.task_sessions()).collect();
    if let Some(id) = related {
        return sessions
            .iter()
            .find_map(|s| served(s, Some(id)))
            .map_or(Target::None, |sink| Target::One(sink.session.clone(), sink));
    }
    if let Some(sink) = progress_token(params).and_then(|t| g.progress.sink(&t, connection)) {
        return Target::One(sink.session.clone(), sink);
    }
    // Otherwise only a connection serving one client can say whom it asks. (Whether that
    // client can answer is checked after: a capable client must never be asked on behalf of
    // another one served on the same connection.)
    let mut found: Option<Sink> = None;
    for s in &sessions {
        // The client asked is the sink's (a task job's requests lead to the task's creator).
        if let Some(sink) = served(s, None) {
            // Several requests of one client (not of different tasks) are one client to ask.
            if let Some(f) = &found
                && (f.session.id != sink.session.id || f.task != sink.task)
            {
                return Target::Ambiguous;
            }
            found = Some(sink);
        }
    }
    found.map_or(Target::None, |sink| Target::One(sink.session.clone(), sink))
}

/// `params._meta.progressToken`, if it is a string.
fn progress_token(params: Option<&RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct P {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "progressToken")]
        progress_token: Option<Value>,
    }
    let p: P = serde_json::from_str(params?.get()).ok()?;
    p.meta?.progress_token?.as_str().map(str::to_string)
}

async fn request(
    g: &Arc<Gateway>,
    server: &str,
    connection: Arc<Connection>,
    owner: Option<&Arc<Session>>,
    related: Option<i64>,
    r: Request,
) {
    let answer = |outcome: Result<Box<RawValue>, ErrorObject>| Response {
        id: r.id.clone(),
        outcome,
    };
    if r.method == "ping" {
        connection.respond(answer(Ok(raw(&json!({}))))).await;
        return;
    }
    let Some(capability) = capability_of(&r.method) else {
        let e = ErrorObject::method_not_found(&r.method);
        connection.respond(answer(Err(e))).await;
        return;
    };
    let params = r.params.as_deref();
    let target = attribute(g, &connection, owner, related, params);
    // roots/list no client can answer (none offers roots) is answered with the project's
    // roots: the session's project, or the instance's.
    if r.method == "roots/list" {
        let project = match &target {
            Target::One(s, _) if s.has_capability("roots") => None,
            Target::One(s, _) => Some(s.project.clone()),
            _ => Some(server.split_once('@').map(|(_, p)| p.to_string())),
        };
        if let Some(project) = project {
            let roots = project_roots(g, project.as_deref());
            connection.respond(answer(Ok(roots))).await;
            return;
        }
    }
    let (session, sink) = match target {
        Target::One(session, sink) => (session, sink),
        Target::None => {
            let e = ErrorObject::internal(format!(
                "no client request of '{server}' that could answer {} is in flight",
                r.method
            ));
            connection.respond(answer(Err(e))).await;
            return;
        }
        Target::Ambiguous => {
            tracing::warn!(server, method = %r.method, "server request from a shared upstream serving several sessions: refused");
            let e = ErrorObject::internal(format!(
                "cannot attribute {} to one client: '{server}' is shared by several sessions (set isolation = \"session\")",
                r.method
            ));
            connection.respond(answer(Err(e))).await;
            return;
        }
    };
    if !session.has_capability(capability) {
        let e = undeclared(&session, &r.method, capability);
        connection.respond(answer(Err(e))).await;
        return;
    }
    let to = AnswerTo::Upstream {
        connection: connection.clone(),
        upstream_id: r.id.clone(),
    };
    send_to_client(g, &sink, to, r.method, r.params).await;
}

/// The client capability a server request needs (None: not a request a client answers).
fn capability_of(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// `roots/list` answered by the director: the project's roots (none without a project).
fn project_roots(g: &Gateway, project: Option<&str>) -> Box<RawValue> {
    let roots = project
        .and_then(|p| g.settings().projects.get(p).map(|p| p.roots.clone()))
        .unwrap_or_default();
    raw(&json!({ "roots": roots }))
}

/// Why `session` is not asked `method`: a 2026 client is told which capability it lacks
/// (-32021; the server can do without or fail the call with it), a 2025 one -32601.
fn undeclared(session: &Session, method: &str, capability: &str) -> ErrorObject {
    match session.transport {
        TransportKind::Stateless => super::modern::missing_capability(json!({ capability: {} })),
        _ => ErrorObject::method_not_found(method)
            .with_data(json!({"reason": format!("the client did not declare {capability}")})),
    }
}

/// Sends a request to the sink's client, its answer to go to `to`; returns its id. A task's
/// request makes the task `input_required` first (a client that has the question finds the
/// task waiting; a 2026 task's `tasks/get` waits the moment for its question) and, for a 2025
/// client, says which task it is for (a 2026 task's questions are its own).
async fn send_to_client(
    g: &Gateway,
    sink: &Sink,
    to: AnswerTo,
    method: String,
    mut params: Option<Box<RawValue>>,
) -> i64 {
    let session = &sink.session;
    let id = session.next_request_id();
    session
        .relayed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            id,
            Relayed {
                to,
                task: sink.task.clone(),
            },
        );
    if let Some(task) = &sink.task {
        if session.transport != TransportKind::Stateless {
            params = Some(with_related_task(params.as_deref(), task));
        }
        set_task_status(g, session, task, Status::InputRequired).await;
    }
    sink.send(Message::Request(Request {
        id: Id::from(id),
        method,
        params,
    }));
    id
}

/// `params` with `_meta["io.modelcontextprotocol/related-task"] = {taskId}`.
fn with_related_task(params: Option<&RawValue>, task: &str) -> Box<RawValue> {
    let related = json!({ "taskId": task });
    crate::jsonrpc::with_meta(params, [(super::tasks::RELATED, related)], false)
}

/// Moves a task between `working` and `input_required` and tells its creator.
async fn set_task_status(g: &Gateway, creator: &Session, task: &str, status: Status) {
    let Some(store) = g.store.as_ref() else {
        return;
    };
    let message = match status {
        Status::InputRequired => "Waiting for input from the client.",
        _ => "The operation is now in progress.",
    };
    match crate::tasks::transition(store, task, status, Some(message), None).await {
        Ok(Some(t)) => super::tasks::announce(g, &creator.id, &t),
        Ok(None) => {}
        Err(e) => tracing::warn!(task, error = %e, "task status not stored"),
    }
}

/// A client's answer to a request we relayed: back to the upstream, with its id (and a task
/// that was waiting for it is `working` again).
pub async fn client_response(g: &Gateway, session: &Arc<Session>, r: Response) {
    let Some(id) = r.id.as_i64() else { return };
    let relayed = session
        .relayed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    let Some(rel) = relayed else {
        tracing::debug!(session = %session.id, id, "response to no relayed request");
        return;
    };
    // Working again once nothing it asked is unanswered.
    if let Some(task) = &rel.task {
        let waiting = session
            .relayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|r| r.task.as_ref() == Some(task));
        if !waiting {
            set_task_status(g, session, task, Status::Working).await;
        }
    }
    match rel.to {
        AnswerTo::Upstream {
            connection,
            upstream_id,
        } => {
            connection
                .respond(Response {
                    id: upstream_id,
                    outcome: r.outcome,
                })
                .await
        }
        AnswerTo::Director(waiter) => {
            let _ = waiter.send(r.outcome);
        }
    }
}

/// Asks the client something on behalf of a 2026 server (an input request of its
/// `InputRequiredResult`): a request on the stream of the call (`sink`), answered by the client
/// like any other; its answer, or an error when it cannot be asked or does not answer in time.
pub async fn ask(
    g: &Gateway,
    sink: &Sink,
    method: &str,
    params: Option<Box<RawValue>>,
    timeout: std::time::Duration,
) -> Result<Box<RawValue>, ErrorObject> {
    let session = &sink.session;
    let Some(capability) = capability_of(method) else {
        return Err(ErrorObject::method_not_found(method));
    };
    if !session.has_capability(capability) {
        if method == "roots/list" {
            // Answered for a client that offers none, as for 2025-era servers.
            return Ok(project_roots(g, session.project.as_deref()));
        }
        return Err(undeclared(session, method, capability));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let id = send_to_client(g, sink, AnswerTo::Director(tx), method.to_string(), params).await;
    let answered = tokio::time::timeout(timeout, rx).await;
    let unanswered = session
        .relayed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    if let (Some(_), Some(task)) = (unanswered, &sink.task) {
        // Given up on: the task is not waiting for it any more.
        set_task_status(g, session, task, Status::Working).await;
    }
    match answered {
        Ok(Ok(outcome)) => outcome,
        _ => Err(ErrorObject::internal(format!(
            "the client did not answer {method}"
        ))),
    }
}

/// A client cancelled one of its requests: the upstream serving it hears of it, with its id.
pub async fn client_cancelled(session: &Arc<Session>, params: Option<&RawValue>) {
    let params: serde_json::Map<String, Value> = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let Some(request_id) = params.get("requestId") else {
        return;
    };
    let in_flight = session
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&request_id.to_string());
    if let Some(f) = in_flight {
        let mut params = params.clone();
        params.insert("requestId".into(), json!(f.upstream_id));
        f.connection
            .notify("notifications/cancelled", Some(raw(&params)))
            .await;
        // The upstream will not answer a cancelled request: stop waiting now.
        f.connection.fail(
            f.upstream_id,
            ErrorObject::new(
                crate::jsonrpc::INTERNAL_ERROR,
                "request cancelled by the client",
            ),
        );
    }
}
