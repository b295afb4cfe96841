//! Forwarding a client request to the upstream that serves it: by exposed name (tools,
//! prompts) or server, through the right connection (the instance of the session's project,
//! the session's own, or a lane), tracked until it is over, and recorded (metrics, analytics).

use super::{
    Gateway, Params, lanes, mrtr, params_map, relay, resources, string_param, task_ext, tasks,
};
use crate::jsonrpc::{ErrorObject, Id, Request, raw};
use crate::session::{InFlight, Session, Sink, TransportKind};
use mcp_director_api::models::{AnalyticsRowKind, Isolation};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

impl Gateway {
    /// Forwards a request addressed by exposed name (`tools/call`, `prompts/get`) to the server
    /// owning it, with the upstream's own name; a name the session cannot see is unknown.
    pub async fn forward_named(
        self: &Arc<Self>,
        session: &Arc<Session>,
        r: &Request,
        sink: Sink,
        kind: Named,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let mut params = params_map(r.params.as_deref())?;
        let name = string_param(&params, "name")?;
        let view = self.view_for(session.project.as_deref());
        let table = match kind {
            Named::Tool => &view.tool_names,
            Named::Prompt => &view.prompt_names,
        };
        let (server, original) = table
            .resolve(&name)
            .filter(|(server, _)| session.filter.sees(server, &name))
            .ok_or_else(|| {
                ErrorObject::invalid_params(format!("Unknown {}: {name}", kind.noun()))
            })?;
        let span = tracing::Span::current();
        span.record("mcp.server", server);
        span.record("mcp.tool", original);
        params.insert("name".into(), raw(original));
        if let Named::Tool = kind {
            let support = view
                .tool(&name)
                .and_then(|t| t.pointer("/execution/taskSupport"))
                .and_then(Value::as_str);
            let upstream_tasks = || {
                support.is_some()
                    && self
                        .pool
                        .instance(server, session.project.as_deref())
                        .and_then(|u| u.status().info)
                        .is_some_and(|i| {
                            !i.modern
                                && i.capabilities
                                    .get("tasks")
                                    .and_then(|t| t.pointer("/requests/tools/call"))
                                    .is_some()
                        })
            };
            if session.transport == TransportKind::Stateless {
                // 2026: the director decides which calls become tasks (those of tools that
                // support them, for clients that declared the extension); a 2025-style `task`
                // param is tolerated and changes nothing.
                params.shift_remove("task");
                let declared = session.has_capability(crate::session::TASKS_EXTENSION);
                match support {
                    Some("required" | "optional") if declared && self.store.is_some() => {
                        return task_ext::create(self, session, server, params, upstream_tasks())
                            .await;
                    }
                    Some("required") => {
                        return Err(super::modern::missing_capability(json!({
                            "extensions": { crate::session::TASKS_EXTENSION: {} }
                        })));
                    }
                    _ => {}
                }
            } else {
                match params.get("task") {
                    // A tool that forbids tasks refuses one (-32601, as the spec says); a tool
                    // that says nothing is run as a task by the director itself.
                    Some(_) if support == Some("forbidden") => {
                        return Err(ErrorObject::new(
                            crate::jsonrpc::METHOD_NOT_FOUND,
                            format!("Tool {name} cannot be called as a task"),
                        ));
                    }
                    Some(task) if self.store.is_some() => {
                        let task = serde_json::from_str(task.get()).map_err(|e| {
                            ErrorObject::invalid_params(format!("Invalid params.task: {e}"))
                        })?;
                        let upstream_tasks = upstream_tasks();
                        let task = tasks::create(
                            self,
                            session,
                            server,
                            params,
                            task,
                            upstream_tasks,
                            None,
                        )
                        .await?;
                        return Ok(raw(&json!({ "task": task.to_json() })));
                    }
                    None if support == Some("required") => {
                        return Err(ErrorObject::new(
                            crate::jsonrpc::METHOD_NOT_FOUND,
                            format!("Tool {name} must be called as a task (params.task)"),
                        ));
                    }
                    _ => {}
                }
            }
        }
        let started = std::time::Instant::now();
        let outcome = self
            .forward(session, sink, &r.id, server, kind.method(), params)
            .await;
        let (metrics_on, analytics_on) = {
            let config = self.config.borrow();
            let o = &config.settings.observability;
            (o.tool_metrics, o.analytics)
        };
        // Reading the result for `isError` costs a parse: only when something records it.
        if metrics_on || analytics_on {
            let ok = outcome.as_ref().is_ok_and(|r| !tool_error(r));
            if let (Named::Tool, true) = (kind, metrics_on) {
                let profile = session.profile.as_deref();
                self.metrics
                    .tool_call(server, original, profile, ok, started.elapsed());
            }
            let analytics_kind = match kind {
                Named::Tool => AnalyticsRowKind::Tool,
                Named::Prompt => AnalyticsRowKind::Prompt,
            };
            self.observe(
                session,
                r,
                analytics_kind,
                server,
                original,
                started,
                &outcome,
                ok,
            );
        }
        outcome
    }

