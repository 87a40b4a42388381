//! The TURN protocol engine (RFC 8656, UDP relays): allocations keyed by the client's
//! transport address, long-term-credential authentication with REST passwords, permissions,
//! channels, Send/Data indications and ChannelData, plus plain STUN Binding (RFC 8489).
//! Message encoding and attributes come from `rtc-stun`/`rtc-turn`; the listeners that feed
//! this engine are in `turn/mod.rs`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::rtc::stun::attributes::*;
use ::rtc::stun::error_code::*;
use ::rtc::stun::fingerprint::FINGERPRINT;
use ::rtc::stun::message::*;
use ::rtc::stun::textattrs::TextAttribute;
use ::rtc::stun::xoraddr::XorMappedAddress;
use ::rtc::turn::proto::channum::ChannelNumber;
use ::rtc::turn::proto::lifetime::Lifetime;
use ::rtc::turn::proto::relayaddr::RelayedAddress;

use super::allocation::{Allocation, State, relay_reader};
pub use super::allocation::{FiveTuple, Link};
use super::reserve::{PortRequest, Reservations};
use super::wire::{Reply, SOFTWARE, error, peer_addresses, requested_lifetime, success};
use crate::rtc::udp::Udp;

use super::auth;
use super::credentials::Minter;
use crate::lock::Locked;
use crate::rtc::PortPool;

/// Longest allocation lifetime granted (RFC 8656 §7.2 suggests an hour at most).
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// Decides which peers a relay may reach: only the ICE sessions of the credential's room.
pub trait PeerGuard: Send + Sync + 'static {
    fn allows(&self, room: &str, peer: SocketAddr) -> bool;
    /// Where to send for an announced peer address (behind NAT 1:1 the relay talks to the
    /// bound address, not the public one, which may not hairpin).
    fn internal(&self, peer: SocketAddr) -> SocketAddr {
        peer
    }
    /// The inverse of [`PeerGuard::internal`], for datagrams arriving at a relay.
    fn external(&self, from: SocketAddr) -> SocketAddr {
        from
    }
}

pub struct Settings {
    pub realm: String,
    pub minter: Minter,
    /// Address relay sockets bind to, and the one announced in XOR-RELAYED-ADDRESS.
    pub relay_bind: IpAddr,
    pub relay_public: IpAddr,
    /// Most live allocations per username.
    pub quota: usize,
}

/// The engine shared by every listener.
pub struct Engine {
    settings: Settings,
    guard: Arc<dyn PeerGuard>,
    relay_ports: PortPool,
    crypto: Arc<dyn ::rtc::crypto::RTCCryptoProvider>,
    allocations: Mutex<HashMap<FiveTuple, Arc<Allocation>>>,
    reservations: Reservations,
}

