//! Per-client rate limiting of token minting: `auth/token/create*` and every auth-method login.
//!
//! Why: both endpoints write to storage and, for logins, check a credential. Without a limit a
//! single client can fill storage with tokens or brute-force a role's secret at line rate.
//! Vault offers this as operator-defined quotas; shroud turns one on by default.
//!
//! Model: one token bucket per client key (the peer IP; IPv6 addresses are grouped by /64,
//! since one host typically owns a whole /64 and could otherwise rotate addresses to get fresh
//! buckets). Requests with no peer address (in-process callers) share the `Unknown` bucket.
//! The bucket map is bounded: when it is full, buckets that have refilled completely (which
//! carry no information) are dropped first, then the least recently seen one.
//!
//! Threat assumptions: the peer address is the TCP peer. Behind a reverse proxy every client
//! shares the proxy's bucket; `X-Forwarded-For` is deliberately not trusted.
//!
//! Start with [`RateLimiter::new`] and [`RateLimiter::check`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Default burst: requests a client can make back to back.
pub const DEFAULT_BURST: u32 = 20;
/// Default sustained rate, in requests per second.
pub const DEFAULT_REFILL_PER_SEC: u32 = 10;
/// Default bound on the number of clients tracked at once.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

/// Limits of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// False turns the limiter off (every request allowed, nothing tracked).
    pub enabled: bool,
    /// Bucket size: the burst a client may send at once.
    pub burst: u32,
    /// Tokens added back per second.
    pub refill_per_sec: u32,
    /// Most client buckets kept in memory.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            burst: DEFAULT_BURST,
            refill_per_sec: DEFAULT_REFILL_PER_SEC,
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }
}

impl RateLimitConfig {
    /// A configuration that allows everything.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Whom a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address, or an IPv6 address with its low 64 bits cleared.
    Ip(IpAddr),
    /// Requests without a peer address.
    Unknown,
}

impl ClientKey {
    /// The key for a request's peer address.
    pub fn from_remote(remote: Option<SocketAddr>) -> Self {
        match remote.map(|a| a.ip()) {
            None => ClientKey::Unknown,
            Some(IpAddr::V4(v4)) => ClientKey::Ip(IpAddr::V4(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                // An IPv4 client on a dual-stack socket is that IPv4 client.
                Some(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey::Ip(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

/// A monotonic time source; tests inject one they can advance.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Tokens after refilling up to `now`.
    fn level(&self, now: Instant, cfg: &RateLimitConfig) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * f64::from(cfg.refill_per_sec)).min(f64::from(cfg.burst))
    }
}

struct Inner {
    config: RateLimitConfig,
    buckets: HashMap<ClientKey, Bucket>,
}

/// A set of per-client token buckets with a bounded size.
pub struct RateLimiter {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config())
            .field("clients", &self.len())
            .finish()
    }
}

impl RateLimiter {
    /// A limiter on the system clock.
    pub fn new(config: RateLimitConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A limiter on `clock` (tests).
    pub fn with_clock(config: RateLimitConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                config,
                buckets: HashMap::new(),
            }),
            clock,
        }
    }

    /// The current limits.
    pub fn config(&self) -> RateLimitConfig {
        self.lock().config
    }

    /// Replaces the limits; every client starts again with a full bucket.
    pub fn set_config(&self, config: RateLimitConfig) {
        let mut g = self.lock();
        g.config = config;
        g.buckets.clear();
    }

    /// Number of clients currently tracked.
    pub fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    /// True when no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a cache of counters: a panic elsewhere cannot leave it inconsistent
        // in a way that matters more than losing a few counts.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one token from `key`'s bucket. False means the client is over its limit and the
    /// request must be refused (429) before any further work.
    pub fn check(&self, key: ClientKey) -> bool {
        let now = self.clock.now();
        let mut g = self.lock();
        let cfg = g.config;
        if !cfg.enabled {
            return true;
        }
        if !g.buckets.contains_key(&key) && g.buckets.len() >= cfg.max_clients.max(1) {
            Self::evict(&mut g.buckets, now, &cfg);
        }
        let b = g.buckets.entry(key).or_insert(Bucket {
            tokens: f64::from(cfg.burst),
            last: now,
        });
        let level = b.level(now, &cfg);
        b.last = now;
        if level >= 1.0 {
            b.tokens = level - 1.0;
            true
        } else {
            b.tokens = level;
            false
        }
    }

