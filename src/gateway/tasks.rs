//! Task-augmented `tools/call` and `tasks/get`, `tasks/result`, `tasks/list`, `tasks/cancel`.
//!
//! The director runs every task itself, in the background, detached from the session that
//! asked (so a disconnect loses nothing) and recorded in the store (so a restart loses nothing
//! either: work in flight then fails with that reason). Where the upstream supports tasks for
//! the tool, the background job runs the upstream's own task (`tools/call` with `task`, then
//! its `tasks/result`) and a cancel reaches it (`tasks/cancel`). Tasks belong to their
//! principal (a profile token's identity, else the session): for anyone else they do not exist.

use super::{Gateway, Params, decode_cursor, encode_cursor, relay, task_ext};
use crate::jsonrpc::{ErrorObject, Notification, Response, raw};
use crate::session::{Session, Sink, TransportKind};
use crate::tasks::{self, Status, Task};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const RELATED: &str = "io.modelcontextprotocol/related-task";
/// The longest the director waits on an upstream's `tasks/result` (the task's own
/// `timeoutMs`, when given, ends it sooner).
const UPSTREAM_RESULT_WAIT: Duration = Duration::from_secs(24 * 3600);
/// The longest a client's `tasks/result` waits before it is told to ask again.
const RESULT_WAIT: Duration = Duration::from_secs(300);
const LIST_PAGE: i64 = 100;

/// A task whose job runs in this process.
pub struct Running {
    job: tokio::task::AbortHandle,
    /// The detached session its upstream request is tracked in, and that request's id.
    pub(super) detached: Arc<Session>,
    request_id: Value,
    /// `(server, upstream task id)` when the upstream runs the task itself.
    upstream_task: Arc<Mutex<Option<(String, String)>>>,
    /// A 2026 task's questions for its client (`tasks/get` shows them, `tasks/update` answers).
    pub(super) inbox: Option<Arc<task_ext::Inbox>>,
    /// The session that created it, told of status changes it did not ask for.
    creator: Arc<str>,
}

/// `params.task`: the spec's `ttl`, and the seed's `timeoutMs` (a deadline for the work).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskParams {
    ttl: Option<i64>,
    timeout_ms: Option<u64>,
}

pub(super) fn store(g: &Gateway) -> Result<&crate::store::Store, ErrorObject> {
    g.store
        .as_ref()
        .ok_or_else(|| ErrorObject::internal("tasks need the store (not available on stdio)"))
}

pub(super) fn internal(e: sqlx::Error) -> ErrorObject {
    ErrorObject::internal(format!("task store: {e}"))
}

fn not_found(id: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("Failed to retrieve task: Task not found: {id}"))
}

/// Tells the task's creator (if still connected) of a status change.
pub(super) fn announce(g: &Gateway, creator: &str, task: &Task) {
    if let Some(s) = g.session(creator) {
        s.outbound.send(
            Notification {
                method: "notifications/tasks/status".into(),
                params: Some(raw(&task.to_json())),
            }
            .into(),
        );
    }
}

