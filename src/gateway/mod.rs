//! The router between client sessions and upstream servers.
//!
//! Transports hand each client message to [`Gateway::handle`]; it dispatches by method to one
//! file per method family (`lifecycle`, `tools`, `prompts`, `resources`, `completion`,
//! `logging`), and routes what upstreams send (`relay`) back to the one session it belongs to.

mod completion;
mod lanes;
mod lifecycle;
mod logging;
mod progress;
mod prompts;
mod relay;
mod resources;
mod tasks;
mod tools;
mod view;

pub use lifecycle::{SUPPORTED_VERSIONS, negotiate};
pub use view::View;

use crate::jsonrpc::{ErrorObject, Id, Message, Notification, Request, Response, raw};
use crate::session::{InFlight, Session, Sink, TransportKind};
use crate::upstream::pool::{Pool, PoolEvent};
use indexmap::IndexMap;
use mcp_director_api::models::{AnalyticsRowKind, Config, Isolation};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// The client methods the gateway answers: metrics and spans name these, and `other`.
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
];

/// A bounded label for a client-chosen method name.
fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Request params kept raw per key: the director reads and rewrites only what it routes on.
pub type Params = IndexMap<String, Box<RawValue>>;

pub struct Gateway {
    pub pool: Arc<Pool>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Usage records (when there is a store: not on stdio).
    analytics: Option<crate::analytics::Recorder>,
    /// Where tasks live (not on stdio, which has no store).
    store: Option<crate::store::Store>,
    /// Tasks whose job runs in this process.
    running: Mutex<HashMap<String, tasks::Running>>,
    config: watch::Receiver<Arc<Config>>,
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    /// The merged catalog per project (`None`: sessions in no project).
    views: RwLock<HashMap<Option<String>, Arc<View>>>,
    progress: Arc<progress::Progress>,
}