    /// Makes room for one more bucket. Full buckets go first: dropping them loses nothing,
    /// since a new bucket starts full. If every bucket is in use, the least recently seen goes.
    fn evict(buckets: &mut HashMap<ClientKey, Bucket>, now: Instant, cfg: &RateLimitConfig) {
        let full = f64::from(cfg.burst);
        buckets.retain(|_, b| b.level(now, cfg) < full);
        while buckets.len() >= cfg.max_clients.max(1) {
            let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k) else {
                break;
            };
            buckets.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    struct TestClock(Mutex<Instant>);

    impl TestClock {
        fn new() -> Arc<Self> {
            Arc::new(Self(Mutex::new(Instant::now())))
        }
        fn advance(&self, d: Duration) {
            let mut t = self.0.lock().unwrap();
            *t += d;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn ip(a: u8) -> ClientKey {
        ClientKey::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)))
    }

    fn cfg(burst: u32, rate: u32, max: usize) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            burst,
            refill_per_sec: rate,
            max_clients: max,
        }
    }

    #[test]
    fn burst_then_refused() {
        let l = RateLimiter::with_clock(cfg(20, 10, 100), TestClock::new());
        for i in 0..20 {
            assert!(l.check(ip(1)), "request {i} within the burst");
        }
        assert!(!l.check(ip(1)), "21st request refused");
        assert!(!l.check(ip(1)), "still refused without time passing");
    }

    #[test]
    fn refill_restores_capacity_at_the_configured_rate() {
        let clock = TestClock::new();
        let l = RateLimiter::with_clock(cfg(20, 10, 100), clock.clone());
        for _ in 0..20 {
            assert!(l.check(ip(1)));
        }
        assert!(!l.check(ip(1)));
        clock.advance(Duration::from_millis(100));
        assert!(l.check(ip(1)), "one token back after 100ms at 10/s");
        assert!(!l.check(ip(1)));
        clock.advance(Duration::from_millis(500));
        for _ in 0..5 {
            assert!(l.check(ip(1)));
        }
        assert!(!l.check(ip(1)), "five tokens back after 500ms, not six");
        clock.advance(Duration::from_secs(3600));
        for _ in 0..20 {
            assert!(l.check(ip(1)));
        }
        assert!(!l.check(ip(1)), "refill never exceeds the burst");
    }

    #[test]
    fn refused_requests_do_not_drain_below_zero() {
        let clock = TestClock::new();
        let l = RateLimiter::with_clock(cfg(2, 1, 100), clock.clone());
        assert!(l.check(ip(1)));
        assert!(l.check(ip(1)));
        for _ in 0..100 {
            assert!(!l.check(ip(1)));
        }
        clock.advance(Duration::from_secs(1));
        assert!(
            l.check(ip(1)),
            "hammering while limited does not push recovery out"
        );
    }

    #[test]
    fn clients_are_independent() {
        let l = RateLimiter::with_clock(cfg(3, 1, 100), TestClock::new());
        for _ in 0..3 {
            assert!(l.check(ip(1)));
        }
        assert!(!l.check(ip(1)));
        assert!(l.check(ip(2)));
        assert!(l.check(ClientKey::Unknown));
    }

    #[test]
    fn map_is_bounded_and_evicts_idle_first() {
        let clock = TestClock::new();
        let l = RateLimiter::with_clock(cfg(2, 1, 4), clock.clone());
        // Client 1 is drained; 2..=4 used one token each.
        assert!(l.check(ip(1)));
        assert!(l.check(ip(1)));
        for a in 2..=4 {
            assert!(l.check(ip(a)));
        }
        assert_eq!(l.len(), 4);
        // One second later 2..=4 are full again (idle), client 1 has one token.
        clock.advance(Duration::from_secs(1));
        assert!(l.check(ip(5)));
        assert!(l.len() <= 4);
        // Client 1's state survived eviction: it has exactly one token left.
        assert!(l.check(ip(1)));
        assert!(!l.check(ip(1)), "drained client was not reset by eviction");
    }

    #[test]
    fn map_never_grows_past_its_bound() {
        let l = RateLimiter::with_clock(cfg(5, 1, 16), TestClock::new());
        for a in 0..=255u8 {
            assert!(l.check(ip(a)));
            assert!(l.len() <= 16);
        }
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a: SocketAddr = "[2001:db8:1:2::1]:1000".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2:ffff::9]:2000".parse().unwrap();
        let c: SocketAddr = "[2001:db8:1:3::1]:1000".parse().unwrap();
        assert_eq!(
            ClientKey::from_remote(Some(a)),
            ClientKey::from_remote(Some(b))
        );
        assert_ne!(
            ClientKey::from_remote(Some(a)),
            ClientKey::from_remote(Some(c))
        );
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:1".parse().unwrap();
        assert_eq!(ClientKey::from_remote(Some(mapped)), ip(1));
        assert_eq!(ClientKey::from_remote(None), ClientKey::Unknown);
    }

    #[test]
    fn disabled_allows_everything_and_tracks_nothing() {
        let l = RateLimiter::with_clock(RateLimitConfig::disabled(), TestClock::new());
        for _ in 0..1000 {
            assert!(l.check(ip(1)));
        }
        assert!(l.is_empty());
    }
}
