//! A downstream client session: what was negotiated, where its messages go, and the state that
//! ties upstream traffic back to it (requests in flight, requests relayed to it, subscriptions).

use crate::jsonrpc::{Id, Message};
use crate::profile::{Filter, Scope};
use crate::upstream::Connection;
use crate::version::Version;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{Notify, mpsc, watch};

/// How many events a session's standalone stream keeps for `Last-Event-ID` replay.
const REPLAY: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    StreamableHttp,
    LegacySse,
    Stdio,
    /// A 2026-07-28 request over HTTP: a session that lives as long as the request.
    Stateless,
    /// A call from the console's playground: a session that lives as long as the call.
    Console,
}

impl TransportKind {
    pub const ALL: [TransportKind; 5] = [
        Self::StreamableHttp,
        Self::LegacySse,
        Self::Stdio,
        Self::Stateless,
        Self::Console,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable-http",
            Self::LegacySse => "sse",
            Self::Stdio => "stdio",
            Self::Stateless => "stateless",
            Self::Console => "console",
        }
    }
}

/// What `initialize` settled: small and `Copy`, read on every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Negotiated {
    pub version: Version,
    pub capabilities: ClientCapabilities,
    pub initialized: bool,
}

impl Default for Negotiated {
    fn default() -> Self {
        Self {
            version: Version::V2024_11_05,
            capabilities: ClientCapabilities::default(),
            initialized: false,
        }
    }
}

/// The 2026 tasks extension's identifier.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// The client capabilities the director acts on, by name.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientCapabilities(u8);

impl ClientCapabilities {
    /// The last is the 2026 tasks extension (`extensions["io.modelcontextprotocol/tasks"]`).
    const NAMES: [&str; 5] = ["roots", "sampling", "elicitation", "tasks", TASKS_EXTENSION];

    /// The known capabilities declared in a `capabilities` object.
    pub fn from_map(map: &serde_json::Map<String, Value>) -> Self {
        let declared = |name: &str| match name {
            TASKS_EXTENSION => map
                .get("extensions")
                .and_then(|e| e.get(TASKS_EXTENSION))
                .is_some(),
            name => map.contains_key(name),
        };
        Self(
            Self::NAMES
                .iter()
                .enumerate()
                .filter(|(_, name)| declared(name))
                .fold(0, |bits, (i, _)| bits | 1 << i),
        )
    }

    /// The capabilities as a 2026 request's `_meta` declares them to a server: what this
    /// client can be asked (roots always: the director answers those for clients without).
    pub fn to_json(self) -> Value {
        let mut map = serde_json::Map::new();
        for name in ["roots", "sampling", "elicitation"] {
            if name == "roots" || self.has(name) {
                map.insert(name.into(), Value::Object(Default::default()));
            }
        }
        Value::Object(map)
    }

    pub fn has(self, name: &str) -> bool {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.0 & 1 << i != 0)
    }
}

/// A request of this client that is being served by an upstream.
pub struct InFlight {
    pub connection: Arc<Connection>,
    pub upstream_id: i64,
    /// Where messages related to it go (requests the upstream sends while serving it).
    pub sink: Sink,
}

/// A resource subscription: the server it was made with, and the connection that carries its
/// updates (moved to the new one when the upstream reconnects).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub server: String,
    pub connection: u64,
}

/// A request we sent this client, on an upstream's behalf.
pub struct Relayed {
    pub to: AnswerTo,
    /// The task waiting for this answer (it is `input_required` meanwhile).
    pub task: Option<String>,
}

/// Where the client's answer goes.
pub enum AnswerTo {
    /// Back to the upstream that asked (a 2025-era server's request), with its id.
    Upstream {
        connection: Arc<Connection>,
        upstream_id: Id,
    },
    /// To the director itself, which asked for a 2026 server (its `InputRequiredResult`).
    Director(
        tokio::sync::oneshot::Sender<
            Result<Box<serde_json::value::RawValue>, crate::jsonrpc::ErrorObject>,
        >,
    ),
}

