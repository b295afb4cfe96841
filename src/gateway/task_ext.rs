//! The 2026 tasks extension (`io.modelcontextprotocol/tasks`): the director decides which
//! `tools/call`s become tasks (tools that support them, for clients that declared the
//! extension) and answers a flat `CreateTaskResult`; `tasks/get` shows the task with its
//! result, error or open questions inline; `tasks/update` answers those questions;
//! `tasks/cancel` stops it. `tasks/result` and `tasks/list` are gone in this revision.
//!
//! The job is the 2025 one (`tasks.rs`), run in an inbox session carrying the client's
//! capabilities: what the upstream asks while it runs waits in the inbox (the task is then
//! `input_required`) until a `tasks/update` answers it.

use super::tasks::{self, TaskId};
use super::{Gateway, Params, mrtr};
use crate::jsonrpc::{ErrorObject, Message, Response, raw};
use crate::session::{RequestStream, Session, Sink, TASKS_EXTENSION, TransportKind};
use crate::tasks::{Status, Task};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

/// Where a 2026 task's upstream requests wait for the client.
pub struct Inbox {
    /// The job's session: the creator's scope and capabilities, a 2026 session.
    pub session: Arc<Session>,
    /// The job's request stream: what the upstream says while serving it.
    pub stream: Arc<RequestStream>,
    /// Questions not answered yet, by key (the relayed request's id), as the client sees them.
    pending: Mutex<mrtr::Questions>,
    /// The first message of `stream` not taken in yet.
    next: Mutex<u64>,
}

/// `-32021` naming the extension: what a task method needs that the client did not declare.
fn undeclared() -> ErrorObject {
    super::modern::missing_capability(json!({ "extensions": { TASKS_EXTENSION: {} } }))
}

fn declared(session: &Session) -> Result<(), ErrorObject> {
    match session.has_capability(TASKS_EXTENSION) {
        true => Ok(()),
        false => Err(undeclared()),
    }
}

/// Starts the task and answers its `CreateTaskResult` (stored before the answer, so a
/// `tasks/get` right after finds it).
pub async fn create(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    server: &str,
    params: Params,
    upstream_supports_tasks: bool,
) -> Result<Box<RawValue>, ErrorObject> {
    let scope = tasks::detached_scope(session);
    let job_session = Session::new(crate::session::new_id(), TransportKind::Stateless, scope);
    *job_session
        .negotiated
        .write()
        .unwrap_or_else(|e| e.into_inner()) = session.negotiated();
    let inbox = Arc::new(Inbox {
        stream: job_session.request_stream(),
        session: job_session,
        pending: Mutex::default(),
        next: Mutex::default(),
    });
    let task = tasks::create(
        g,
        session,
        server,
        params,
        tasks::TaskParams::default(),
        upstream_supports_tasks,
        Some(inbox.clone()),
    )
    .await?;
    tokio::spawn(read_inbox(inbox));
    let mut created = shape(&task);
    created.insert("resultType".into(), json!("task"));
    Ok(raw(&created))
}

/// Collects the job's questions as they come (the relay marks the task `input_required`
/// while any is unanswered).
async fn read_inbox(inbox: Arc<Inbox>) {
    loop {
        let next = *lock(&inbox.next);
        if inbox.stream.next(next).await.is_none() {
            return;
        }
        inbox.collect();
    }
}

impl Inbox {
    /// Takes in what the job's upstream has said so far: its requests become questions.
    fn collect(&self) {
        use futures::FutureExt;
        let mut next = lock(&self.next);
        while let Some(Some((index, message))) = self.stream.next(*next).now_or_never() {
            *next = index + 1;
            if let Message::Request(r) = message {
                lock(&self.pending).ask(&self.session, &r);
            }
        }
    }
}

/// The inbox of a 2026 task running here.
fn inbox_of(g: &Gateway, task_id: &str) -> Option<Arc<Inbox>> {
    g.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(task_id)
        .and_then(|r| r.inbox.clone())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A task as this revision shows it: `ttlMs` and `pollIntervalMs` (integer milliseconds).
fn shape(task: &Task) -> Map<String, Value> {
    let mut out = Map::new();
    let v1 = task.to_json();
    for (from, to) in [
        ("taskId", "taskId"),
        ("status", "status"),
        ("statusMessage", "statusMessage"),
        ("createdAt", "createdAt"),
        ("lastUpdatedAt", "lastUpdatedAt"),
        ("ttl", "ttlMs"),
        ("pollInterval", "pollIntervalMs"),
    ] {
        if let Some(v) = v1.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    out
}

/// `tasks/get`: the task, with its questions (`input_required`), its result (`completed`) or
/// its error (`failed`) inline.
pub async fn get(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    declared(session)?;
    let TaskId { task_id } = crate::jsonrpc::params(params)?;
    let task = tasks::owned(g, session, &task_id).await?;
    let mut out = shape(&task);
    match (&task.status, &task.outcome) {
        (Status::InputRequired, _) => {
            let inbox = inbox_of(g, &task_id);
            let mut pending = serde_json::Map::new();
            if let Some(inbox) = inbox {
                // The question follows its status by a moment (see relay.rs): wait for it.
                for _ in 0..50 {
                    inbox.collect();
                    pending = lock(&inbox.pending).input_requests();
                    if !pending.is_empty() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(4)).await;
                }
            }
            out.insert("inputRequests".into(), json!(pending));
        }
        (Status::Completed, Some(Ok(result))) => {
            let result: Value = serde_json::from_str(result.get()).unwrap_or_default();
            out.insert("result".into(), result);
        }
        (Status::Failed, Some(Err(e))) => {
            out.insert("error".into(), serde_json::to_value(e).unwrap_or_default());
        }
        (Status::Failed, Some(Ok(result))) => {
            // A 2025 task whose tool reported an error: shown as what it is, a result.
            let result: Value = serde_json::from_str(result.get()).unwrap_or_default();
            out.insert("result".into(), result);
        }
        _ => {}
    }
    Ok(raw(&out))
}

/// `tasks/update`: answers questions of the task (keys not asked, or answered already, are
/// ignored); the task goes on once none is left.
pub async fn update(
    g: &Arc<Gateway>,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    declared(session)?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct P {
        task_id: String,
        #[serde(default)]
        input_responses: Map<String, Value>,
    }
    let p: P = crate::jsonrpc::params(params)?;
    let task = tasks::owned(g, session, &p.task_id).await?;
    let Some(inbox) = inbox_of(g, &task.id) else {
        return Ok(raw(&json!({})));
    };
    for (key, answer) in p.input_responses {
        let Some(id) = lock(&inbox.pending).answer(&key) else {
            continue;
        };
        let response = Response::ok(Value::from(id), raw(&answer));
        let sink = Sink::new(inbox.session.clone());
        g.handle(&inbox.session, response.into(), sink).await;
    }
    Ok(raw(&json!({})))
}

/// `tasks/cancel`: acknowledged once the task is `cancelled` and its work stopped.
pub async fn cancel(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    declared(session)?;
    let TaskId { task_id } = crate::jsonrpc::params(params)?;
    // Cancelling a task that is over is acknowledged (it stays as it ended).
    if !tasks::owned(g, session, &task_id)
        .await?
        .status
        .is_terminal()
    {
        tasks::stop(g, session, &task_id).await?;
    }
    Ok(raw(&json!({})))
}