/// A request's result on an allocation: attributes for the success response, or an error.
type Outcome = Result<Vec<Box<dyn Setter>>, (ErrorCode, &'static str)>;

impl Engine {
    pub fn new(
        settings: Settings,
        guard: Arc<dyn PeerGuard>,
        relay_ports: PortPool,
    ) -> Result<Arc<Engine>, String> {
        let crypto = ::rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        Ok(Arc::new(Engine {
            settings,
            guard,
            relay_ports,
            crypto,
            allocations: Mutex::new(HashMap::new()),
            reservations: Reservations::default(),
        }))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<FiveTuple, Arc<Allocation>>> {
        self.allocations.locked()
    }

    fn find(&self, ft: &FiveTuple) -> Option<Arc<Allocation>> {
        self.table().get(ft).cloned()
    }

    /// Live allocations (for tests and the log).
    pub fn allocation_count(&self) -> usize {
        self.table().len()
    }

    /// Whether a TCP/TLS client holds an allocation.
    pub fn has_stream_allocation(&self, client: SocketAddr) -> bool {
        self.table().contains_key(&FiveTuple {
            stream: true,
            client,
        })
    }

    /// Drops expired allocations, permissions and channels.
    pub fn sweep(&self, now: Instant) {
        self.table().retain(|_, a| {
            let mut s = a.state();
            s.permissions.retain(|_, t| *t > now);
            s.channels.retain(|_, (_, t)| *t > now);
            s.expires > now
        });
        self.reservations.sweep(now);
    }

    /// Ends every allocation made over one TCP/TLS connection (RFC 8656 §3.1).
    pub fn connection_closed(&self, client: SocketAddr) {
        self.table().remove(&FiveTuple {
            stream: true,
            client,
        });
    }

    /// Handles one datagram or framed stream message from a client.
    pub fn handle(self: &Arc<Self>, link: &Link, client: SocketAddr, buf: &[u8]) {
        let ft = FiveTuple {
            stream: link.is_stream(),
            client,
        };
        if buf.len() >= 4 && buf[0] >> 6 == 0b01 {
            self.channel_data(&ft, buf);
            return;
        }
        if !is_stun_message(buf) {
            return;
        }
        let mut m = Message::new();
        if m.unmarshal_binary(buf).is_err() {
            return;
        }
        let reply = match (m.typ.class, m.typ.method) {
            (CLASS_REQUEST, METHOD_BINDING) => self.binding(&m, client),
            (CLASS_REQUEST, METHOD_ALLOCATE) => self.allocate(&mut m, &ft, link),
            (CLASS_REQUEST, METHOD_REFRESH) => self.authed(&mut m, &ft, Engine::refresh),
            (CLASS_REQUEST, METHOD_CREATE_PERMISSION) => {
                self.authed(&mut m, &ft, Engine::create_permission)
            }
            (CLASS_REQUEST, METHOD_CHANNEL_BIND) => self.authed(&mut m, &ft, Engine::channel_bind),
            (CLASS_INDICATION, METHOD_SEND) => {
                self.send_indication(&m, &ft);
                None
            }
            (CLASS_REQUEST, method) => error(
                &m,
                method,
                CODE_BAD_REQUEST,
                "unsupported request method",
                None,
            ),
            _ => None,
        };
        if let Some(bytes) = reply {
            link.send(bytes);
        }
    }

    fn binding(&self, m: &Message, client: SocketAddr) -> Reply {
        let mut out = Message::new();
        out.build(&[
            Box::new(m.transaction_id),
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: client.ip(),
                port: client.port(),
            }),
            Box::new(TextAttribute::new(ATTR_SOFTWARE, SOFTWARE.into())),
            Box::new(FINGERPRINT),
        ])
        .ok()?;
        Some(out.raw)
    }

    fn allocate(self: &Arc<Self>, m: &mut Message, ft: &FiveTuple, link: &Link) -> Reply {
        let (key, username, room) = match auth::authenticate(
            &self.settings.realm,
            &self.settings.minter,
            self.crypto.crypto(),
            m,
            ft.client,
        ) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let fail = |code, reason: &str| error(m, METHOD_ALLOCATE, code, reason, Some(&key));
        if let Some(existing) = self.find(ft) {
            // A retransmitted Allocate from the owner gets the same answer (RFC 8656 §7.2).
            if existing.username == username {
                let lifetime = existing
                    .state()
                    .expires
                    .saturating_duration_since(Instant::now());
                return self.allocate_success(m, &existing, lifetime, ft.client);
            }
            return fail(CODE_ALLOC_MISMATCH, "allocation already exists");
        }
        match m.get(ATTR_REQUESTED_TRANSPORT) {
            Ok(v) if v.first() == Some(&17) => {}
            Ok(_) => return fail(CODE_UNSUPPORTED_TRANS_PROTO, "only UDP relays"),
            Err(_) => return fail(CODE_BAD_REQUEST, "REQUESTED-TRANSPORT is required"),
        }
        let want = match PortRequest::of(m) {
            Ok(w) => w,
            Err(reason) => return fail(CODE_BAD_REQUEST, reason),
        };
        if let Ok(v) = m.get(ATTR_REQUESTED_ADDRESS_FAMILY) {
            let want_v6 = v.first() == Some(&0x02);
            if want_v6 != self.settings.relay_public.is_ipv6() {
                return fail(
                    CODE_ADDR_FAMILY_NOT_SUPPORTED,
                    "relay address family not available",
                );
            }
        }
        let now = Instant::now();
        let held = self
            .table()
            .values()
            .filter(|a| a.username == username)
            .count()
            + self.reservations.count_for(&username, now);
        // Claiming one's own reservation frees a place as it takes one.
        let claims = usize::from(matches!(want, PortRequest::Reserved(_)));
        if held >= self.settings.quota + claims {
            return fail(CODE_ALLOC_QUOTA_REACHED, "allocation quota reached");
        }
        let Some((port, relay, reserved)) = self.bind_relay(want, now) else {
            return fail(
                CODE_INSUFFICIENT_CAPACITY,
                match want {
                    PortRequest::Reserved(_) => "no such reservation (unknown, used or expired)",
                    PortRequest::Even { reserve: true } => "no free pair of relay ports",
                    _ => "no relay port free",
                },
            );
        };
        let token = reserved.map(|odd| self.reservations.hold(&username, odd, now));
        let lifetime = requested_lifetime(m).min(MAX_LIFETIME);
        let alloc = Arc::new(Allocation {
            username,
            room,
            key,
            relayed: SocketAddr::new(self.settings.relay_public, port.port),
            relay: relay.clone(),
            link: link.clone(),
            reservation: token,
            state: Mutex::new(State {
                expires: Instant::now() + lifetime,
                permissions: HashMap::new(),
                channels: HashMap::new(),
            }),
            _port: port,
            reader: Mutex::new(None),
        });
        let task = tokio::spawn(relay_reader(
            relay,
            Arc::downgrade(&alloc),
            self.guard.clone(),
        ));
        *alloc.reader.locked() = Some(task);
        self.table().insert(*ft, alloc.clone());
        tracing::debug!(client = %ft.client, relay = %alloc.relayed, "TURN allocation");
        self.allocate_success(m, &alloc, lifetime, ft.client)
    }

    /// A relay port as asked and its socket, and the port reserved with it (EVEN-PORT's R).
    fn bind_relay(
        &self,
        want: PortRequest,
        now: Instant,
    ) -> Option<(
        crate::rtc::PortLease,
        Arc<Udp>,
        Option<crate::rtc::PortLease>,
    )> {
        let bind = |port: u16| {
            Udp::bind(SocketAddr::new(self.settings.relay_bind, port))
                .ok()
                .map(Arc::new)
        };
        if let PortRequest::Reserved(token) = want {
            let lease = self.reservations.take(token, now)?;
            let sock = bind(lease.port)?;
            return Some((lease, sock, None));
        }
        // Ports taken by other programs are skipped; the pool's cursor moves on.
        for _ in 0..8 {
            let (lease, reserved) = match want {
                PortRequest::Even { reserve } => self.relay_ports.lease_even(reserve)?,
                _ => (self.relay_ports.lease()?, None),
            };
            if let Some(sock) = bind(lease.port) {
                return Some((lease, sock, reserved));
            }
        }
        None
    }

    fn allocate_success(
        &self,
        m: &Message,
        a: &Allocation,
        lifetime: Duration,
        client: SocketAddr,
    ) -> Reply {
        let mut attrs: Vec<Box<dyn Setter>> = vec![
            Box::new(RelayedAddress {
                ip: a.relayed.ip(),
                port: a.relayed.port(),
            }),
            Box::new(Lifetime(lifetime)),
            Box::new(XorMappedAddress {
                ip: client.ip(),
                port: client.port(),
            }),
        ];
        if let Some(t) = a.reservation {
            attrs.push(Box::new(::rtc::turn::proto::rsrvtoken::ReservationToken(
                t.to_be_bytes().to_vec(),
            )));
        }
        success(m, METHOD_ALLOCATE, attrs, &a.key, self.crypto.crypto())
    }

    /// Runs `f` for an authenticated request on an existing allocation owned by the sender.
    fn authed(
        &self,
        m: &mut Message,
        ft: &FiveTuple,
        f: fn(&Engine, &Message, &FiveTuple, &Allocation) -> Outcome,
    ) -> Reply {
        let (key, username, _) = match auth::authenticate(
            &self.settings.realm,
            &self.settings.minter,
            self.crypto.crypto(),
            m,
            ft.client,
        ) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let method = m.typ.method;
        let Some(alloc) = self.find(ft) else {
            return error(
                m,
                method,
                CODE_ALLOC_MISMATCH,
                "no allocation for this client",
                Some(&key),
            );
        };
        if alloc.username != username {
            return error(
                m,
                method,
                CODE_WRONG_CREDENTIALS,
                "not the allocation's credentials",
                Some(&key),
            );
        }
        match f(self, m, ft, &alloc) {
            Ok(attrs) => success(m, method, attrs, &key, self.crypto.crypto()),
            Err((code, reason)) => error(m, method, code, reason, Some(&key)),
        }
    }

    fn refresh(&self, m: &Message, ft: &FiveTuple, a: &Allocation) -> Outcome {
        let lifetime = requested_lifetime(m).min(MAX_LIFETIME);
        if lifetime.is_zero() {
            self.table().remove(ft);
        } else {
            a.state().expires = Instant::now() + lifetime;
        }
        Ok(vec![Box::new(Lifetime(lifetime))])
    }

    fn create_permission(&self, m: &Message, _: &FiveTuple, a: &Allocation) -> Outcome {
        let peers = peer_addresses(m);
        if peers.is_empty() {
            return Err((CODE_BAD_REQUEST, "XOR-PEER-ADDRESS is required"));
        }
        for p in &peers {
            self.check_peer(a, *p)?;
        }
        let until = Instant::now() + PERMISSION_LIFETIME;
        let mut s = a.state();
        for p in peers {
            s.permissions.insert(p.ip(), until);
        }
        Ok(vec![])
    }

    fn channel_bind(&self, m: &Message, _: &FiveTuple, a: &Allocation) -> Outcome {
        let mut number = ChannelNumber::default();
        if number.get_from(m).is_err() || !(0x4000..=0x4FFF).contains(&number.0) {
            return Err((CODE_BAD_REQUEST, "CHANNEL-NUMBER must be in 0x4000-0x4FFF"));
        }
        let Some(peer) = peer_addresses(m).into_iter().next() else {
            return Err((CODE_BAD_REQUEST, "XOR-PEER-ADDRESS is required"));
        };
        self.check_peer(a, peer)?;
        let now = Instant::now();
        let mut s = a.state();
        let taken = s
            .channels
            .iter()
            .any(|(n, (p, t))| *t > now && ((*n == number.0) != (*p == peer)));
        if taken {
            return Err((
                CODE_BAD_REQUEST,
                "channel or peer already bound differently",
            ));
        }
        s.channels.insert(number.0, (peer, now + CHANNEL_LIFETIME));
        s.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
        Ok(vec![])
    }

    fn check_peer(
        &self,
        a: &Allocation,
        peer: SocketAddr,
    ) -> Result<(), (ErrorCode, &'static str)> {
        if self.settings.relay_public.is_ipv4() != peer.is_ipv4() {
            return Err((
                CODE_PEER_ADDR_FAMILY_MISMATCH,
                "peer address family mismatch",
            ));
        }
        if !self.guard.allows(&a.room, peer) {
            return Err((
                CODE_FORBIDDEN,
                "relays only reach this server's sessions of the credential's room",
            ));
        }
        Ok(())
    }

    fn send_indication(&self, m: &Message, ft: &FiveTuple) {
        let Some(a) = self.find(ft) else { return };
        let (Some(peer), Ok(data)) = (peer_addresses(m).into_iter().next(), m.get(ATTR_DATA))
        else {
            return;
        };
        if a.permitted(peer.ip(), Instant::now()) && self.guard.allows(&a.room, peer) {
            let _ = a.relay.try_send_to(&data, self.guard.internal(peer));
        }
    }

    fn channel_data(&self, ft: &FiveTuple, buf: &[u8]) {
        let Some(a) = self.find(ft) else { return };
        let number = u16::from_be_bytes([buf[0], buf[1]]);
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        let Some(data) = buf.get(4..4 + len) else {
            return;
        };
        let now = Instant::now();
        if let Some(peer) = a.channel_to(number, now)
            && a.permitted(peer.ip(), now)
            && self.guard.allows(&a.room, peer)
        {
            let _ = a.relay.try_send_to(data, self.guard.internal(peer));
        }
    }
}
