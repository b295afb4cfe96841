//! Usage analytics: one record per tool call, prompt get and resource read (who, what, how
//! long, outcome, bytes; never arguments or results), written to the store off the request
//! path in batches, kept for `settings.analytics_retention_days`, aggregated for
//! `GET /api/analytics` and `mcp-director analytics`.

use crate::store::Store;
use mcp_director_api::models::{AnalyticsRow, AnalyticsRowKind};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Records waiting to be written; beyond this a slow disk costs records, never call latency.
const QUEUE: usize = 8192;
const BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct Record {
    pub at_ms: i64,
    pub kind: AnalyticsRowKind,
    pub server: String,
    pub name: String,
    pub profile: String,
    pub project: String,
    pub duration: Duration,
    pub ok: bool,
    pub bytes_in: usize,
    pub bytes_out: usize,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The handle the gateway records through: a bounded queue to the writer task.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

impl Recorder {
    /// Starts the writer (and the retention sweep) on `store`.
    pub fn start(store: Store, retention: impl Fn() -> Duration + Send + 'static) -> Self {
        let (tx, mut rx) = mpsc::channel::<Record>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut last_sweep = std::time::Instant::now() - Duration::from_secs(3600);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Gather for a moment more: fewer, larger transactions.
                let _ = tokio::time::timeout(Duration::from_millis(50), async {
                    loop {
                        let room = BATCH.saturating_sub(batch.len());
                        if room == 0 || rx.recv_many(&mut batch, room).await == 0 {
                            break;
                        }
                    }
                })
                .await;
                if let Err(e) = write(&store, &batch).await {
                    tracing::warn!(error = %e, records = batch.len(), "analytics batch not written");
                }
                batch.clear();
                if last_sweep.elapsed() > Duration::from_secs(3600) {
                    last_sweep = std::time::Instant::now();
                    let cutoff = now_ms() - retention().as_millis() as i64;
                    let _ = sqlx::query("DELETE FROM analytics WHERE at_ms < ?")
                        .bind(cutoff)
                        .execute(store.pool())
                        .await;
                }
            }
        });
        Self { tx }
    }

    /// Queues a record; drops it (with a debug log) when the queue is full.
    pub fn record(&self, r: Record) {
        if self.tx.try_send(r).is_err() {
            tracing::debug!("analytics queue full: record dropped");
        }
    }
}

/// Multi-row INSERTs in one transaction: a statement per record would cost more than the call
/// it records when calls are fast. Rows go in chunks of a few fixed sizes, so the statements
/// are prepared once and then reused from the connection's cache.
async fn write(store: &Store, batch: &[Record]) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let mut rest = batch;
    while !rest.is_empty() {
        let size = [256, 32, 4, 1]
            .into_iter()
            .find(|n| *n <= rest.len())
            .unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO analytics (at_ms, kind, server, name, profile, project, duration_ms, ok, bytes_in, bytes_out) ",
        );
        query.push_values(chunk, |mut row, r| {
            row.push_bind(r.at_ms)
                .push_bind(r.kind.to_string())
                .push_bind(&r.server)
                .push_bind(&r.name)
                .push_bind(&r.profile)
                .push_bind(&r.project)
                .push_bind(r.duration.as_secs_f64() * 1e3)
                .push_bind(r.ok)
                .push_bind(r.bytes_in as i64)
                .push_bind(r.bytes_out as i64);
        });
        query.build().persistent(true).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// The value below which `p` of the sorted `values` fall (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Aggregates of the last `window`, busiest first.
pub async fn summary(store: &Store, window: Duration) -> Result<Vec<AnalyticsRow>, sqlx::Error> {
    let since = now_ms() - window.as_millis() as i64;
    let rows: Vec<(String, String, String, String, f64, bool)> = sqlx::query_as(
        "SELECT server, kind, name, profile, duration_ms, ok FROM analytics WHERE at_ms >= ?",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await?;
    // (server, kind, name, profile) → (durations, errors)
    type Key = (String, String, String, String);
    let mut groups: BTreeMap<Key, (Vec<f64>, u64)> = BTreeMap::new();
    for (server, kind, name, profile, duration, ok) in rows {
        let g = groups.entry((server, kind, name, profile)).or_default();
        g.0.push(duration);
        g.1 += u64::from(!ok);
    }
    let mut out: Vec<AnalyticsRow> = groups
        .into_iter()
        .filter_map(|((server, kind, name, profile), (mut durations, errors))| {
            durations.sort_by(f64::total_cmp);
            let calls = durations.len() as u64;
            Some(AnalyticsRow {
                kind: kind.parse().ok()?,
                server,
                name,
                profile,
                calls,
                errors,
                error_rate: errors as f64 / calls as f64,
                p50_ms: percentile(&durations, 0.50),
                p95_ms: percentile(&durations, 0.95),
                p99_ms: percentile(&durations, 0.99),
            })
        })
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