impl Gateway {
    /// Starts the pool on the current configuration and follows its changes.
    pub fn start(
        config: watch::Receiver<Arc<Config>>,
        metrics: Arc<crate::metrics::Metrics>,
        analytics: Option<crate::analytics::Recorder>,
        store: Option<crate::store::Store>,
    ) -> Arc<Self> {
        if let Some(store) = store.clone() {
            tokio::spawn(async move {
                match crate::tasks::fail_orphans(&store).await {
                    Ok(n) if n > 0 => {
                        tracing::warn!(tasks = n, "tasks interrupted by a restart marked failed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "task store unusable"),
                }
                loop {
                    let _ = crate::tasks::purge_expired(&store).await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let gateway = Arc::new_cyclic(|weak: &std::sync::Weak<Gateway>| Self {
            pool: Pool::new(events_tx, relay::hook(weak.clone())),
            metrics,
            analytics,
            store,
            running: Mutex::new(HashMap::new()),
            config: config.clone(),
            sessions: RwLock::new(HashMap::new()),
            views: RwLock::new(HashMap::new()),
            progress: Arc::default(),
        });
        gateway.pool.apply(&config.borrow());
        let weak = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(g) = weak.upgrade() else { break };
                match event {
                    PoolEvent::CatalogChanged { .. } => g.rebuild_view(),
                    PoolEvent::Connected {
                        upstream,
                        connection,
                    } => {
                        let sessions: Vec<_> = g
                            .sessions()
                            .into_iter()
                            .filter(|s| {
                                g.pool
                                    .instance(&upstream.server, s.project.as_deref())
                                    .is_some_and(|i| i.name == upstream.name)
                            })
                            .collect();
                        tokio::spawn(async move {
                            resources::resubscribe(&sessions, &upstream, &connection).await
                        });
                    }
                    PoolEvent::FromServer {
                        server,
                        connection,
                        event,
                    } => relay::from_server(&g, &server, connection, None, event),
                }
            }
        });
        let weak = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            loop {
                let Some(g) = weak.upgrade() else { break };
                let limit =
                    Duration::from_secs(g.settings().settings.session_idle_timeout_secs.get());
                g.expire_idle(limit).await;
                lanes::close_idle(&g.pool.all());
                drop(g);
                tokio::time::sleep((limit / 2).min(Duration::from_secs(30))).await;
            }
        });
        let weak = Arc::downgrade(&gateway);
        let mut config = config;
        tokio::spawn(async move {
            while config.changed().await.is_ok() {
                let Some(g) = weak.upgrade() else { break };
                let cfg = config.borrow_and_update().clone();
                g.pool.apply(&cfg);
                g.rebuild_view();
            }
        });
        gateway
    }

    /// Where usage is recorded (none on stdio).
    pub fn analytics(&self) -> Option<&crate::analytics::Recorder> {
        self.analytics.as_ref()
    }

    pub fn settings(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// The view of sessions in no project (the admin API's).
    pub fn view(&self) -> Arc<View> {
        self.view_for(None)
    }

    pub fn view_for(&self, project: Option<&str>) -> Arc<View> {
        self.views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&project.map(str::to_string))
            .cloned()
            .unwrap_or_default()
    }

    fn rebuild_view(&self) {
        let config = self.settings();
        let keys = std::iter::once(None).chain(config.projects.keys().cloned().map(Some));
        let next: HashMap<Option<String>, Arc<View>> = keys
            .map(|p| {
                let view = Arc::new(View::build(&config, &self.pool, p.as_deref()));
                (p, view)
            })
            .collect();
        let previous = std::mem::replace(
            &mut *self.views.write().unwrap_or_else(|e| e.into_inner()),
            next.clone(),
        );
        // Sessions of one project and profile see the same thing: compared once for all.
        let mut changes: HashMap<(Option<String>, Option<String>), Vec<&'static str>> =
            HashMap::new();
        for s in self.sessions() {
            if !s.negotiated().initialized {
                continue;
            }
            let (Some(old), Some(new)) = (previous.get(&s.project), next.get(&s.project)) else {
                continue;
            };
            let methods = changes
                .entry((s.project.clone(), s.profile.clone()))
                .or_insert_with(|| old.changes(new, &s.filter));
            for method in methods.iter() {
                s.outbound.send(
                    Notification {
                        method: method.to_string(),
                        params: None,
                    }
                    .into(),
                );
            }
        }
    }

    pub fn add_session(&self, session: Arc<Session>) {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session);
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The sessions running task jobs' upstream requests.
    pub fn task_sessions(&self) -> Vec<Arc<Session>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|r| r.detached.clone())
            .collect()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Ends a session: its requests in flight are cancelled upstream.
    pub async fn remove_session(&self, id: &str) -> bool {
        let session = self
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let Some(session) = session else { return false };
        session.close();
        let in_flight: Vec<InFlight> = session
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, v)| v)
            .collect();
        for f in in_flight {
            let cancel = json!({"requestId": f.upstream_id, "reason": "client session ended"});
            f.connection
                .notify("notifications/cancelled", Some(raw(&cancel)))
                .await;
            f.connection.forget(f.upstream_id);
        }
        for (_, c) in session.isolated.lock().await.drain() {
            c.close();
        }
        true
    }

    /// Ends Streamable HTTP sessions nobody used for `limit` (clients rarely send DELETE);
    /// the other transports' sessions end with their connection.
    async fn expire_idle(&self, limit: Duration) {
        let idle: Vec<String> = self
            .sessions()
            .iter()
            .filter(|s| s.transport == TransportKind::StreamableHttp && s.idle_for(limit))
            .map(|s| s.id.to_string())
            .collect();
        for id in idle {
            tracing::info!(session = %id, "idle session expired");
            self.remove_session(&id).await;
        }
    }

    /// Tells every open stream the director is going away (`notifications/shutdown`).
    pub fn announce_shutdown(&self) {
        let n: Message = Notification {
            method: "notifications/shutdown".into(),
            params: None,
        }
        .into();
        for s in self.sessions() {
            s.outbound.send(n.clone());
        }
    }

    /// Handles one client message; requests get their response, the rest `None`.
    pub async fn handle(
        self: &Arc<Self>,
        session: &Arc<Session>,
        message: Message,
        sink: Sink,
    ) -> Option<Response> {
        session.touch();
        match message {
            // Boxed: the serving of a request is a large future, moved around less this way.
            Message::Request(r) => Some(Box::pin(self.request(session, r, sink)).await),
            Message::Notification(n) => {
                self.notification(session, n).await;
                None
            }
            Message::Response(r) => {
                relay::client_response(self, session, r).await;
                None
            }
        }
    }

    /// One client request, in a span naming its method (and, once resolved, its server and
    /// tool), counted by transport, method and outcome.
    async fn request(self: &Arc<Self>, session: &Arc<Session>, r: Request, sink: Sink) -> Response {
        let method = method_label(&r.method);
        // Debug level: free when neither the log filter nor the exporter wants it.
        let span = tracing::debug_span!(
            "mcp.request",
            otel.name = method,
            rpc.method = method,
            mcp.transport = session.transport.label(),
            mcp.server = tracing::field::Empty,
            mcp.tool = tracing::field::Empty,
        );
        let id = r.id.clone();
        let carrier = crate::telemetry::trace_context(r.params.as_deref());
        let work = self.dispatch(session, r, sink).instrument(span.clone());
        let outcome = crate::telemetry::with_client_context(carrier, &span, work).await;
        self.metrics
            .mcp_request(session.transport.label(), method, outcome.is_ok());
        Response { id, outcome }
    }

    async fn dispatch(
        self: &Arc<Self>,
        session: &Arc<Session>,
        r: Request,
        sink: Sink,
    ) -> Result<Box<serde_json::value::RawValue>, ErrorObject> {
        match r.method.as_str() {
            "initialize" => lifecycle::initialize(self, session, r.params.as_deref()),
            "ping" => Ok(raw(&json!({}))),
            "server/discover" => Err(lifecycle::discover_unsupported()),
            "tools/list" => tools::list(self, session, r.params.as_deref()),
            "tools/call" => tools::call(self, session, &r, sink).await,
            "prompts/list" => prompts::list(self, session, r.params.as_deref()),
            "prompts/get" => prompts::get(self, session, &r, sink).await,
            "resources/list" => resources::list(self, session, r.params.as_deref()),
            "resources/templates/list" => resources::templates(self, session, r.params.as_deref()),
            "resources/read" => resources::read(self, session, &r, sink).await,
            "resources/subscribe" => resources::subscribe(self, session, r.params.as_deref()).await,
            "resources/unsubscribe" => {
                resources::unsubscribe(self, session, r.params.as_deref()).await
            }
            "completion/complete" => completion::complete(self, session, &r, sink).await,
            "logging/setLevel" => logging::set_level(self, session, r.params.as_deref()).await,
            "tasks/get" => tasks::get(self, session, r.params.as_deref()).await,
            "tasks/result" => tasks::result(self, session, r.params.as_deref()).await,
            "tasks/list" => tasks::list(self, session, r.params.as_deref()).await,
            "tasks/cancel" => tasks::cancel(self, session, r.params.as_deref()).await,
            other => Err(ErrorObject::method_not_found(other)),
        }
    }

    async fn notification(&self, session: &Arc<Session>, n: Notification) {
        match n.method.as_str() {
            "notifications/initialized" => {
                session
                    .negotiated
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .initialized = true;
            }
            "notifications/cancelled" => {
                relay::client_cancelled(session, n.params.as_deref()).await
            }
            other => {
                tracing::debug!(session = %session.id, method = other, "client notification ignored")
            }
        }
    }

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
            match params.get("task") {
                // A tool that forbids tasks refuses one (-32601, as the spec says); a tool that
                // says nothing is run as a task by the director itself.
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
                    let upstream_tasks = support.is_some()
                        && self
                            .pool
                            .instance(server, session.project.as_deref())
                            .and_then(|u| u.status().info)
                            .is_some_and(|i| {
                                i.capabilities
                                    .get("tasks")
                                    .and_then(|t| t.pointer("/requests/tools/call"))
                                    .is_some()
                            });
                    return tasks::create(self, session, server, params, task, upstream_tasks)
                        .await;
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
        let outcome = connection
            .send_request(
                upstream_id,
                method,
                Some(raw(&params)),
                rx,
                timeout.unwrap_or_else(|| upstream.timeout()),
            )
            .await;
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
pub(super) fn tool_error(result: &RawValue) -> bool {
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

/// Params as a map of raw values (absent = empty).
pub fn params_map(params: Option<&RawValue>) -> Result<Params, ErrorObject> {
    crate::jsonrpc::params(params)
}

/// A string field of the params.
pub fn string_param(params: &Params, key: &str) -> Result<String, ErrorObject> {
    let raw = params
        .get(key)
        .ok_or_else(|| ErrorObject::invalid_params(format!("missing params.{key}")))?;
    serde_json::from_str(raw.get())
        .map_err(|_| ErrorObject::invalid_params(format!("params.{key} must be a string")))
}

pub(super) fn encode_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("mcpd:{offset}"))
}

pub(super) fn decode_cursor(cursor: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("mcpd:")?
        .parse()
        .ok()
}
