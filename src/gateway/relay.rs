//! What upstreams send on their own, routed to the one session it belongs to, and the client's
//! answers and cancellations routed back.
//!
//! - progress: see `progress_hook` in mod.rs (routed inside the connection, to keep its order);
//! - `resources/updated`: to the sessions subscribed to that URI;
//! - logging messages: to every session;
//! - requests (sampling, elicitation, roots): to the session whose request the upstream is
//!   serving. On a shared upstream serving several sessions at once the request cannot be
//!   attributed and is refused rather than risk showing one client another's traffic
//!   (configure `isolation = "session"` for such servers).

use super::Gateway;
use crate::jsonrpc::{ErrorObject, Id, Message, Notification, Request, Response, raw};
use crate::session::{Relayed, Session, Sink};
use crate::tasks::Status;
use crate::upstream::{Connection, Event};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Something an upstream sent. `owner` is the session an `isolation = "session"` connection
/// belongs to: what such a connection says concerns that session alone.
pub async fn from_server(
    g: &Arc<Gateway>,
    server: &str,
    connection: Arc<Connection>,
    owner: Option<&Arc<Session>>,
    event: Event,
) {
    match event {
        Event::Notification(n) => notification(g, server, &connection, owner, n),
        Event::Request(r) => request(g, server, connection, r).await,
    }
}

fn notification(
    g: &Gateway,
    server: &str,
    connection: &Arc<Connection>,
    owner: Option<&Arc<Session>>,
    n: Notification,
) {
    // The sessions that may hear it: the owner of an isolated connection, else everyone.
    let audience = || match owner {
        Some(s) => vec![s.clone()],
        None => g.sessions(),
    };
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
            for s in audience() {
                if s.subscriptions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(uri)
                {
                    s.outbound.send(n.clone().into());
                }
            }
        }
        "notifications/message" => {
            let level = params.get("level").and_then(Value::as_str);
            for s in audience() {
                if s.negotiated().initialized
                    && s.filter.sees_server(server)
                    && super::logging::wanted(&s, level)
                {
                    s.outbound.send(n.clone().into());
                }
            }
        }
        "notifications/cancelled" => {
            // The upstream withdrew a request it had sent a client.
            let Some(upstream_id) = params.get("requestId") else {
                return;
            };
            for s in g.sessions() {
                let ours = {
                    let relayed = s.relayed.lock().unwrap_or_else(|e| e.into_inner());
                    relayed
                        .iter()
                        .find(|(_, r)| {
                            Arc::ptr_eq(&r.connection, connection) && &r.upstream_id == upstream_id
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

/// The session and stream a request from `connection` belongs to, if exactly one session is
/// being served by it.
fn attribute(
    g: &Gateway,
    connection: &Arc<Connection>,
) -> Result<Option<(Arc<Session>, Sink)>, ()> {
    let mut found: Option<(Arc<Session>, Sink)> = None;
    // Client sessions, and the sessions task jobs run their requests in (whose sinks lead to
    // the task's creator).
    for s in g.sessions().into_iter().chain(g.task_sessions()) {
        let sink = s
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|f| Arc::ptr_eq(&f.connection, connection))
            .map(|f| f.sink.clone())
            .last();
        if let Some(sink) = sink {
            if found.is_some() {
                return Err(());
            }
            found = Some((sink.session.clone(), sink));
        }
    }
    Ok(found)
}

async fn request(g: &Arc<Gateway>, server: &str, connection: Arc<Connection>, r: Request) {
    let answer = |outcome: Result<Box<RawValue>, ErrorObject>| Response {
        id: r.id.clone(),
        outcome,
    };
    if r.method == "ping" {
        connection.respond(answer(Ok(raw(&json!({}))))).await;
        return;
    }
    let capability = match r.method.as_str() {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        other => {
            connection
                .respond(answer(Err(ErrorObject::method_not_found(other))))
                .await;
            return;
        }
    };
    let attributed = attribute(g, &connection);
    // roots/list the client cannot answer (it offers no roots, or no client can be asked) is
    // answered with the project's roots: the session's project, or the instance's.
    if r.method == "roots/list" {
        let project = match &attributed {
            Ok(Some((s, _))) if s.has_capability("roots") => None,
            Ok(Some((s, _))) => Some(s.project.clone()),
            _ => Some(server.split_once('@').map(|(_, p)| p.to_string())),
        };
        if let Some(project) = project {
            let roots = project
                .and_then(|p| g.settings().projects.get(&p).map(|p| p.roots.clone()))
                .unwrap_or_default();
            connection
                .respond(answer(Ok(raw(&json!({ "roots": roots })))))
                .await;
            return;
        }
    }
    let target = match attributed {
        Ok(Some(t)) => t,
        Ok(None) => {
            let e = ErrorObject::internal(format!(
                "no client request of '{server}' is in flight to ask"
            ));
            connection.respond(answer(Err(e))).await;
            return;
        }
        Err(()) => {
            tracing::warn!(server, method = %r.method, "server request from a shared upstream serving several sessions: refused");
            let e = ErrorObject::internal(format!(
                "cannot attribute {} to one client: '{server}' is shared by several sessions (set isolation = \"session\")",
                r.method
            ));
            connection.respond(answer(Err(e))).await;
            return;
        }
    };
    let (session, sink) = target;
    if !session.has_capability(capability) {
        let e = ErrorObject::method_not_found(&r.method)
            .with_data(json!({"reason": format!("the client did not declare {capability}")}));
        connection.respond(answer(Err(e))).await;
        return;
    }
    let id = session.next_request_id();
    session
        .relayed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            id,
            Relayed {
                connection: connection.clone(),
                upstream_id: r.id.clone(),
                task: sink.task.clone(),
            },
        );
    let mut params = r.params;
    if let Some(task) = &sink.task {
        // The task needs its requestor: it is `input_required` until the answer comes back,
        // and the request says which task it is for.
        params = Some(with_related_task(params.as_deref(), task));
        set_task_status(g, &session, task, Status::InputRequired).await;
    }
    sink.send(Message::Request(Request {
        id: Id::from(id),
        method: r.method,
        params,
    }));
}

/// `params` with `_meta["io.modelcontextprotocol/related-task"] = {taskId}`.
fn with_related_task(params: Option<&RawValue>, task: &str) -> Box<RawValue> {
    let mut map: serde_json::Map<String, Value> = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let meta = map
        .entry("_meta")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Value::Object(meta) = meta {
        meta.insert(
            "io.modelcontextprotocol/related-task".into(),
            json!({ "taskId": task }),
        );
    }
    raw(&map)
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
    match relayed {
        Some(rel) => {
            if let Some(task) = &rel.task {
                set_task_status(g, session, task, Status::Working).await;
            }
            rel.connection
                .respond(Response {
                    id: rel.upstream_id,
                    outcome: r.outcome,
                })
                .await
        }
        None => tracing::debug!(session = %session.id, id, "response to no relayed request"),
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
