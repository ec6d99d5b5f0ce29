//! Rate limiting per API key: a token bucket per key id, in memory. Each
//! authenticated request takes one token; a key's bucket holds at most
//! `burst` tokens and refills at `per_second`. A request that finds the
//! bucket empty is refused with `429 rate_limited` and a `Retry-After`.
//! Requests without a valid key are never counted. Buckets start full and
//! are forgotten when the server stops.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How many requests one API key may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RateLimitFields")]
pub struct RateLimit {
    /// Tokens added per second: the sustained request rate. At least 1.
    /// Default 20.
    pub per_second: u32,
    /// Most tokens a key can save up: the largest burst. At least 1.
    /// Default 40.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: 20, burst: 40 }
    }
}

/// `[api.rate_limit]` as written, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitFields {
    per_second: u32,
    burst: u32,
}

impl Default for RateLimitFields {
    fn default() -> Self {
        let d = RateLimit::default();
        RateLimitFields { per_second: d.per_second, burst: d.burst }
    }
}

impl TryFrom<RateLimitFields> for RateLimit {
    type Error = String;
    fn try_from(f: RateLimitFields) -> Result<Self, String> {
        if f.per_second == 0 {
            return Err("rate_limit.per_second must be at least 1 (leave out rate_limit for no limit)".into());
        }
        if f.burst == 0 {
            return Err("rate_limit.burst must be at least 1 (the requests a key may make at once)".into());
        }
        Ok(RateLimit { per_second: f.per_second, burst: f.burst })
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of every key that made a request.
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Buckets for `limit` (a zero in it counts as one).
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        let limit = RateLimit { per_second: limit.per_second.max(1), burst: limit.burst.max(1) };
        RateLimiter { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// The limit in force.
    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Take a token for `key_id`; `Err(wait)` when there is none, with how
    /// long until there is.
    pub(crate) fn take(&self, key_id: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let (rate, burst) = (f64::from(self.limit.per_second), f64::from(self.limit.burst));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key_id.to_string()).or_insert(Bucket { tokens: burst, last: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Forget `key_id`'s bucket (the key was revoked).
    pub(crate) fn forget(&self, key_id: &str) {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).remove(key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_per_key() {
        let limiter = RateLimiter::new(RateLimit { per_second: 1, burst: 3 });
        for _ in 0..3 {
            assert_eq!(limiter.take("k_a"), Ok(()));
        }
        let wait = limiter.take("k_a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limiter.take("k_b"), Ok(()), "another key has its own bucket");
    }

    #[test]
    fn config_refuses_zero_and_unknown_fields() {
        let parse = |t: &str| toml::from_str::<RateLimit>(t);
        assert_eq!(parse("per_second = 2\nburst = 5").unwrap(), RateLimit { per_second: 2, burst: 5 });
        assert!(parse("per_second = 0").unwrap_err().to_string().contains("at least 1"));
        assert!(parse("per_second = 1\nbrust = 2").unwrap_err().to_string().contains("brust"));
    }
}
