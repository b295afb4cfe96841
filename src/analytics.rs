//! Usage analytics: every tool call, prompt get and resource read (who, what, how long,
//! outcome, bytes; never arguments or results), counted in memory into 10-second rollups per
//! (kind, server, name, profile, project), with a latency histogram; the rollups are written to
//! the store every 10 s, kept for `settings.analytics_retention_days`, and aggregated (with
//! what is not yet written) for `GET /api/analytics` and `mcp-director analytics`.
//!
//! A call costs a map update, never a row: what is stored grows with the number of distinct
//! tools in use and with time, not with traffic.

use crate::store::Store;
use indexmap::IndexMap;
use mcp_director_api::models::{AnalyticsBucket, AnalyticsRow, AnalyticsRowKind};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The rollup period, and how often rollups are written.
const SLOT_MS: i64 = 10_000;

/// One call as the gateway reports it (borrowed: recording allocates only for a new key).
pub struct Record<'a> {
    pub kind: AnalyticsRowKind,
    pub server: &'a str,
    pub name: &'a str,
    pub profile: &'a str,
    pub project: &'a str,
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

fn kind_label(kind: AnalyticsRowKind) -> &'static str {
    match kind {
        AnalyticsRowKind::Tool => "tool",
        AnalyticsRowKind::Prompt => "prompt",
        AnalyticsRowKind::Resource => "resource",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    at_ms: i64,
    kind: &'static str,
    server: String,
    name: String,
    profile: String,
    project: String,
}

/// A key looked up without allocating; hashes exactly as [`Key`] (same fields, same order).
#[derive(Hash)]
struct KeyRef<'a> {
    at_ms: i64,
    kind: &'static str,
    server: &'a str,
    name: &'a str,
    profile: &'a str,
    project: &'a str,
}

impl indexmap::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        self.at_ms == k.at_ms
            && self.kind == k.kind
            && self.server == k.server
            && self.name == k.name
            && self.profile == k.profile
            && self.project == k.project
    }
}

/// Latency counts in logarithmic buckets: bucket `i` holds durations in
/// [2^(i/8), 2^((i+1)/8)) µs, so a percentile read from it is within 4.5 %.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram(BTreeMap<u16, u64>);

impl Histogram {
    fn bucket(duration: Duration) -> u16 {
        let us = duration.as_micros().max(1) as f64;
        (us.log2() * 8.0) as u16
    }

    fn add(&mut self, duration: Duration) {
        *self.0.entry(Self::bucket(duration)).or_default() += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (b, n) in &other.0 {
            *self.0.entry(*b).or_default() += n;
        }
    }