/// Starts a task running `tools/call` on `server` with `params` (the upstream's own tool
/// name already in place); answers the task, stored, at once. A 2026 task (`inbox`) runs in
/// the inbox's session, and what its upstream asks waits there for `tasks/update`.
pub async fn create(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    server: &str,
    mut params: Params,
    task: TaskParams,
    upstream_supports_tasks: bool,
    inbox: Option<Arc<task_ext::Inbox>>,
) -> Result<Task, ErrorObject> {
    let store = store(g)?.clone();
    params.shift_remove("task");
    let now = crate::analytics::now_ms();
    let record = Task {
        id: crate::secrets::random_token(),
        owner: session.principal().into_owned(),
        status: Status::Working,
        message: Some("The operation is now in progress.".into()),
        created_ms: now,
        updated_ms: now,
        ttl_ms: task.ttl,
        poll_interval_ms: tasks::POLL_INTERVAL_MS,
        outcome: None,
        node: Some(g.node.id.clone()),
    };
    tasks::create(&store, &record, &g.node.id)
        .await
        .map_err(internal)?;

    // The job's upstream request lives in a session of its own, so ending the creating
    // session does not cancel it; progress and server requests still go to the creator (a
    // 2026 task's, to its inbox).
    let (detached, sink) = match &inbox {
        Some(inbox) => (
            inbox.session.clone(),
            Sink {
                request_stream: Some(inbox.stream.clone()),
                session: inbox.session.clone(),
                task: Some(record.id.clone()),
            },
        ),
        None => (
            Session::new(
                crate::session::new_id(),
                TransportKind::Stdio,
                detached_scope(session),
            ),
            Sink {
                request_stream: None,
                session: session.clone(),
                task: Some(record.id.clone()),
            },
        ),
    };
    let modern = inbox.is_some();
    let inbox_stream = inbox.as_ref().map(|i| i.stream.clone());
    let request_id = json!(format!("task:{}", record.id));
    let upstream_task = Arc::new(Mutex::new(None));
    let job = {
        let (g, id, server, creator) = (
            g.clone(),
            record.id.clone(),
            server.to_string(),
            session.id.clone(),
        );
        let (detached, request_id, upstream_task) =
            (detached.clone(), request_id.clone(), upstream_task.clone());
        let ttl = task.ttl;
        async move {
            let work = async {
                if !upstream_supports_tasks {
                    return g
                        .forward(&detached, sink, &request_id, &server, "tools/call", params)
                        .await;
                }
                // The upstream keeps the result as long as the client asked (`ttl`); a
                // deadline alone (`timeoutMs`) is ours to enforce, not the upstream's.
                let mut upstream = serde_json::Map::new();
                if let Some(ttl) = ttl {
                    upstream.insert("ttl".into(), json!(ttl));
                }
                let mut augmented = params.clone();
                augmented.insert("task".into(), raw(&upstream));
                let created = g
                    .forward(
                        &detached,
                        sink.clone(),
                        &request_id,
                        &server,
                        "tools/call",
                        augmented,
                    )
                    .await?;
                let created: Value = serde_json::from_str(created.get()).unwrap_or_default();
                let Some(upstream_id) = created
                    .pointer("/task/taskId")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                else {
                    // The upstream answered directly: that is the result.
                    return Ok(raw(&created));
                };
                *upstream_task.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((server.clone(), upstream_id.clone()));
                let id_param = || {
                    let mut p = Params::new();
                    p.insert("taskId".into(), raw(&upstream_id));
                    p
                };
                // Polled until it is over or needs the client: `tasks/result` then delivers
                // what the upstream queued for the client (its requests carry the task) and
                // waits for the end, for as long as the task may take.
                let mut poll = created
                    .pointer("/task/pollInterval")
                    .and_then(Value::as_u64)
                    .unwrap_or(1000);
                loop {
                    let got = g
                        .forward(
                            &detached,
                            sink.clone(),
                            &request_id,
                            &server,
                            "tasks/get",
                            id_param(),
                        )
                        .await?;
                    let got: Value = serde_json::from_str(got.get()).unwrap_or_default();
                    match got.get("status").and_then(Value::as_str) {
                        Some("working") | None => {}
                        Some(_) => break,
                    }
                    poll = got
                        .get("pollInterval")
                        .and_then(Value::as_u64)
                        .unwrap_or(poll);
                    tokio::time::sleep(Duration::from_millis(poll.clamp(100, 5000))).await;
                }
                g.forward_with(
                    &detached,
                    sink,
                    &request_id,
                    &server,
                    "tasks/result",
                    id_param(),
                    Some(UPSTREAM_RESULT_WAIT),
                )
                .await
            };
            let outcome = match task.timeout_ms {
                Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), work).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        stop_upstream(&g, &detached, &request_id, &upstream_task).await;
                        Err(ErrorObject::internal(format!(
                            "the task timed out after {ms} ms"
                        )))
                    }
                },
                None => work.await,
            };
            // A tool's own error is a failed task in 2025, a completed one (with the result
            // saying isError) in 2026.
            let (status, message) = match &outcome {
                Ok(v) if super::forward::tool_error(v) && !modern => {
                    (Status::Failed, "The tool reported an error.".to_string())
                }
                Ok(_) => (Status::Completed, "The operation completed.".to_string()),
                Err(e) => (Status::Failed, e.message.clone()),
            };
            // A task cancelled meanwhile stays cancelled (the transition is refused).
            match tasks::transition(&store, &id, status, Some(&message), Some(&outcome)).await {
                Ok(Some(t)) => announce(&g, &creator, &t),
                Ok(None) => {}
                Err(e) => tracing::warn!(task = %id, error = %e, "task outcome not stored"),
            }
            g.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(stream) = inbox_stream {
                // Ends the stream, and with it the inbox's reader.
                let _ = stream.push(Response::ok(Value::Null, raw(&json!({}))).into());
            }
            // Connections the job opened for itself (`isolation = "session"`) end with it.
            for (_, c) in detached.isolated.lock().await.drain() {
                c.close();
            }
        }
    };
    let handle = tokio::spawn(job);
    g.running.lock().unwrap_or_else(|e| e.into_inner()).insert(
        record.id.clone(),
        Running {
            job: handle.abort_handle(),
            detached,
            request_id,
            upstream_task,
            inbox,
            creator: session.id.clone(),
        },
    );
    Ok(record)
}