    /// Queues a usage record (sizes only: never the payloads themselves).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &self,
        session: &Session,
        r: &Request,
        kind: AnalyticsRowKind,
        server: &str,
        name: &str,
        started: std::time::Instant,
        outcome: &Result<Box<RawValue>, ErrorObject>,
        ok: bool,
    ) {
        let Some(analytics) = &self.analytics else {
            return;
        };
        if !self.config.borrow().settings.observability.analytics {
            return;
        }
        analytics.record(&crate::analytics::Record {
            kind,
            server,
            name,
            profile: session.profile.as_deref().unwrap_or_default(),
            project: session.project.as_deref().unwrap_or_default(),
            duration: started.elapsed(),
            ok,
            bytes_in: r.params.as_ref().map_or(0, |p| p.get().len()),
            bytes_out: outcome.as_ref().map_or(0, |v| v.get().len()),
        });
    }

    /// Sends a client request to `server`, with the director's own id and progress token,
    /// tracking it so a cancel or a session end reaches the upstream.
    pub async fn forward(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sink: Sink,
        client_id: &Id,
        server: &str,
        method: &str,
        params: Params,
    ) -> Result<Box<RawValue>, ErrorObject> {
        self.forward_with(session, sink, client_id, server, method, params, None)
            .await
    }

    /// [`Gateway::forward`], waiting `timeout` instead of the server's `timeout_ms`.
    #[allow(clippy::too_many_arguments)]
    pub async fn forward_with(
        self: &Arc<Self>,
        session: &Arc<Session>,
        sink: Sink,
        client_id: &Id,
        server: &str,
        method: &str,
        mut params: Params,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let (upstream, mut connection) = self.connection(session, server).await?;
        // A session that can be asked things gets a connection no other such session uses.
        let mut _hold = None;
        // (The client asked is the sink's: a task job's requests lead to the task's creator.)
        if upstream.config.isolation != Isolation::Session
            && lanes::needed(&sink.session, &upstream)
        {
            (connection, _hold) = lanes::hold(self, &sink.session, &upstream, connection).await?;
        }
        let (upstream_id, rx) = connection.register()?;
        // From here on the request is tracked; the guard undoes that however this ends, and
        // tells the upstream when the caller went away before the answer.
        let mut tracked = Tracked {
            gateway: self.clone(),
            session: session.clone(),
            key: client_id.to_string(),
            connection: connection.clone(),
            upstream_id,
            token: None,
            answered: false,
        };
        tracked.token = self.progress.route(&mut params, connection.id, &sink)?;
        session
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                tracked.key.clone(),
                InFlight {
                    connection: connection.clone(),
                    upstream_id,
                    sink: sink.clone(),
                },
            );
        let timeout = timeout.unwrap_or_else(|| upstream.timeout());
        if connection.info.modern {
            modern_meta(&mut params, session);
        }
        let mut outcome = connection
            .send_request(upstream_id, method, Some(raw(&params)), rx, timeout)
            .await;
        // A 2026 upstream asks for input in its result: a 2026 client is handed the question
        // as it is (its transport wraps the state: it knows the call as the client named it);
        // a 2025 client is asked on its session, and the director retries for it.
        let bridged = connection.info.modern && session.transport != TransportKind::Stateless;
        let rounds = if bridged { MAX_INPUT_ROUNDS } else { 0 };
        for _round in 0..rounds {
            let Some((requests, state)) = outcome.as_ref().ok().and_then(|r| mrtr::asks(r)) else {
                break;
            };
            let mut answers = serde_json::Map::new();
            for (key, request) in requests {
                let asked = request.get("method").and_then(Value::as_str).unwrap_or("");
                let asked_params = request.get("params").map(raw);
                let answer = relay::ask(self, &sink, asked, asked_params, timeout).await?;
                let answer: Value = serde_json::from_str(answer.get()).unwrap_or(Value::Null);
                answers.insert(key, answer);
            }
            params.insert("inputResponses".into(), raw(&answers));
            match state {
                Some(state) => params.insert("requestState".into(), raw(&state)),
                None => params.shift_remove("requestState"),
            };
            let (next_id, rx) = connection.register()?;
            tracked.upstream_id = next_id;
            if let Some(f) = session
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&tracked.key)
            {
                f.upstream_id = next_id;
            }
            outcome = connection
                .send_request(next_id, method, Some(raw(&params)), rx, timeout)
                .await;
        }
        tracked.answered = true;
        outcome
    }

    /// The instance of `server` a session uses (its project's), and the connection it is
    /// reached through (the session's own for `isolation = "session"`).
    pub async fn connection(
        self: &Arc<Self>,
        session: &Arc<Session>,
        server: &str,
    ) -> Result<
        (
            Arc<crate::upstream::pool::Upstream>,
            Arc<crate::upstream::Connection>,
        ),
        ErrorObject,
    > {
        let upstream = self
            .pool
            .instance(server, session.project.as_deref())
            .ok_or_else(|| {
                ErrorObject::internal(format!("upstream server '{server}' is not configured"))
            })?;
        let connection = if upstream.config.isolation == Isolation::Session {
            self.isolated_connection(session, &upstream).await?
        } else {
            upstream
                .connection()
                .ok_or_else(|| upstream.unavailable())?
        };
        Ok((upstream, connection))
    }

    /// The session's own connection to an `isolation = "session"` server, opened on first use
    /// and closed (its process group killed) when the session ends.
    async fn isolated_connection(
        self: &Arc<Self>,
        session: &Arc<Session>,
        upstream: &Arc<crate::upstream::pool::Upstream>,
    ) -> Result<Arc<crate::upstream::Connection>, ErrorObject> {
        let mut isolated = session.isolated.lock().await;
        if let Some(c) = isolated.get(&upstream.name).filter(|c| c.is_open()) {
            return Ok(c.clone());
        }
        if session.is_closed() {
            return Err(ErrorObject::internal("session ended"));
        }
        let (connection, mut events) = self.pool.open_dedicated(upstream).await.map_err(|e| {
            ErrorObject::internal(format!(
                "upstream server '{}' is unavailable: {e}",
                upstream.name
            ))
        })?;
        isolated.insert(upstream.name.clone(), connection.clone());
        drop(isolated);
        resources::resubscribe(std::slice::from_ref(session), upstream, &connection).await;
        let weak = Arc::downgrade(self);
        let owner = Arc::downgrade(session);
        let server = upstream.name.clone();
        let c = connection.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let (Some(g), Some(owner)) = (weak.upgrade(), owner.upgrade()) else {
                    break;
                };
                relay::from_server(&g, &server, c.clone(), Some(&owner), event);
            }
        });
        Ok(connection)
    }
}

