//! What one client may take of the HTTP side: connections (in total and per address), time to
//! send a request's headers, and POSTs and PATCHes per second (a token bucket per address,
//! `429` + `Retry-After` beyond it). A client over a limit is refused; nobody else notices.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lock::Locked;

/// The limits, as configured.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// `--http-header-timeout`: from accepting a connection (or the end of the previous
    /// request) to the end of a request's headers.
    pub header_timeout: Duration,
    /// `--http-idle-timeout`: nothing read or written on a connection for this long closes it.
    pub idle_timeout: Duration,
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--max-connections-per-ip`.
    pub max_connections_per_ip: usize,
    /// `--request-rate`: POSTs and PATCHes per second per client address.
    pub request_rate: f64,
    /// `--request-burst`: how many may come at once.
    pub request_burst: f64,
}

impl HttpLimits {
    /// How often an event stream writes a comment line: every 15 s (what proxies need), and
    /// at least three times per idle timeout, so an open stream is never idle.
    pub fn keepalive(&self) -> Duration {
        (self.idle_timeout / 3).min(Duration::from_secs(15))
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_ip: 64,
            request_rate: 50.0,
            request_burst: 100.0,
        }
    }
}

/// What a plain-HTTP connection over a cap is told before it is closed.
pub const OVER_CAP_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 59\r\nConnection: close\r\n\r\nToo many connections from this address; retry in a moment.\n";

/// Buckets kept before idle ones are forgotten.
const BUCKETS_KEPT: usize = 10_000;

/// The live counts the limits are checked against.
pub struct Limiter {
    pub limits: HttpLimits,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Per address: (tokens, when last filled).
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// Connections refused, and requests answered `429`, since start (metrics).
    pub refused_connections: AtomicU64,
    pub limited_requests: AtomicU64,
}

/// Holds one connection's place until dropped.
pub struct Admitted {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.limiter.open.fetch_sub(1, Ordering::AcqRel);
        let mut per_ip = self.limiter.per_ip.locked();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Limiter {
    pub fn new(limits: HttpLimits) -> Limiter {
        Limiter {
            limits,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            refused_connections: AtomicU64::new(0),
            limited_requests: AtomicU64::new(0),
        }
    }

    /// A place for a new connection from `ip`, or `None` when it would pass a cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut per_ip = self.per_ip.locked();
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if mine >= self.limits.max_connections_per_ip
            || self.open.load(Ordering::Acquire) >= self.limits.max_connections
        {
            self.refused_connections.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        per_ip.insert(ip, mine + 1);
        self.open.fetch_add(1, Ordering::AcqRel);
        Some(Admitted {
            limiter: self.clone(),
            ip,
        })
    }

    /// Takes a token for a POST or PATCH from `ip`; `Err(seconds to wait)` when none is left.
    pub fn request(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let (rate, burst) = (self.limits.request_rate, self.limits.request_burst.max(1.0));
        let mut buckets = self.buckets.locked();
        if buckets.len() >= BUCKETS_KEPT {
            // Forget the addresses whose buckets are full again: they owe nothing.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            self.limited_requests.fetch_add(1, Ordering::Relaxed);
            let wait = if rate > 0.0 {
                ((1.0 - *tokens) / rate).ceil()
            } else {
                3600.0
            };
            Err((wait as u64).clamp(1, 3600))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_cap_answer_is_one_sentence_of_the_declared_length() {
        let text = std::str::from_utf8(OVER_CAP_RESPONSE).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.trim_end().ends_with('.'));
    }

    #[test]
    fn caps_per_address_and_in_total() {
        let l = Arc::new(Limiter::new(HttpLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Default::default()
        }));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert!(l.admit(a).is_none(), "per address");
        let _b1 = l.admit(b).unwrap();
        assert!(l.admit(b).is_none(), "in total");
        drop(a1);
        assert!(l.admit(b).is_some(), "a place freed");
        assert_eq!(l.refused_connections.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_bucket_per_address_refills_at_the_rate() {
        let l = Limiter::new(HttpLimits {
            request_rate: 2.0,
            request_burst: 3.0,
            ..Default::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.request(a, t).is_ok());
        }
        assert_eq!(l.request(a, t), Err(1), "empty: wait a second");
        assert!(
            l.request(b, t).is_ok(),
            "another address has its own bucket"
        );
        assert!(
            l.request(a, t + Duration::from_millis(500)).is_ok(),
            "one token back"
        );
        assert!(l.request(a, t + Duration::from_millis(500)).is_err());
    }
}
