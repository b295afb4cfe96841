//! The upstream pool: one supervised connection per configured server.
//!
//! A supervisor task per server connects, initializes, fetches the catalog (tools, prompts,
//! resources, templates), relays what the server sends to the gateway, and when the
//! connection drops marks the server down (its tools vanish from lists), then reconnects with
//! capped exponential backoff. `apply` reconciles the pool with a new configuration: only added,
//! removed or changed servers are started, stopped or restarted.

use super::{Connection, Event, Hook, Pipe, ServerInfo};
use crate::jsonrpc::{ErrorObject, raw};
use mcp_director_api::models::{Config, Server, Transport, UpstreamState};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The list kinds a server may offer, with the capability that announces each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Tools,
        Kind::Prompts,
        Kind::Resources,
        Kind::ResourceTemplates,
    ];

    pub fn list_method(self) -> &'static str {
        match self {
            Kind::Tools => "tools/list",
            Kind::Prompts => "prompts/list",
            Kind::Resources => "resources/list",
            Kind::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The key of the items in the list result.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Tools => "tools",
            Kind::Prompts => "prompts",
            Kind::Resources => "resources",
            Kind::ResourceTemplates => "resourceTemplates",
        }
    }

    fn capability(self) -> &'static str {
        match self {
            Kind::Tools => "tools",
            Kind::Prompts => "prompts",
            Kind::Resources | Kind::ResourceTemplates => "resources",
        }
    }

    pub fn from_list_changed(method: &str) -> &'static [Kind] {
        match method {
            "notifications/tools/list_changed" => &[Kind::Tools],
            "notifications/prompts/list_changed" => &[Kind::Prompts],
            "notifications/resources/list_changed" => &[Kind::Resources, Kind::ResourceTemplates],
            _ => &[],
        }
    }
}

/// What the pool tells the gateway.
pub enum PoolEvent {
    /// A server's catalog changed (fetched anew, or emptied because it went down).
    CatalogChanged { server: String, kinds: Vec<Kind> },
    /// An instance (re)connected: what sessions hold through it is set up again.
    Connected {
        upstream: Arc<Upstream>,
        connection: Arc<Connection>,
    },
    /// A notification or request from a server.
    FromServer {
        server: String,
        connection: Arc<Connection>,
        event: Event,
    },
}

/// Live status, for `/api/servers/{name}/status` and `/health`.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: UpstreamState,
    pub pid: Option<u32>,
    pub info: Option<ServerInfo>,
    pub last_error: Option<String>,
    pub restarts: u64,
}

/// One running instance of a configured server: the server itself (`name` = the server's
/// name), or its instance for a project whose env/cwd differ (`name` = `server@project`).
pub struct Upstream {
    pub name: String,
    /// The configured server this is an instance of.
    pub server: String,
    pub project: Option<String>,
    /// The server's configuration, with the project's env and cwd applied.
    pub config: Server,
    status: watch::Sender<Status>,
    connection: RwLock<Option<Arc<Connection>>>,
    catalog: RwLock<BTreeMap<Kind, Arc<Vec<Value>>>>,
    stop: watch::Sender<bool>,
    /// Extra connections to this instance, and which session holds which (see
    /// `gateway/lanes.rs`); closed with the instance.
    pub lanes: std::sync::Mutex<Lanes>,
    /// The last lines its processes wrote to stderr.
    pub stderr: Arc<super::stdio::StderrTail>,
    /// Asked to restart now (an operator's restart).
    restart: tokio::sync::Notify,
}

/// Extra connections of an instance, for sessions that need one to themselves.
#[derive(Default)]
pub struct Lanes {
    pub extra: Vec<(Arc<Connection>, Instant)>,
    /// Connection id → (the session using it, how many of its requests are in flight).
    pub held: std::collections::HashMap<u64, (Arc<str>, usize)>,
}

impl Upstream {
    /// Resolves once the server has connected (its catalog known) or failed.
    pub async fn settled(&self) {
        let mut status = self.status.subscribe();
        let _ = status
            .wait_for(|s| s.state != UpstreamState::Starting)
            .await;
    }