/// Who a task's job acts as: its creator's profile, project and identity.
pub(super) fn detached_scope(session: &Session) -> crate::profile::Scope {
    crate::profile::Scope {
        profile: session.profile.clone(),
        project: session.project.clone(),
        filter: session.filter.clone(),
        principal: Some(session.principal().into_owned()),
    }
}

/// Cancels the job's upstream work: the request in flight, and the upstream's own task.
pub(super) async fn stop_upstream(
    g: &Gateway,
    detached: &Arc<Session>,
    request_id: &Value,
    upstream_task: &Mutex<Option<(String, String)>>,
) {
    relay::client_cancelled(
        detached,
        Some(&raw(
            &json!({ "requestId": request_id, "reason": "task stopped" }),
        )),
    )
    .await;
    let upstream = upstream_task
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some((server, id)) = upstream
        && let Some(u) = g.pool.get(&server)
    {
        let _ = u
            .request("tasks/cancel", Some(raw(&json!({ "taskId": id }))))
            .await;
    }
}

/// The params of the methods that name one task.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskId {
    pub task_id: String,
}

pub async fn get(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let TaskId { task_id } = crate::jsonrpc::params(params)?;
    Ok(raw(&owned(g, session, &task_id).await?.to_json()))
}

/// The session's principal's task `task_id` (anyone else's is "not found", like a missing one).
pub(super) async fn owned(
    g: &Gateway,
    session: &Session,
    task_id: &str,
) -> Result<Task, ErrorObject> {
    tasks::get(store(g)?, &session.principal(), task_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(task_id))
}