/// A request forwarded upstream, tracked until it is over (see `Gateway::forward`).
struct Tracked {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    key: String,
    connection: Arc<crate::upstream::Connection>,
    upstream_id: i64,
    token: Option<String>,
    /// The upstream answered (or the wait ended on its own terms: timeout, cancel, close).
    answered: bool,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.session
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        if let Some(t) = &self.token {
            self.gateway.progress.forget(t);
        }
        if !self.answered {
            // The caller went away (a client that hung up mid-call): the upstream stops too.
            self.connection.forget(self.upstream_id);
            let connection = self.connection.clone();
            let cancel = json!({"requestId": self.upstream_id, "reason": "the client went away"});
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    connection
                        .notify("notifications/cancelled", Some(raw(&cancel)))
                        .await;
                });
            }
        }
    }
}

/// Whether a tools/call result reports a tool error (`isError: true`).
pub(crate) fn tool_error(result: &RawValue) -> bool {
    // Most results say nothing of it: no parse for those.
    if !result.get().contains("\"isError\"") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "isError", default)]
        is_error: bool,
    }
    serde_json::from_str::<Flag>(result.get()).is_ok_and(|f| f.is_error)
}

/// The kinds of item addressed by exposed name.
#[derive(Clone, Copy)]
pub enum Named {
    Tool,
    Prompt,
}

impl Named {
    fn noun(self) -> &'static str {
        match self {
            Named::Tool => "tool",
            Named::Prompt => "prompt",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Named::Tool => "tools/call",
            Named::Prompt => "prompts/get",
        }
    }
}

/// What a 2026 upstream is told of the client in `_meta`: what it can be asked, and the log
/// level the session wants.
fn modern_meta(params: &mut Params, session: &Session) {
    let mut meta: serde_json::Map<String, Value> = params
        .get("_meta")
        .and_then(|m| serde_json::from_str(m.get()).ok())
        .unwrap_or_default();
    {
        meta.insert(
            "io.modelcontextprotocol/clientCapabilities".into(),
            session.negotiated().capabilities.to_json(),
        );
        let level = *session.log_level.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(level) = level.and_then(super::logging::name) {
            meta.insert("io.modelcontextprotocol/logLevel".into(), json!(level));
        }
    }
    params.insert("_meta".into(), raw(&meta));
}

/// How many times a 2026 upstream may ask for input in one call.
const MAX_INPUT_ROUNDS: usize = 16;