    /// Ends its connection and starts it again at once (a back-off under way is cut short).
    pub fn restart(&self) {
        self.restart.notify_one();
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    pub fn connection(&self) -> Option<Arc<Connection>> {
        self.connection
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|c| c.is_open())
    }

    /// The server's items of `kind` (empty while it is down).
    pub fn catalog(&self, kind: Kind) -> Arc<Vec<Value>> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kind)
            .cloned()
            .unwrap_or_default()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms.get())
    }

    /// Sends a request to the server; an error names the server when it is down.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Box<serde_json::value::RawValue>>,
    ) -> Result<Box<serde_json::value::RawValue>, ErrorObject> {
        match self.connection() {
            Some(c) => c.request(method, params, self.timeout()).await,
            None => Err(self.unavailable()),
        }
    }

    pub fn unavailable(&self) -> ErrorObject {
        let status = self.status();
        let why = status
            .last_error
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        ErrorObject::internal(format!(
            "upstream server '{}' is unavailable{why}",
            self.name
        ))
    }

    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        self.status.send_modify(f);
    }
}

pub struct Pool {
    upstreams: RwLock<BTreeMap<String, Arc<Upstream>>>,
    /// For legacy SSE upstreams.
    http: reqwest::Client,
    /// For Streamable HTTP upstreams.
    hyper: crate::net::HyperClient,
    /// `settings.limits.max_upstream_message_bytes`, for connections opened from now on.
    max_message: std::sync::atomic::AtomicUsize,
    events: mpsc::UnboundedSender<PoolEvent>,
    hook: Hook,
}

