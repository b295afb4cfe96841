//! The router between client sessions and upstream servers.
//!
//! Transports hand each client message to [`Gateway::handle`]; it dispatches by method to one
//! file per method family (`lifecycle`, `tools`, `prompts`, `resources`, `completion`,
//! `logging`), and routes what upstreams send (`relay`) back to the one session it belongs to.

mod completion;
mod forward;
mod lanes;
mod lifecycle;
mod logging;
pub mod modern;
pub mod mrtr;
mod progress;
mod prompts;
mod relay;
pub(crate) mod resources;
mod sessions;
mod task_ext;
mod tasks;
mod tools;
pub(crate) mod view;

pub use forward::Named;
pub use lifecycle::{SUPPORTED_VERSIONS, negotiate};
pub use view::View;

use crate::jsonrpc::{ErrorObject, Message, Notification, Request, Response, raw};
use crate::session::{Session, Sink};
use crate::upstream::pool::{Pool, PoolEvent};
use crate::version::Version;
use indexmap::IndexMap;
use mcp_director_api::models::Config;
use serde_json::json;
use serde_json::value::RawValue;
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
    /// This replica, as the store knows it (its tasks are leased to it).
    pub node: crate::cluster::Node,
    /// Replicas alive on this store (1 alone): each enforces its share of the rate limits.
    pub replicas: Arc<std::sync::atomic::AtomicU32>,
    config: watch::Receiver<Arc<Config>>,
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    /// The merged catalog per project (`None`: sessions in no project).
    views: RwLock<HashMap<Option<String>, Arc<View>>>,
    progress: Arc<progress::Progress>,
    /// 2026 calls waiting for their client's answers.
    pub calls: mrtr::Calls,
}

impl Gateway {
    /// Starts the pool on the current configuration and follows its changes.
    pub fn start(
        config: watch::Receiver<Arc<Config>>,
        metrics: Arc<crate::metrics::Metrics>,
        analytics: Option<crate::analytics::Recorder>,
        store: Option<crate::store::Store>,
    ) -> Arc<Self> {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let gateway = Arc::new_cyclic(|weak: &std::sync::Weak<Gateway>| Self {
            pool: Pool::new(events_tx, relay::hook(weak.clone())),
            metrics,
            analytics,
            store,
            running: Mutex::new(HashMap::new()),
            node: crate::cluster::Node::new(),
            replicas: Arc::new(std::sync::atomic::AtomicU32::new(1)),
            config: config.clone(),
            sessions: RwLock::new(HashMap::new()),
            views: RwLock::new(HashMap::new()),
            progress: Arc::default(),
            calls: mrtr::Calls::default(),
        });
        gateway.pool.apply(&config.borrow());
        let _ = crate::session::NODE_PREFIX.set(gateway.node.prefix().to_string());
        if let Some(store) = gateway.store.clone() {
            tokio::spawn(tasks::keep_leases(Arc::downgrade(&gateway), store));
        }
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
                for session in g.calls.expired() {
                    g.remove_session(&session.id).await;
                }
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
        if session.negotiated().version >= Version::V2026_07_28 {
            return self.dispatch_modern(session, r, sink).await;
        }
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

    /// A 2026-07-28 request: the methods that revision has, answered as it wants them.
    async fn dispatch_modern(
        self: &Arc<Self>,
        session: &Arc<Session>,
        r: Request,
        sink: Sink,
    ) -> Result<Box<serde_json::value::RawValue>, ErrorObject> {
        let params = r.params.as_deref();
        let result = match r.method.as_str() {
            "server/discover" => modern::discover(self, session),
            "tools/list" => tools::list(self, session, params),
            "tools/call" => tools::call(self, session, &r, sink).await,
            "prompts/list" => prompts::list(self, session, params),
            "prompts/get" => prompts::get(self, session, &r, sink).await,
            "resources/list" => resources::list(self, session, params),
            "resources/templates/list" => resources::templates(self, session, params),
            "resources/read" => resources::read(self, session, &r, sink).await,
            "completion/complete" => completion::complete(self, session, &r, sink).await,
            "tasks/get" => task_ext::get(self, session, params).await,
            "tasks/update" => task_ext::update(self, session, params).await,
            "tasks/cancel" => task_ext::cancel(self, session, params).await,
            other => Err(modern::method_not_found(other)),
        }?;
        Ok(modern::finish(&r.method, session, result))
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
