//! The pool of UDP ports sessions draw from (`--ice-ports LO-HI`): one port per session,
//! returned when the lease drops. Each lease may carry an owner label (the room), which the
//! TURN server consults so a relay only reaches sessions of its credential's room.

use crate::lock::Locked;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
struct Inner {
    lo: u16,
    /// `None` free; `Some(owner)` leased (the label may be empty).
    used: Vec<Option<Arc<str>>>,
    /// Round-robin cursor, so a just-freed port is not reused at once (late packets).
    next: usize,
}

#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Inner>>,
}

/// A port held by one session; freed on drop.
#[derive(Debug)]
pub struct PortLease {
    pub port: u16,
    pool: PortPool,
}

impl PortPool {
    pub fn new(lo: u16, hi: u16) -> PortPool {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        PortPool {
            inner: Arc::new(Mutex::new(Inner {
                lo,
                used: vec![None; (hi - lo) as usize + 1],
                next: 0,
            })),
        }
    }

    /// Takes the next free port, or `None` when all are in use.
    pub fn lease(&self) -> Option<PortLease> {
        self.lease_for("")
    }

    /// Takes the next free port for `owner`.
    pub fn lease_for(&self, owner: &str) -> Option<PortLease> {
        let mut g = self.inner.locked();
        let n = g.used.len();
        for i in 0..n {
            let idx = (g.next + i) % n;
            if g.used[idx].is_none() {
                g.used[idx] = Some(owner.into());
                g.next = (idx + 1) % n;
                return Some(PortLease {
                    port: g.lo + idx as u16,
                    pool: self.clone(),
                });
            }
        }
        None
    }

    /// Takes a free even port, and with `pair` the odd port after it as well (TURN's EVEN-PORT,
    /// RFC 8656 §7.2: the pair an RTP/RTCP client asks for).
    pub fn lease_even(&self, pair: bool) -> Option<(PortLease, Option<PortLease>)> {
        let mut g = self.inner.locked();
        let n = g.used.len();
        let lo = g.lo;
        let free = |g: &Inner, idx: usize| g.used.get(idx).is_some_and(|u| u.is_none());
        for i in 0..n {
            let idx = (g.next + i) % n;
            let port = lo + idx as u16;
            if !port.is_multiple_of(2) || !free(&g, idx) || (pair && !free(&g, idx + 1)) {
                continue;
            }
            let held = if pair { idx + 1 } else { idx };
            for j in idx..=held {
                g.used[j] = Some("".into());
            }
            g.next = (held + 1) % n;
            let lease = |port| PortLease {
                port,
                pool: self.clone(),
            };
            return Some((lease(port), pair.then(|| lease(port + 1))));
        }
        None
    }

    pub fn in_use(&self) -> usize {
        let g = self.inner.locked();
        g.used.iter().filter(|u| u.is_some()).count()
    }

    /// Whether `port` is leased to `owner` right now.
    pub fn owned_by(&self, port: u16, owner: &str) -> bool {
        let g = self.inner.locked();
        port.checked_sub(g.lo)
            .and_then(|i| g.used.get(i as usize))
            .is_some_and(|u| u.as_deref() == Some(owner))
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut g = self.pool.inner.locked();
        let idx = (self.port - g.lo) as usize;
        if let Some(u) = g.used.get_mut(idx) {
            *u = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_until_exhausted_and_frees_on_drop() {
        let pool = PortPool::new(5000, 5001);
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_ne!(a.port, b.port);
        assert!(pool.lease().is_none());
        drop(a);
        assert_eq!(pool.lease().map(|l| l.port), Some(5000));
        assert_eq!(pool.in_use(), 1);
    }

    #[test]
    fn even_ports_and_pairs() {
        let pool = PortPool::new(5001, 5006);
        let (even, none) = pool.lease_even(false).unwrap();
        assert_eq!((even.port, none.map(|l| l.port)), (5002, None));
        // 5003 is free but 5004-5005 is the next even pair.
        let (a, b) = pool.lease_even(true).unwrap();
        assert_eq!((a.port, b.map(|l| l.port)), (5004, Some(5005)));
        let (c, _) = pool.lease_even(false).unwrap();
        assert_eq!(c.port, 5006);
        assert!(pool.lease_even(false).is_none(), "no even port left");
        drop(even);
        let odd = pool.lease_for("x").unwrap();
        assert_eq!(odd.port, 5001);
        drop(c);
        let (d, e) = pool.lease_even(true).unwrap();
        assert_eq!((d.port, e.map(|l| l.port)), (5002, Some(5003)));
        // 5006 is even and free, but 5007 is outside the range: no pair.
        assert!(pool.lease_even(true).is_none());
        assert_eq!(pool.lease_even(false).map(|(l, _)| l.port), Some(5006));
        // Held: 5001, 5002, 5004 (the odd ones taken in pairs were dropped above).
        assert_eq!(pool.in_use(), 3);
    }

    #[test]
    fn leases_remember_their_owner() {
        let pool = PortPool::new(5000, 5001);
        let a = pool.lease_for("red").unwrap();
        assert!(pool.owned_by(a.port, "red"));
        assert!(!pool.owned_by(a.port, "blue"));
        assert!(!pool.owned_by(5001, "red"));
        assert!(!pool.owned_by(4999, "red"));
        let port = a.port;
        drop(a);
        assert!(!pool.owned_by(port, "red"));
    }
}