impl Pool {
    /// `hook` sees every server notification first, in order (see [`Hook`]).
    pub fn new(events: mpsc::UnboundedSender<PoolEvent>, hook: Hook) -> Arc<Self> {
        let http = crate::net::http_client()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("a default reqwest client builds");
        Arc::new(Self {
            upstreams: RwLock::new(BTreeMap::new()),
            http,
            hyper: crate::net::hyper_client(),
            max_message: std::sync::atomic::AtomicUsize::new(usize::MAX),
            events,
            hook,
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Upstream>> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Starts, stops and restarts servers so the pool matches `config`; unchanged servers keep
    /// their connections.
    pub fn apply(self: &Arc<Self>, config: &Config) {
        let max = config.settings.limits.max_upstream_message_bytes;
        self.max_message.store(
            usize::try_from(max).unwrap_or(usize::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut upstreams = self.upstreams.write().unwrap_or_else(|e| e.into_inner());
        let wanted = instances(config);
        let stale: Vec<String> = upstreams
            .iter()
            .filter(|(name, u)| wanted.get(*name).is_none_or(|(_, _, s)| *s != u.config))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(u) = upstreams.remove(&name) {
                tracing::info!(server = %name, "stopping upstream");
                let _ = u.stop.send(true);
                for (lane, _) in u
                    .lanes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extra
                    .drain(..)
                {
                    lane.close();
                }
                let _ = self.events.send(PoolEvent::CatalogChanged {
                    server: name,
                    kinds: Kind::ALL.to_vec(),
                });
            }
        }
        for (name, (server_name, project, server)) in wanted {
            if upstreams.contains_key(&name) {
                continue;
            }
            let upstream = Arc::new(Upstream {
                name: name.clone(),
                server: server_name,
                project,
                config: server,
                status: watch::Sender::new(Status {
                    state: UpstreamState::Starting,
                    pid: None,
                    info: None,
                    last_error: None,
                    restarts: 0,
                }),
                connection: RwLock::new(None),
                catalog: RwLock::new(BTreeMap::new()),
                stop: watch::Sender::new(false),
                lanes: Default::default(),
                stderr: Default::default(),
                restart: tokio::sync::Notify::new(),
            });
            upstreams.insert(name, upstream.clone());
            tokio::spawn(supervise(self.clone(), upstream));
        }
    }

    /// The instance of `server` a session in `project` uses: the project's own when its
    /// env/cwd differ, else the shared one.
    pub fn instance(&self, server: &str, project: Option<&str>) -> Option<Arc<Upstream>> {
        project
            .and_then(|p| self.get(&format!("{server}@{p}")))
            .or_else(|| self.get(server))
    }

    /// Stops every server (director shutdown): their processes are killed.
    pub fn stop_all(&self) {
        for u in self
            .upstreams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            let _ = u.stop.send(true);
            for (lane, _) in u
                .lanes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extra
                .drain(..)
            {
                lane.close();
            }
            if let Some(c) = u
                .connection
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                c.close();
            }
        }
    }

    /// A connection of its own to `u` (for `isolation = "session"`): the caller owns it and
    /// its events.
    pub async fn open_dedicated(
        &self,
        u: &Upstream,
    ) -> Result<(Arc<Connection>, mpsc::Receiver<Event>), String> {
        let pipe = self.open(u).await?;
        Connection::start(&u.name, pipe, u.timeout(), Some(self.hook.clone())).await
    }

    async fn open(&self, u: &Upstream) -> Result<Pipe, String> {
        let s = &u.config;
        let max = self.max_message.load(std::sync::atomic::Ordering::Relaxed);
        match s.transport {
            Transport::Stdio => super::stdio::spawn(super::stdio::Spawn {
                server: &u.name,
                command: s.command.as_deref().unwrap_or_default(),
                args: &s.args,
                env: &s.env,
                cwd: s.cwd.as_deref(),
                max_line: max,
                stderr: u.stderr.clone(),
            })
            .map_err(|e| {
                format!(
                    "cannot start {:?}: {e}",
                    s.command.as_deref().unwrap_or_default()
                )
            }),
            Transport::StreamableHttp => super::http::connect(
                &u.name,
                s.url.as_deref().unwrap_or_default(),
                &s.headers,
                self.hyper.clone(),
                max,
            ),
            Transport::Sse => {
                super::sse::connect(
                    &u.name,
                    s.url.as_deref().unwrap_or_default(),
                    &s.headers,
                    self.http.clone(),
                    max,
                )
                .await
            }
        }
    }
}

/// Every instance the configuration asks for, by instance name: each enabled server, plus one
/// per project that gives a stdio server a different env or working directory.
fn instances(config: &Config) -> BTreeMap<String, (String, Option<String>, Server)> {
    let mut out = BTreeMap::new();
    for (name, server) in config.servers.iter().filter(|(_, s)| s.enabled) {
        out.insert(name.clone(), (name.clone(), None, server.clone()));
        if server.transport != Transport::Stdio {
            continue;
        }
        for (project_name, project) in &config.projects {
            let uses = project.servers.is_empty() || project.servers.contains(name);
            if !uses || (project.env.is_empty() && project.cwd.is_none()) {
                continue;
            }
            let mut own = server.clone();
            own.env.extend(project.env.clone());
            if project.cwd.is_some() {
                own.cwd = project.cwd.clone();
            }
            out.insert(
                format!("{name}@{project_name}"),
                (name.clone(), Some(project_name.clone()), own),
            );
        }
    }
    out
}

/// Fetches every page of one list.
async fn fetch_all(
    conn: &Connection,
    kind: Kind,
    timeout: Duration,
) -> Result<Vec<Value>, ErrorObject> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let params = cursor.as_ref().map(|c| raw(&json!({ "cursor": c })));
        let result = conn.request(kind.list_method(), params, timeout).await?;
        let mut page: Value = serde_json::from_str(result.get()).map_err(|e| {
            ErrorObject::internal(format!("bad {} result: {e}", kind.list_method()))
        })?;
        if let Some(Value::Array(list)) = page.get_mut(kind.key()).map(Value::take) {
            items.extend(list);
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    Ok(items)
}

async fn refresh(u: &Upstream, conn: &Connection, kinds: &[Kind]) -> Vec<Kind> {
    let mut changed = Vec::new();
    for &kind in kinds {
        if !conn.info.capabilities.contains_key(kind.capability()) {
            continue;
        }
        match fetch_all(conn, kind, u.timeout()).await {
            Ok(items) => {
                u.catalog
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(kind, Arc::new(items));
                changed.push(kind);
            }
            Err(e) => {
                tracing::warn!(server = %u.name, list = kind.list_method(), error = %e, "list failed")
            }
        }
    }
    changed
}

async fn supervise(pool: Arc<Pool>, u: Arc<Upstream>) {
    let mut stop = u.stop.subscribe();
    let mut backoff = BACKOFF_START;
    let mut first = true;
    loop {
        if *stop.borrow() {
            break;
        }
        if !first {
            u.set_status(|s| s.restarts += 1);
        }
        first = false;
        u.set_status(|s| s.state = UpstreamState::Starting);
        let started = Instant::now();
        let mut restarting = false;
        let opened = match pool.open(&u).await {
            Ok(pipe) => {
                Connection::start(&u.name, pipe, u.timeout(), Some(pool.hook.clone())).await
            }
            Err(e) => Err(e),
        };
        match opened {
            Ok((conn, mut events)) => {
                tracing::info!(server = %u.name, version = %conn.info.protocol_version, pid = ?conn.pid, "upstream connected");
                *u.connection.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
                let _ = pool.events.send(PoolEvent::Connected {
                    upstream: u.clone(),
                    connection: conn.clone(),
                });
                // Lists are fetched in a task of their own (first all of them, then what a
                // list_changed names): this loop keeps draining the connection's events
                // meanwhile, else a full event queue would hold up the very answers the
                // fetch waits for. Changes arriving during a fetch are gathered into the next.
                let all: std::collections::BTreeSet<Kind> = Kind::ALL.into_iter().collect();
                let dirty = Arc::new((std::sync::Mutex::new(all), tokio::sync::Notify::new()));
                dirty.1.notify_one();
                let refresher = {
                    let (dirty, u, conn, pool) =
                        (dirty.clone(), u.clone(), conn.clone(), pool.clone());
                    tokio::spawn(async move {
                        loop {
                            dirty.1.notified().await;
                            let kinds: Vec<Kind> = std::mem::take(
                                &mut *dirty.0.lock().unwrap_or_else(|e| e.into_inner()),
                            )
                            .into_iter()
                            .collect();
                            let kinds = refresh(&u, &conn, &kinds).await;
                            // Running once the catalog is known.
                            u.set_status(|s| {
                                if s.state != UpstreamState::Running {
                                    s.state = UpstreamState::Running;
                                    s.pid = conn.pid;
                                    s.info = Some(conn.info.clone());
                                    s.last_error = None;
                                }
                            });
                            let _ = pool.events.send(PoolEvent::CatalogChanged {
                                server: u.name.clone(),
                                kinds,
                            });
                        }
                    })
                };
                loop {
                    tokio::select! {
                        event = events.recv() => match event {
                            Some(Event::Notification(n, _)) if !Kind::from_list_changed(&n.method).is_empty() => {
                                dirty.0.lock().unwrap_or_else(|e| e.into_inner()).extend(Kind::from_list_changed(&n.method));
                                dirty.1.notify_one();
                            }
                            Some(event) => {
                                let _ = pool.events.send(PoolEvent::FromServer {
                                    server: u.name.clone(),
                                    connection: conn.clone(),
                                    event,
                                });
                            }
                            None => break,
                        },
                        _ = stop.changed() => break,
                        () = u.restart.notified() => {
                            restarting = true;
                            break;
                        }
                    }
                }
                refresher.abort();
                conn.close();
                *u.connection.write().unwrap_or_else(|e| e.into_inner()) = None;
                u.catalog.write().unwrap_or_else(|e| e.into_inner()).clear();
                let _ = pool.events.send(PoolEvent::CatalogChanged {
                    server: u.name.clone(),
                    kinds: Kind::ALL.to_vec(),
                });
                if *stop.borrow() {
                    break;
                }
                if restarting {
                    tracing::info!(server = %u.name, "upstream restarted by an operator");
                    u.set_status(|s| {
                        s.last_error = None;
                        s.pid = None;
                    });
                    continue;
                }
                tracing::warn!(server = %u.name, "upstream connection closed; reconnecting");
                u.set_status(|s| {
                    s.last_error = Some("connection closed".into());
                    s.pid = None;
                });
            }
            Err(e) => {
                tracing::warn!(server = %u.name, error = %e, "upstream failed to start");
                u.set_status(|s| s.last_error = Some(e));
            }
        }
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_START;
        }
        u.set_status(|s| s.state = UpstreamState::Backoff);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
            () = u.restart.notified() => backoff = BACKOFF_START,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    u.set_status(|s| {
        s.state = UpstreamState::Stopped;
        s.pid = None;
    });
}
