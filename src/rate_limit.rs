//! Rate limiting of the MCP endpoints (`settings.rate_limit`, or the profile's own): a token
//! bucket per principal — the signed-in subject or profile token's hash when one is presented,
//! else the client's IP address. Over the limit: 429 with `Retry-After` on HTTP, a JSON-RPC
//! error on stdio. Replicas share the buckets in Redis when `[settings.cluster] redis_url` is
//! set (`cluster::redis`); otherwise each enforces its share of the limit.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use mcp_director_api::models::RateLimitSettings;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One keyed limiter per configured quota (the global one and each profile's own): a
/// principal's bucket lives in the limiter of the quota that applies to it.
#[derive(Default)]
pub struct RateLimits {
    by_quota: RwLock<HashMap<(u32, u32), Arc<Limiter>>>,
    /// How many replicas share the limits (each enforces its share); 0 or 1: this one alone.
    replicas: Arc<AtomicU32>,
    /// The buckets every replica takes from, when there is a Redis.
    redis: Option<crate::cluster::redis::SharedLimits>,
    /// When Redis last failed to answer (warned about once a minute, not per request).
    redis_warned: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Buckets by principal under one quota.
type Limiter = DefaultKeyedRateLimiter<String>;

impl RateLimits {
    /// Limits of which this replica enforces its share, `replicas` being how many are alive
    /// (kept current by the gateway): behind a load balancer each sees about that share of a
    /// client's requests.
    pub fn shared(replicas: Arc<AtomicU32>) -> Self {
        Self {
            replicas,
            ..Default::default()
        }
    }

    /// Limits counted in the Redis at `redis` by every replica alike.
    pub fn in_redis(redis: crate::cluster::redis::SharedLimits, replicas: Arc<AtomicU32>) -> Self {
        Self {
            replicas,
            redis: Some(redis),
            ..Default::default()
        }
    }

    /// Takes one request from `key`'s bucket under `limit`: in Redis when there is one, else
    /// (or while it does not answer) this replica's share of it. `Err(wait)` when it is empty.
    pub async fn check(&self, key: &str, limit: &RateLimitSettings) -> Result<(), Duration> {
        if limit.per_minute == 0 {
            return Ok(());
        }
        if let Some(redis) = &self.redis {
            let burst = limit.burst.unwrap_or(limit.per_minute);
            match redis.take(key, limit.per_minute, burst).await {
                Ok(taken) => return taken,
                Err(e) => {
                    let mut warned = self.redis_warned.lock().unwrap_or_else(|e| e.into_inner());
                    if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %e, "Redis unusable: rate limits are this replica's share meanwhile");
                        *warned = Some(std::time::Instant::now());
                    }
                }
            }
        }
        self.check_here(key, limit)
    }

    /// Takes one request from `key`'s bucket under `limit` (this replica's share of it);
    /// `Err(wait)` when it is empty. `per_minute = 0` never limits; an unset `burst` is
    /// `per_minute`.
    pub fn check_here(&self, key: &str, limit: &RateLimitSettings) -> Result<(), Duration> {
        if limit.per_minute == 0 {
            return Ok(());
        }
        let share = self.replicas.load(Ordering::Relaxed).max(1);
        let per_minute = limit.per_minute.div_ceil(share);
        let burst = limit.burst.unwrap_or(limit.per_minute).div_ceil(share);
        let quota = (per_minute, burst.max(1));
        let existing = self
            .by_quota
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&quota)
            .cloned();
        let limiter = match existing {
            Some(l) => l,
            None => self
                .by_quota
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(quota)
                .or_insert_with(|| {
                    let rate = NonZeroU32::new(per_minute).expect("checked above");
                    let burst = NonZeroU32::new(quota.1).expect("at least 1");
                    Arc::new(DefaultKeyedRateLimiter::keyed(
                        Quota::per_minute(rate).allow_burst(burst),
                    ))
                })
                .clone(),
        };
        limiter
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets buckets that are full again (bounded memory under many clients).
    pub fn shrink(&self) {
        let limiters: Vec<_> = self
            .by_quota
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for l in limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Failed attempts per client address (wrong admin passwords): past `max` within `window` the
/// address is refused until the window has passed, so guessing is slow and argon2 (slow and
/// memory-hungry on purpose) cannot be made to run at will.
pub struct Failures {
    max: u32,
    window: Duration,
    seen: std::sync::Mutex<HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
}

impl Failures {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            seen: Default::default(),
        }
    }

    /// How long `ip` must wait, if it has failed too often.
    pub fn blocked(&self, ip: std::net::IpAddr) -> Option<Duration> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (n, since) = seen.get(&ip)?;
        (*n >= self.max && since.elapsed() < self.window).then(|| self.window - since.elapsed())
    }

    pub fn failed(&self, ip: std::net::IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, (_, since)| since.elapsed() < self.window);
        }
        let entry = seen.entry(ip).or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_minute: u32, burst: Option<u32>) -> RateLimitSettings {
        RateLimitSettings { per_minute, burst }
    }

    #[test]
    fn a_burst_past_the_limit_waits_and_other_keys_do_not() {
        let limits = RateLimits::default();
        for _ in 0..3 {
            assert!(limits.check_here("a", &limit(60, Some(3))).is_ok());
        }
        let wait = limits.check_here("a", &limit(60, Some(3))).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limits.check_here("b", &limit(60, Some(3))).is_ok(),
            "another principal is unaffected"
        );
        // Another quota (a profile's own) is another bucket; 0 never limits.
        assert!(limits.check_here("a", &limit(60, Some(10))).is_ok());
        assert!((0..100).all(|_| limits.check_here("a", &limit(0, Some(0))).is_ok()));
    }

    #[test]
    fn each_of_several_replicas_enforces_its_share() {
        let replicas = Arc::new(AtomicU32::new(3));
        let limits = RateLimits::shared(replicas.clone());
        // 10 a minute over 3 replicas: 4 here (rounded up: never less than the limit in all).
        let passed = (0..10)
            .filter(|_| limits.check_here("a", &limit(10, None)).is_ok())
            .count();
        assert_eq!(passed, 4);
        replicas.store(1, Ordering::Relaxed);
        let alone = (0..20)
            .filter(|_| limits.check_here("b", &limit(10, None)).is_ok())
            .count();
        assert_eq!(alone, 10);
    }

    #[test]
    fn five_a_minute_means_five_at_once_at_most() {
        let limits = RateLimits::default();
        let five = limit(5, None);
        assert_eq!(
            (0..100)
                .filter(|_| limits.check_here("a", &five).is_ok())
                .count(),
            5
        );
    }

    #[test]
    fn failures_past_the_limit_block_the_address_only() {
        let f = Failures::new(3, Duration::from_secs(60));
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(f.blocked(a).is_none());
            f.failed(a);
        }
        assert!(f.blocked(a).is_some_and(|w| w <= Duration::from_secs(60)));
        assert!(f.blocked(b).is_none());
    }

    #[test]
    fn the_default_is_no_limit() {
        let limits = RateLimits::default();
        let default = RateLimitSettings::default();
        assert!((0..10_000).all(|_| limits.check_here("a", &default).is_ok()));
    }
}