pub struct Session {
    pub id: Arc<str>,
    pub transport: TransportKind,
    /// The profile chosen at creation (None = unrestricted) and what it lets the session see
    /// (the profile's rules and the project's servers).
    pub profile: Option<String>,
    pub filter: Filter,
    /// The project whose servers and context the session uses.
    pub project: Option<String>,
    /// The identity that owns the session and what it creates (tasks), when a credential was
    /// presented (a signed-in subject, `token:<sha256>` of a profile token); see
    /// [`Session::principal`].
    credential: Option<String>,
    pub negotiated: RwLock<Negotiated>,
    pub outbound: Outbound,
    pub in_flight: Mutex<HashMap<String, InFlight>>,
    pub relayed: Mutex<HashMap<i64, Relayed>>,
    /// Resource subscriptions, by URI.
    pub subscriptions: Mutex<HashMap<String, Subscription>>,
    /// When the client last sent something (for idle expiry).
    last_active: Mutex<std::time::Instant>,
    /// Upstream connections of this session alone (`isolation = "session"`), by server.
    pub isolated: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    next_id: AtomicI64,
    closed: AtomicBool,
    closing: Notify,
    /// Request streams that can still be resumed, oldest first.
    requests: Mutex<VecDeque<Arc<RequestStream>>>,
    next_request_stream: AtomicU64,
    /// The least severe log level this client wants (`logging/setLevel`); None: every message.
    pub log_level: Mutex<Option<u8>>,
    /// Open SSE streams (see [`StreamSlot`]).
    streams: AtomicUsize,
}

