//! [`AppState`]: everything a request handler may need (configuration, store, gateway,
//! limits, caches), built once at start-up and shared by every handler.

use crate::gateway::Gateway;
use crate::live_config::LiveConfig;
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::Arc;
use std::time::Instant;

/// Everything a request handler may need, shared by all of them.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub struct Inner {
    pub config: LiveConfig,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub gateway: Arc<Gateway>,
    pub rate_limits: crate::rate_limit::RateLimits,
    pub access_cache: crate::oauth::bearer::AccessCache,
    /// Wrong admin credentials, per client address.
    pub admin_failures: crate::rate_limit::Failures,
    /// Admin credentials verified lately (SHA-256 over the stored hash and what was
    /// presented) → when: argon2 runs once a minute per credential, not per request.
    pub admin_verified: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
    /// Set when the director is stopping: long-lived streams end.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub started: Instant,
    /// Where the director listens (the default OAuth issuer is derived from it).
    pub listen: std::net::SocketAddr,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state and starts the upstream pool (needs a Tokio runtime).
    pub fn new(
        config: LiveConfig,
        store: Store,
        listen: std::net::SocketAddr,
        node_url: Option<String>,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let settings = config.subscribe();
        let analytics = crate::analytics::Recorder::start(store.clone(), move || {
            let days = settings.borrow().settings.analytics_retention_days.get();
            std::time::Duration::from_secs(u64::from(days) * 86_400)
        });
        let gateway = Gateway::start(
            config.subscribe(),
            metrics.clone(),
            Some(analytics),
            Some(store.clone()),
        );
        crate::oauth::start_maintenance(store.clone());
        let redis_url = config.effective().settings.cluster.redis_url.clone();
        let rate_limits = match redis_url
            .as_deref()
            .map(crate::cluster::redis::SharedLimits::new)
        {
            Some(Ok(redis)) => {
                crate::rate_limit::RateLimits::in_redis(redis, gateway.replicas.clone())
            }
            Some(Err(e)) => {
                // Validation refuses such a URL at load; this is only a second line.
                tracing::error!(error = %e, "settings.cluster.redis_url unusable: limits are this replica's share");
                crate::rate_limit::RateLimits::shared(gateway.replicas.clone())
            }
            None => crate::rate_limit::RateLimits::shared(gateway.replicas.clone()),
        };
        // How the other replicas reach this one: as configured, else where it listens (when
        // that is one address, not all of them).
        let node_url = node_url
            .or_else(|| (!listen.ip().is_unspecified()).then(|| format!("http://{listen}")));
        if let Some(url) = node_url {
            let _ = gateway.node.url.set(url);
            // Known to the others at once, not at the next heartbeat.
            let (store, node) = (store.clone(), gateway.node.clone());
            tokio::spawn(async move { crate::cluster::heartbeat(&store, &node).await });
        }
        Self(Arc::new(Inner {
            config,
            store,
            metrics,
            gateway,
            rate_limits,
            access_cache: Default::default(),
            admin_failures: crate::rate_limit::Failures::new(
                10,
                std::time::Duration::from_secs(60),
            ),
            admin_verified: Default::default(),
            shutdown: tokio::sync::watch::Sender::new(false),
            started: Instant::now(),
            listen,
        }))
    }
}
