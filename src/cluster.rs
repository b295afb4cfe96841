//! The replicas sharing a store. Each director process is a node with a random id, known to
//! the store by a heartbeat; the tasks it runs are leased to it (`tasks::renew`), so that a
//! replica that stops leaves its tasks to the others to fail once the lease lapses, and a
//! replica that starts never touches the tasks of one still running.

use crate::store::Store;
use std::time::Duration;

/// How often a node says it is alive and renews its leases (well within `tasks::LEASE_MS`).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// This process, as the other replicas see it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub started_ms: i64,
}

impl Node {
    pub fn new() -> Self {
        Self {
            id: crate::secrets::random_token(),
            started_ms: crate::analytics::now_ms(),
        }
    }
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

/// Records that `node` is alive now.
pub async fn heartbeat(store: &Store, node: &Node) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO nodes (node_id, started_ms, heartbeat_ms) VALUES ($1, $2, $3)
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
    )
    .bind(&node.id)
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
