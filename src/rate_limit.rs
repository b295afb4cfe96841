//! Rate limiting of the MCP endpoints (`settings.rate_limit`): a token bucket per principal,
//! the profile token's hash when one is presented, else the client's IP address. Over the
//! limit a request gets 429 with `Retry-After`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct RateLimits {
    current: RwLock<Arc<Limiter>>,
}

struct Limiter {
    settings: (u32, u32),
    keyed: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    fn new(per_minute: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
        Self {
            settings: (per_minute, burst.get()),
            keyed: DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            current: RwLock::new(Arc::new(Limiter::new(600, 100))),
        }
    }
}

impl RateLimits {
    /// Takes one request from `key`'s bucket; `Err(wait)` when it is empty. A change of the
    /// configured rate starts fresh buckets.
    pub fn check(&self, key: &str, per_minute: u32, burst: u32) -> Result<(), Duration> {
        let limiter = {
            let current = self
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if current.settings == (per_minute, burst) {
                current
            } else {
                let fresh = Arc::new(Limiter::new(per_minute, burst));
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
                fresh
            }
        };
        limiter
            .keyed
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets buckets that are full again (bounded memory under many clients).
    pub fn shrink(&self) {
        let limiter = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        limiter.keyed.retain_recent();
        limiter.keyed.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_limit_waits_and_other_keys_do_not() {
        let limits = RateLimits::default();
        for _ in 0..3 {
            assert!(limits.check("a", 60, 3).is_ok());
        }
        let wait = limits.check("a", 60, 3).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limits.check("b", 60, 3).is_ok(),
            "another principal is unaffected"
        );
    }
}
