//! The replicas sharing a store. Each director process is a node with a random id, known to
//! the store by a heartbeat; the tasks it runs are leased to it (`tasks::renew`), so that a
//! replica that stops leaves its tasks to the others to fail once the lease lapses, and a
//! replica that starts never touches the tasks of one still running.

pub mod redis;
pub mod signals;

use crate::store::Store;
use std::time::Duration;

/// The environment variable holding the secret the replicas of one deployment share (their
/// internal hop, and the requestState each verifies of the others).
pub const SECRET_ENV: &str = "MCP_DIRECTOR_CLUSTER_SECRET";

/// That secret, read once (None: unset or empty).
pub fn secret() -> Option<&'static str> {
    static SECRET: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty()));
    SECRET.as_deref()
}

/// How often a node says it is alive and renews its leases (well within `tasks::LEASE_MS`).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// This process, as the other replicas see it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub started_ms: i64,
    /// How the others reach it (set once the director listens).
    pub url: std::sync::Arc<std::sync::OnceLock<String>>,
}

/// How many characters of a node id start the ids of the sessions it holds.
pub const PREFIX: usize = 12;

impl Node {
    pub fn new() -> Self {
        Self {
            id: crate::secrets::random_token(),
            started_ms: crate::analytics::now_ms(),
            url: Default::default(),
        }
    }

    /// What the ids of this node's sessions start with.
    pub fn prefix(&self) -> &str {
        &self.id[..PREFIX.min(self.id.len())]
    }
}

/// How long a replica's URL is believed without asking the store again (a replica that is gone
/// meanwhile refuses the connection, and is forgotten at once: `forget_owner`).
const OWNER_FRESH: Duration = Duration::from_secs(2);

type Owners = std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>;

fn owners() -> &'static Owners {
    static OWNERS: std::sync::OnceLock<Owners> = std::sync::OnceLock::new();
    OWNERS.get_or_init(Default::default)
}

/// The URL of the live node whose sessions' ids start with `prefix` (from the store, at most
/// [`OWNER_FRESH`] ago: a forwarded request does not cost a query each).
pub async fn owner_url(store: &Store, prefix: &str) -> Result<Option<String>, sqlx::Error> {
    {
        let known = owners().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((url, at)) = known.get(prefix)
            && at.elapsed() < OWNER_FRESH
        {
            return Ok(Some(url.clone()));
        }
    }
    let since = crate::analytics::now_ms() - 3 * HEARTBEAT.as_millis() as i64;
    // The length is part of the statement: PostgreSQL's substr takes no BIGINT.
    let row: Option<(Option<String>,)> = sqlx::query_as(&format!(
        "SELECT node_url FROM nodes WHERE substr(node_id, 1, {PREFIX}) = $1 AND heartbeat_ms >= $2"
    ))
    .bind(prefix)
    .bind(since)
    .fetch_optional(store.pool())
    .await?;
    let url = row.and_then(|(url,)| url);
    let mut known = owners().lock().unwrap_or_else(|e| e.into_inner());
    known.retain(|_, (_, at)| at.elapsed() < OWNER_FRESH);
    match &url {
        Some(u) => {
            known.insert(prefix.to_string(), (u.clone(), std::time::Instant::now()));
        }
        None => {
            known.remove(prefix);
        }
    }
    Ok(url)
}

/// The replica with this prefix did not answer: ask the store next time.
pub fn forget_owner(prefix: &str) {
    owners()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(prefix);
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

/// Records that `node` is alive now.
pub async fn heartbeat(store: &Store, node: &Node) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO nodes (node_id, node_url, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms, node_url = excluded.node_url",
    )
    .bind(&node.id)
    .bind(node.url.get().cloned())
    .bind(node.started_ms)
    .bind(crate::analytics::now_ms())
    .execute(store.pool())
    .await
    .map(|_| ())
}

/// The nodes alive now (a heartbeat within three periods); those silent longer are forgotten.
pub async fn live(store: &Store) -> Result<i64, sqlx::Error> {
    let since = crate::analytics::now_ms() - 3 * HEARTBEAT.as_millis() as i64;
    sqlx::query("DELETE FROM nodes WHERE heartbeat_ms < $1")
        .bind(since - 60_000)
        .execute(store.pool())
        .await?;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM nodes WHERE heartbeat_ms >= $1")
        .bind(since)
        .fetch_one(store.pool())
        .await?;
    Ok(n)
}