/// One of a session's open SSE streams, counted while it lives (`settings.limits`).
pub struct StreamSlot(Arc<Session>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session {
    pub fn new(id: String, transport: TransportKind, scope: Scope) -> Arc<Self> {
        Arc::new(Self {
            credential: scope.principal,
            id: id.into(),
            transport,
            profile: scope.profile,
            filter: scope.filter,
            project: scope.project,
            negotiated: RwLock::new(Negotiated::default()),
            outbound: Outbound::default(),
            in_flight: Mutex::new(HashMap::new()),
            relayed: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashMap::new()),
            isolated: tokio::sync::Mutex::new(HashMap::new()),
            last_active: Mutex::new(std::time::Instant::now()),
            next_id: AtomicI64::new(1),
            closed: AtomicBool::new(false),
            closing: Notify::new(),
            streams: AtomicUsize::new(0),
            log_level: Mutex::new(None),
            requests: Mutex::new(VecDeque::new()),
            next_request_stream: AtomicU64::new(1),
        })
    }

    /// Whether updates of `uri` from connection `connection` are this session's.
    pub fn subscribed_through(&self, uri: &str, connection: u64) -> bool {
        self.subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uri)
            .is_some_and(|s| s.connection == connection)
    }

    /// Who owns what the session creates: its credential's identity, else the session itself
    /// (`session:<id>`).
    pub fn principal(&self) -> std::borrow::Cow<'_, str> {
        match &self.credential {
            Some(p) => p.as_str().into(),
            // A 2026 request's session ends with it: what it creates belongs to whoever may
            // call without a credential (its task ids are unguessable, and 2026 lists none).
            None if self.transport == TransportKind::Stateless => "anonymous".into(),
            None => format!("session:{}", self.id).into(),
        }
    }

    /// The identity of the credential that created the session, if one was presented: later
    /// requests must present the same.
    pub fn credential(&self) -> Option<&str> {
        self.credential.as_deref()
    }

    /// A slot for one more SSE stream, unless `max` are open.
    pub fn open_stream(self: &Arc<Self>, max: u32) -> Option<StreamSlot> {
        let counter = &self.streams;
        let mut n = counter.load(Ordering::Relaxed);
        loop {
            if n >= max as usize {
                return None;
            }
            match counter.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(StreamSlot(self.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// A new request stream, not yet resumable (see [`Session::keep`]).
    pub fn request_stream(&self) -> Arc<RequestStream> {
        let id = self.next_request_stream.fetch_add(1, Ordering::Relaxed);
        Arc::new(RequestStream::new(id))
    }

    /// Keeps a request stream that is answered as SSE, so a client that loses it can resume
    /// it; forgets, oldest first, those finished long enough ago or beyond the most kept.
    pub fn keep(&self, stream: &Arc<RequestStream>) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        while let Some(oldest) = requests.front() {
            let forget = match oldest.finished_at() {
                Some(at) => requests.len() >= KEPT_REQUEST_STREAMS || now - at > RESUMABLE_FOR,
                None => false,
            };
            if !forget {
                break;
            }
            requests.pop_front();
        }
        requests.push_back(stream.clone());
    }

    /// The request stream a `Last-Event-ID` names (`r<stream>-<received>`), and the index of
    /// the next message to send from it.
    pub fn resume(&self, last_event_id: &str) -> Option<(Arc<RequestStream>, u64)> {
        let (stream, received) = last_event_id.strip_prefix('r')?.split_once('-')?;
        let (stream, received) = (stream.parse::<u64>().ok()?, received.parse::<u64>().ok()?);
        let found = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|s| s.id == stream)
            .cloned()?;
        Some((found, received))
    }

    /// How many SSE streams are open (for /metrics).
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    pub fn negotiated(&self) -> Negotiated {
        *self.negotiated.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the client declared `capability` (e.g. `sampling`) in initialize.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.negotiated().capabilities.has(capability)
    }

    /// An id for a request we send to this client.
    pub fn next_request_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
    }

    /// Idle: nothing received for `limit`, no stream open, nothing in flight.
    pub fn idle_for(&self, limit: std::time::Duration) -> bool {
        self.last_active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            > limit
            && !self.outbound.is_attached()
            && self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
        self.outbound.detach();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves once the session has ended.
    pub async fn ended(&self) {
        loop {
            let closing = self.closing.notified();
            if self.is_closed() {
                return;
            }
            closing.await;
        }
    }
}

/// The session's standalone stream (the GET stream of Streamable HTTP, the legacy SSE stream,
/// stdout for stdio): numbered events, a replay buffer, and at most one attached reader.
#[derive(Default)]
pub struct Outbound {
    inner: Mutex<OutboundInner>,
}

#[derive(Default)]
struct OutboundInner {
    tx: Option<mpsc::Sender<(u64, Message)>>,
    buffer: VecDeque<(u64, Message)>,
    next: u64,
}

impl Outbound {
    pub fn send(&self, message: Message) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next += 1;
        let id = inner.next;
        if inner.buffer.len() == REPLAY {
            inner.buffer.pop_front();
        }
        inner.buffer.push_back((id, message.clone()));
        // A reader that falls this far behind loses its stream (it is not draining it): its
        // client reconnects with Last-Event-ID and is replayed what it missed, as far back as
        // the buffer goes. Memory stays bounded either way.
        if let Some(tx) = &inner.tx
            && let Err(e) = tx.try_send((id, message))
        {
            if let mpsc::error::TrySendError::Full(_) = e {
                tracing::warn!("a session's stream fell {REPLAY} messages behind: closed");
            }
            inner.tx = None;
        }
    }

    /// Attaches a reader, replaying what it missed after `last_event_id`. A new reader
    /// replaces the old one (whose stream then ends).
    pub fn attach(&self, last_event_id: Option<u64>) -> mpsc::Receiver<(u64, Message)> {
        // Room for a full replay plus as much again.
        let (tx, rx) = mpsc::channel(2 * REPLAY);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = last_event_id {
            for (id, m) in inner.buffer.iter().filter(|(id, _)| *id > last) {
                let _ = tx.try_send((*id, m.clone()));
            }
        }
        inner.tx = Some(tx);
        rx
    }

    pub fn is_attached(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tx
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    pub fn detach(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).tx = None;
    }
}

/// Where the messages related to one client request go: the stream of the POST that carried
/// it, or (stdio, legacy SSE, JSON-only clients) the session's stream.
#[derive(Clone)]
pub struct Sink {
    pub request_stream: Option<Arc<RequestStream>>,
    pub session: Arc<Session>,
    /// The task whose job this request serves: server requests for it move the task to
    /// `input_required` and carry `io.modelcontextprotocol/related-task`.
    pub task: Option<String>,
}