/// Blocks until the task is terminal, then answers exactly what the underlying request would
/// have, tagged with the related task.
pub async fn result(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let TaskId { task_id } = crate::jsonrpc::params(params)?;
    let deadline = tokio::time::Instant::now() + RESULT_WAIT;
    let mut pause = Duration::from_millis(50);
    loop {
        let task = owned(g, session, &task_id).await?;
        if task.status.is_terminal() {
            let related = json!({ "taskId": task.id });
            return match task.outcome {
                Some(Ok(v)) => {
                    let mut result: serde_json::Map<String, Value> =
                        serde_json::from_str(v.get()).unwrap_or_default();
                    let meta = result.entry("_meta").or_insert_with(|| json!({}));
                    if let Value::Object(m) = meta {
                        m.insert(RELATED.into(), related);
                    }
                    Ok(raw(&result))
                }
                Some(Err(e)) => Err(e),
                None => Err(ErrorObject::internal("the task was cancelled")
                    .with_data(json!({ "_meta": { RELATED: related } }))),
            };
        }
        // Waiting is bounded: by the session, and by RESULT_WAIT (the task goes on).
        if session.is_closed() || tokio::time::Instant::now() >= deadline {
            return Err(ErrorObject::internal(format!(
                "task {task_id} is still {}: call tasks/result again, or poll tasks/get",
                task.status.as_str()
            ))
            .with_data(json!({ "_meta": { RELATED: { "taskId": task_id } } })));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

pub async fn list(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    #[derive(serde::Deserialize)]
    struct P {
        cursor: Option<String>,
    }
    let p: P = crate::jsonrpc::params(params)?;
    let offset = match p.cursor {
        None => 0,
        Some(c) => {
            decode_cursor(&c).ok_or_else(|| ErrorObject::invalid_params("Invalid cursor"))?
        }
    };
    let page = tasks::list(
        store(g)?,
        &session.principal(),
        offset as i64,
        LIST_PAGE + 1,
    )
    .await
    .map_err(internal)?;
    let more = page.len() as i64 > LIST_PAGE;
    let tasks: Vec<Value> = page
        .iter()
        .take(LIST_PAGE as usize)
        .map(Task::to_json)
        .collect();
    let mut result = json!({ "tasks": tasks });
    if more {
        result["nextCursor"] = json!(encode_cursor(offset + LIST_PAGE as usize));
    }
    Ok(raw(&result))
}

/// A terminal task cannot be cancelled (-32602); otherwise it is `cancelled` before the answer,
/// and its upstream work is stopped.
pub async fn cancel(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let TaskId { task_id } = crate::jsonrpc::params(params)?;
    let cancelled = stop(g, session, &task_id).await?;
    announce(g, &session.id, &cancelled);
    Ok(raw(&cancelled.to_json()))
}

/// Cancels the session's task `task_id`: `cancelled` in the store, its work stopped.
pub(super) async fn stop(
    g: &Gateway,
    session: &Session,
    task_id: &str,
) -> Result<Task, ErrorObject> {
    let task = owned(g, session, task_id).await?;
    cancel_stored(g, task).await
}

/// Cancels `task` (its owner asked, or an operator): `cancelled` in the store, its work stopped
/// wherever it runs.
async fn cancel_stored(g: &Gateway, task: Task) -> Result<Task, ErrorObject> {
    let store = store(g)?;
    if task.status.is_terminal() {
        return Err(ErrorObject::invalid_params(format!(
            "Cannot cancel the task: it is already {}",
            task.status.as_str()
        )));
    }
    let cancelled = tasks::transition(
        store,
        &task.id,
        Status::Cancelled,
        Some("The task was cancelled."),
        None,
    )
    .await
    .map_err(internal)?
    .ok_or_else(|| ErrorObject::invalid_params("Cannot cancel the task: it has just finished"))?;
    halt(g, &task.id).await;
    // The replica running it, if another, stops its work now rather than at its next renewal.
    crate::cluster::signals::send(
        store,
        crate::cluster::signals::Signal::Cancelled(task.id.clone()),
    )
    .await;
    Ok(cancelled)
}

/// Stops the job of a cancelled task if it runs here (cancelled here, or through another
/// replica: the lease renewal finds out).
pub(super) async fn halt(g: &Gateway, task_id: &str) {
    let running = g
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(task_id);
    if let Some(r) = running {
        stop_upstream(g, &r.detached, &r.request_id, &r.upstream_task).await;
        r.job.abort();
        if let Some(inbox) = &r.inbox {
            let _ = inbox
                .stream
                .push(Response::ok(Value::Null, raw(&json!({}))).into());
        }
        for (_, c) in r.detached.isolated.lock().await.drain() {
            c.close();
        }
    }
}

impl Gateway {
    /// An operator cancels task `task_id`, whoever owns it (the admin API); `Ok(None)`: no
    /// such task.
    pub async fn cancel_task(&self, task_id: &str) -> Result<Option<Task>, ErrorObject> {
        let Some(task) = tasks::find(store(self)?, task_id).await.map_err(internal)? else {
            return Ok(None);
        };
        tracing::info!(task = %task_id, owner = %task.owner, "task cancelled by an operator");
        let creator = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task_id)
            .map(|r| r.creator.clone());
        let cancelled = cancel_stored(self, task).await?;
        // Its client did not ask: it is told (when connected to this replica).
        if let Some(creator) = creator {
            announce(self, &creator, &cancelled);
        }
        Ok(Some(cancelled))
    }

    /// Another replica signalled that task `task_id` was cancelled: stops it if it runs here.
    pub async fn halt_if_cancelled(self: Arc<Self>, task_id: String) {
        let here = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&task_id);
        let Some(store) = self.store.as_ref().filter(|_| here) else {
            return;
        };
        // The store says so, not only the signal.
        if tasks::status(store, &task_id).await.ok().flatten() == Some(Status::Cancelled) {
            tracing::info!(task = %task_id, "task cancelled through another replica: stopped");
            halt(&self, &task_id).await;
        }
    }

    /// At shutdown: the tasks running here fail at once, with that reason (their work ends
    /// with this process; the other replicas would otherwise wait for the leases to lapse).
    pub async fn abandon_tasks(&self) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let running: Vec<(String, Running)> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let lost = ErrorObject::internal("the director stopped while this task was running");
        for (id, r) in running {
            r.job.abort();
            let outcome = Err(lost.clone());
            let _ = tasks::transition(
                store,
                &id,
                Status::Failed,
                Some(&lost.message),
                Some(&outcome),
            )
            .await;
        }
    }
}

