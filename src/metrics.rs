//! Prometheus metrics (OpenMetrics text from `prometheus-client`). Labels are bounded:
//! route templates, methods and status codes, never paths, session ids or arguments.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    server: String,
    tool: String,
    profile: String,
    outcome: &'static str,
}

/// [`ToolLabels`] borrowed; hashes the same (same fields, same order).
#[derive(Hash)]
struct ToolLabelsRef<'a> {
    server: &'a str,
    tool: &'a str,
    profile: &'a str,
    outcome: &'static str,
}

impl indexmap::Equivalent<ToolLabels> for ToolLabelsRef<'_> {
    fn equivalent(&self, k: &ToolLabels) -> bool {
        self.server == k.server
            && self.tool == k.tool
            && self.profile == k.profile
            && self.outcome == k.outcome
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabel {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OAuthFailureLabels {
    endpoint: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabel {
    grant_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    transport: &'static str,
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

/// Every label value comes from the configuration or a fixed set (tool names from the
/// upstreams' own catalogs), so cardinality stays bounded.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    rate_limited: Counter,
    tool_calls: Family<ToolLabels, Counter>,
    tool_call_seconds: Family<ServerLabel, Histogram>,
    /// The series a tool call updates, by its labels, found without building owned labels.
    tool_series: std::sync::Mutex<indexmap::IndexMap<ToolLabels, (Counter, Histogram)>>,
    upstream_up: Family<ServerLabel, Gauge>,
    upstream_restarts: Family<ServerLabel, Gauge>,
    sessions: Family<TransportLabel, Gauge>,
    streams: Family<TransportLabel, Gauge>,
    mcp_requests: Family<RequestLabels, Counter>,
    tasks: Family<StatusLabel, Gauge>,
    oauth_grants: Family<GrantLabel, Counter>,
    oauth_failures: Family<OAuthFailureLabels, Counter>,
    /// One scrape at a time: a scrape clears and refills the state gauges.
    scraping: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mcp_director");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            http_requests.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited_requests",
            "MCP requests refused with 429 by the rate limit",
            rate_limited.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "tools/call requests by server, upstream tool, profile and outcome",
            tool_calls.clone(),
        );
        let tool_call_seconds = Family::<ServerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "tool_call_duration_seconds",
            "tools/call latency through the director, by server",
            tool_call_seconds.clone(),
        );
        let upstream_up = Family::<ServerLabel, Gauge>::default();
        registry.register(
            "upstream_up",
            "1 when the upstream server is running",
            upstream_up.clone(),
        );
        let upstream_restarts = Family::<ServerLabel, Gauge>::default();
        registry.register(
            "upstream_restarts",
            "Times the upstream server was restarted",
            upstream_restarts.clone(),
        );
        let sessions = Family::<TransportLabel, Gauge>::default();
        registry.register(
            "sessions",
            "Open client sessions by transport",
            sessions.clone(),
        );
        let streams = Family::<TransportLabel, Gauge>::default();
        registry.register(
            "streams",
            "Open SSE streams of client sessions, by transport",
            streams.clone(),
        );
        let mcp_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "mcp_requests",
            "JSON-RPC requests from clients by transport, method (unknown ones as `other`) and outcome",
            mcp_requests.clone(),
        );
        let tasks = Family::<StatusLabel, Gauge>::default();
        registry.register("tasks", "Tasks in the store by status", tasks.clone());
        let oauth_grants = Family::<GrantLabel, Counter>::default();
        registry.register(
            "oauth_tokens_issued",
            "Tokens issued by the OAuth token endpoint, by grant type",
            oauth_grants.clone(),
        );
        let oauth_failures = Family::<OAuthFailureLabels, Counter>::default();
        registry.register(
            "oauth_failures",
            "Refused OAuth requests by endpoint (register, authorize, consent, oidc_callback, token, resource) and RFC 6749 error code",
            oauth_failures.clone(),
        );
        Self {
            registry,
            streams,
            mcp_requests,
            tasks,
            oauth_grants,
            oauth_failures,
            scraping: std::sync::Mutex::new(()),
            http_requests,
            rate_limited,
            tool_calls,
            tool_call_seconds,
            tool_series: Default::default(),
            upstream_up,
            upstream_restarts,
            sessions,
        }
    }
}

impl Metrics {
    pub fn http_request(&self, method: &str, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
    }

    pub fn oauth_grant(&self, grant_type: &'static str) {
        self.oauth_grants
            .get_or_create(&GrantLabel { grant_type })
            .inc();
    }

    pub fn oauth_failure(&self, endpoint: &'static str, error: &'static str) {
        self.oauth_failures
            .get_or_create(&OAuthFailureLabels { endpoint, error })
            .inc();
    }

    /// `method` must come from a fixed set (see `gateway::method_label`).
    pub fn mcp_request(&self, transport: &'static str, method: &'static str, ok: bool) {
        self.mcp_requests
            .get_or_create(&RequestLabels {
                transport,
                method,
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub fn tool_call(
        &self,
        server: &str,
        tool: &str,
        profile: Option<&str>,
        ok: bool,
        took: Duration,
    ) {
        let key = ToolLabelsRef {
            server,
            tool,
            profile: profile.unwrap_or(""),
            outcome: if ok { "ok" } else { "error" },
        };
        let mut series = self.tool_series.lock().unwrap_or_else(|e| e.into_inner());
        let (calls, seconds) = match series.get(&key) {
            Some(s) => s,
            None => {
                let labels = ToolLabels {
                    server: server.to_string(),
                    tool: tool.to_string(),
                    profile: key.profile.to_string(),
                    outcome: key.outcome,
                };
                let calls = self.tool_calls.get_or_create(&labels).clone();
                let seconds = self
                    .tool_call_seconds
                    .get_or_create(&ServerLabel {
                        server: server.to_string(),
                    })
                    .clone();
                series.entry(labels).or_insert((calls, seconds))
            }
        };
        calls.inc();
        seconds.observe(took.as_secs_f64());
    }

    /// Sets the state gauges, read at scrape time: `(server, up, restarts)`, `(transport,
    /// sessions, streams)` and `(task status, count)`.
    fn set_state(
        &self,
        upstreams: &[(String, bool, u64)],
        sessions: &[(&'static str, usize, usize)],
        tasks: &[(String, i64)],
    ) {
        self.upstream_up.clear();
        self.upstream_restarts.clear();
        for (server, up, restarts) in upstreams {
            let label = ServerLabel {
                server: server.clone(),
            };
            self.upstream_up.get_or_create(&label).set(i64::from(*up));
            self.upstream_restarts
                .get_or_create(&label)
                .set(*restarts as i64);
        }
        self.sessions.clear();
        self.streams.clear();
        for (transport, n, streams) in sessions {
            self.sessions
                .get_or_create(&TransportLabel { transport })
                .set(*n as i64);
            self.streams
                .get_or_create(&TransportLabel { transport })
                .set(*streams as i64);
        }
        self.tasks.clear();
        for (status, n) in tasks {
            self.tasks
                .get_or_create(&StatusLabel {
                    status: status.clone(),
                })
                .set(*n);
        }
    }

    /// The state gauges set from this state, then everything encoded, as one step.
    pub fn scrape(
        &self,
        upstreams: &[(String, bool, u64)],
        sessions: &[(&'static str, usize, usize)],
        tasks: &[(String, i64)],
    ) -> String {
        let _one_at_a_time = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        self.set_state(upstreams, sessions, tasks);
        self.encode()
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