impl Sink {
    pub fn new(session: Arc<Session>) -> Self {
        Self {
            request_stream: None,
            session,
            task: None,
        }
    }

    /// To the request's stream while it is open; after its response, to the session's.
    pub fn send(&self, message: Message) {
        let message = match &self.request_stream {
            Some(stream) => match stream.push(message) {
                None => return,
                Some(late) => late,
            },
            None => message,
        };
        self.session.outbound.send(message);
    }
}

/// Events a request stream keeps for a client that reconnects (the oldest go first).
const REQUEST_REPLAY: usize = 256;
/// Request streams a session keeps for resumption, at most.
const KEPT_REQUEST_STREAMS: usize = 64;
/// How long a finished request stream can still be resumed.
const RESUMABLE_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// The messages of one client request answered as SSE (its progress, server requests, and
/// finally its response), numbered and kept, so a client whose connection drops can resume
/// with `Last-Event-ID` on GET and miss nothing. The messages go here whether or not anyone
/// is reading.
pub struct RequestStream {
    pub id: u64,
    inner: Mutex<RequestEvents>,
    /// Messages pushed so far, and whether the response was among them: readers wait on it.
    count: watch::Sender<(u64, bool)>,
}

struct RequestEvents {
    /// Messages `first..first + events.len()`.
    events: VecDeque<Message>,
    first: u64,
    finished: Option<std::time::Instant>,
}

impl RequestStream {
    fn new(id: u64) -> Self {
        Self {
            id,
            inner: Mutex::new(RequestEvents {
                events: VecDeque::new(),
                first: 0,
                finished: None,
            }),
            count: watch::Sender::new((0, false)),
        }
    }

    /// The SSE event id after `received` messages: `r<stream>-<received>`, unlike the session
    /// stream's plain numbers. `received = 0` is the priming event's.
    pub fn event_id(&self, received: u64) -> String {
        format!("r{}-{received}", self.id)
    }

    /// Appends a message; one after the response is handed back (the stream has ended).
    pub fn push(&self, message: Message) -> Option<Message> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.finished.is_some() {
            return Some(message);
        }
        if matches!(message, Message::Response(_)) {
            inner.finished = Some(std::time::Instant::now());
        }
        if inner.events.len() == REQUEST_REPLAY {
            inner.events.pop_front();
            inner.first += 1;
        }
        inner.events.push_back(message);
        // Published under the lock, so the count never goes back when two push at once.
        let count = inner.first + inner.events.len() as u64;
        self.count.send_replace((count, inner.finished.is_some()));
        None
    }

    /// Message `seq` (0-based; or the oldest still kept, if it was dropped) and its number,
    /// once there; None past the response (the stream is over).
    pub async fn next(&self, seq: u64) -> Option<(u64, Message)> {
        let mut count = self.count.subscribe();
        let (n, _) = *count
            .wait_for(|(n, finished)| *n > seq || *finished)
            .await
            .ok()?;
        if n <= seq {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seq = seq.max(inner.first);
        let message = inner.events.get((seq - inner.first) as usize)?.clone();
        Some((seq, message))
    }

    /// When the response was pushed.
    fn finished_at(&self) -> Option<std::time::Instant> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finished
    }

    /// Waits until the stream holds a message.
    pub async fn first(&self) {
        let mut count = self.count.subscribe();
        let _ = count.wait_for(|(n, _)| *n > 0).await;
    }

    /// The stream's only message, when it holds exactly one (a request answered with nothing
    /// before its response).
    pub fn take_single(&self) -> Option<Message> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.first == 0 && inner.events.len() == 1 {
            inner.events.pop_front()
        } else {
            None
        }
    }
}

/// A session id: 256 bits from the OS CSPRNG (visible ASCII, as the transport spec requires).
pub fn new_id() -> String {
    match NODE_PREFIX.get() {
        // Names the replica that holds the session, so another can forward to it.
        Some(prefix) => format!("{prefix}.{}", crate::secrets::random_token()),
        None => crate::secrets::random_token(),
    }
}

/// The prefix of this process's session ids (its node's, see `cluster/mod.rs`).
pub static NODE_PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