/// Every few seconds, for as long as the gateway lives: this replica's heartbeat, its tasks'
/// leases renewed (a task cancelled through another replica is stopped here), the tasks of
/// replicas gone failed, expired tasks purged.
pub(super) async fn keep_leases(g: std::sync::Weak<Gateway>, store: crate::store::Store) {
    let mut purged = std::time::Instant::now() - Duration::from_secs(3600);
    // Alone on its store, a director starting finds only the work of its own past: it fails
    // at once, rather than when the leases lapse.
    if !store.shared() {
        let all = crate::analytics::now_ms() + 2 * tasks::LEASE_MS;
        let started = g.upgrade().map_or(0, |g| g.node.started_ms);
        if let Ok(n) = tasks::fail_lapsed(&store, all, started).await
            && n > 0
        {
            tracing::warn!(tasks = n, "tasks interrupted by a restart marked failed");
        }
    }
    loop {
        let Some(gateway) = g.upgrade() else { return };
        let node = gateway.node.clone();
        if let Err(e) = crate::cluster::heartbeat(&store, &node).await {
            tracing::warn!(error = %e, "store unusable: heartbeat not written");
        }
        if store.shared()
            && let Ok(n) = crate::cluster::live(&store).await
        {
            let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
            gateway
                .replicas
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
        let ids: Vec<String> = gateway
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        if let Ok(over) = tasks::renew(&store, &node.id, &ids).await {
            for id in over {
                if tasks::status(&store, &id).await.ok().flatten() == Some(Status::Cancelled) {
                    tracing::info!(task = %id, "task cancelled through another replica: stopped");
                    halt(&gateway, &id).await;
                }
            }
        }
        match tasks::fail_lapsed(&store, crate::analytics::now_ms(), i64::MAX).await {
            Ok(n) if n > 0 => {
                tracing::warn!(tasks = n, "tasks of a director that stopped marked failed")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "task store unusable"),
        }
        if purged.elapsed() > Duration::from_secs(60) {
            let _ = tasks::purge_expired(&store).await;
            purged = std::time::Instant::now();
        }
        drop(gateway);
        tokio::time::sleep(crate::cluster::HEARTBEAT).await;
    }
}