    /// The nearest-rank percentile `p`, in ms (the geometric middle of its bucket).
    pub fn percentile(&self, p: f64) -> f64 {
        let total: u64 = self.0.values().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, n) in &self.0 {
            seen += n;
            if seen >= rank {
                return 2f64.powf((f64::from(*b) + 0.5) / 8.0) / 1000.0;
            }
        }
        0.0
    }

    /// `bucket:count;…`, as stored.
    fn encode(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(b, n)| format!("{b}:{n}")).collect();
        parts.join(";")
    }

    fn decode(text: &str) -> Histogram {
        Histogram(
            text.split(';')
                .filter_map(|p| {
                    let (b, n) = p.split_once(':')?;
                    Some((b.parse().ok()?, n.parse().ok()?))
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Default)]
struct Rollup {
    calls: u64,
    errors: u64,
    bytes_in: u64,
    bytes_out: u64,
    latency: Histogram,
}

/// The handle the gateway records through.
#[derive(Clone)]
pub struct Recorder {
    pending: Arc<Mutex<IndexMap<Key, Rollup>>>,
    store: Option<Store>,
}

impl Recorder {
    /// Starts the writer (and the retention sweep) on `store`.
    pub fn start(store: Store, retention: impl Fn() -> Duration + Send + 'static) -> Self {
        let recorder = Self {
            pending: Arc::default(),
            store: Some(store.clone()),
        };
        let weak = Arc::downgrade(&recorder.pending);
        tokio::spawn(async move {
            let mut last_sweep = std::time::Instant::now() - Duration::from_secs(3600);
            loop {
                tokio::time::sleep(Duration::from_millis(SLOT_MS as u64)).await;
                let Some(pending) = weak.upgrade() else { break };
                flush(&store, &pending).await;
                if last_sweep.elapsed() > Duration::from_secs(3600) {
                    last_sweep = std::time::Instant::now();
                    let cutoff = now_ms() - retention().as_millis() as i64;
                    let _ = sqlx::query("DELETE FROM analytics_rollup WHERE at_ms < $1")
                        .bind(cutoff)
                        .execute(store.pool())
                        .await;
                }
            }
        });
        recorder
    }

    pub fn record(&self, r: &Record<'_>) {
        let now = now_ms();
        let key = KeyRef {
            at_ms: now - now.rem_euclid(SLOT_MS),
            kind: kind_label(r.kind),
            server: r.server,
            name: r.name,
            profile: r.profile,
            project: r.project,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let rollup = match pending.get_index_of(&key) {
            Some(i) => &mut pending[i],
            None => {
                let owned = Key {
                    at_ms: key.at_ms,
                    kind: key.kind,
                    server: key.server.to_string(),
                    name: key.name.to_string(),
                    profile: key.profile.to_string(),
                    project: key.project.to_string(),
                };
                pending.entry(owned).or_default()
            }
        };
        rollup.calls += 1;
        rollup.errors += u64::from(!r.ok);
        rollup.bytes_in += r.bytes_in as u64;
        rollup.bytes_out += r.bytes_out as u64;
        rollup.latency.add(r.duration);
    }

    /// Writes what is pending now (the director is stopping).
    pub async fn flush(&self) {
        if let Some(store) = &self.store {
            flush(store, &self.pending).await;
        }
    }

    fn pending(&self) -> Vec<(Key, Rollup)> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

async fn flush(store: &Store, pending: &Mutex<IndexMap<Key, Rollup>>) {
    let taken = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
    if let Err(e) = write(store, &taken).await {
        tracing::warn!(error = %e, rollups = taken.len(), "analytics not written");
    }
}

async fn write(store: &Store, rollups: &IndexMap<Key, Rollup>) -> Result<(), sqlx::Error> {
    if rollups.is_empty() {
        return Ok(());
    }
    let mut tx = store.pool().begin().await?;
    for (k, r) in rollups {
        sqlx::query(
            "INSERT INTO analytics_rollup (at_ms, kind, server, name, profile, project, calls, errors, bytes_in, bytes_out, latency)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(k.at_ms)
        .bind(k.kind)
        .bind(&k.server)
        .bind(&k.name)
        .bind(&k.profile)
        .bind(&k.project)
        .bind(r.calls as i64)
        .bind(r.errors as i64)
        .bind(r.bytes_in as i64)
        .bind(r.bytes_out as i64)
        .bind(r.latency.encode())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// What a report covers: the last `window`, only the calls matching the given fields, over
/// time in `buckets` equal parts.
pub struct Scope<'a> {
    pub window: Duration,
    pub server: Option<&'a str>,
    pub name: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub buckets: usize,
}

impl Scope<'_> {
    fn matches(&self, server: &str, name: &str, profile: &str) -> bool {
        self.server.is_none_or(|s| s == server)
            && self.name.is_none_or(|n| n == name)
            && self.profile.is_none_or(|p| p == profile)
    }
}

#[derive(Default)]
struct Totals {
    calls: u64,
    errors: u64,
    latency: Histogram,
}

impl Totals {
    fn add(&mut self, calls: u64, errors: u64, latency: &Histogram) {
        self.calls += calls;
        self.errors += errors;
        self.latency.merge(latency);
    }
}

/// Aggregates of the calls in `scope` (what is stored, and what `recorder` has not written
/// yet), busiest first, and the same calls over time (oldest bucket first).
pub async fn report(
    store: &Store,
    recorder: Option<&Recorder>,
    scope: &Scope<'_>,
) -> Result<(Vec<AnalyticsRow>, Vec<AnalyticsBucket>), sqlx::Error> {
    let now = now_ms();
    let window_ms = (scope.window.as_millis() as i64).max(1);
    let since = now - window_ms;
    type Stored = (i64, String, String, String, String, i64, i64, String);
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT at_ms, server, kind, name, profile, calls, errors, latency FROM analytics_rollup WHERE at_ms >= $1",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await?;
    let buckets = scope.buckets.max(1);
    let bucket_of = |at_ms: i64| {
        let i = (at_ms - since).max(0) as i128 * buckets as i128 / window_ms as i128;
        (i as usize).min(buckets - 1)
    };
    type Group = (String, String, String, String);
    let mut groups: BTreeMap<Group, Totals> = BTreeMap::new();
    let mut series: Vec<Totals> = (0..buckets).map(|_| Totals::default()).collect();
    for (at_ms, server, kind, name, profile, calls, errors, latency) in rows {
        if !scope.matches(&server, &name, &profile) {
            continue;
        }
        let latency = Histogram::decode(&latency);
        series[bucket_of(at_ms)].add(calls as u64, errors as u64, &latency);
        groups
            .entry((server, kind, name, profile))
            .or_default()
            .add(calls as u64, errors as u64, &latency);
    }
    for (k, r) in recorder.map(Recorder::pending).unwrap_or_default() {
        if k.at_ms + SLOT_MS < since || !scope.matches(&k.server, &k.name, &k.profile) {
            continue;
        }
        series[bucket_of(k.at_ms)].add(r.calls, r.errors, &r.latency);
        groups
            .entry((k.server, k.kind.to_string(), k.name, k.profile))
            .or_default()
            .add(r.calls, r.errors, &r.latency);
    }
    let mut out: Vec<AnalyticsRow> = groups
        .into_iter()
        .filter_map(|((server, kind, name, profile), t)| {
            Some(AnalyticsRow {
                kind: kind.parse().ok()?,
                server,
                name,
                profile,
                calls: t.calls,
                errors: t.errors,
                error_rate: t.errors as f64 / t.calls.max(1) as f64,
                p50_ms: t.latency.percentile(0.50),
                p95_ms: t.latency.percentile(0.95),
                p99_ms: t.latency.percentile(0.99),
            })
        })
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
    let series = series
        .into_iter()
        .enumerate()
        .map(|(i, t)| AnalyticsBucket {
            start: crate::tasks::iso8601(since + (i as i64 * window_ms) / buckets as i64),
            calls: t.calls,
            errors: t.errors,
            p50_ms: t.latency.percentile(0.50),
            p95_ms: t.latency.percentile(0.95),
        })
        .collect();
    Ok((out, series))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_the_bucket_precision() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.add(Duration::from_millis(ms));
        }
        for (p, want) in [(0.50, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = h.percentile(p);
            assert!((got / want - 1.0).abs() < 0.045, "p{p}: {got} for {want}");
        }
        assert_eq!(Histogram::default().percentile(0.5), 0.0);
        assert_eq!(Histogram::decode(&h.encode()), h);
    }

    #[test]
    fn recording_the_same_key_adds_to_one_rollup() {
        let r = Recorder {
            pending: Arc::default(),
            store: None,
        };
        let record = |name, ok| Record {
            kind: AnalyticsRowKind::Tool,
            server: "a",
            name,
            profile: "",
            project: "",
            duration: Duration::from_millis(3),
            ok,
            bytes_in: 10,
            bytes_out: 20,
        };
        r.record(&record("x", true));
        r.record(&record("x", false));
        r.record(&record("y", true));
        let mut pending = r.pending();
        pending.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        assert_eq!(pending.len(), 2, "{pending:?}");
        let x = &pending[0].1;
        assert_eq!((x.calls, x.errors, x.bytes_in, x.bytes_out), (2, 1, 20, 40));
    }
}
