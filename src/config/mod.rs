//! Typed configuration from flags, `WISP_*` environment variables and a TOML file
//! (`--config`), in that order of precedence, validated once at start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::rtc::RtcSettings;
use crate::signal::CandidateFilter;

mod args;
pub use args::{Args, Command, TokenArgs};

/// How HTTPS is set up, if at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Off,
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Who may do what: the static token and the JWT keys (see `auth`).
    pub auth: crate::auth::AuthConfig,
    pub ice_ports: (u16, u16),
    /// Single-port mode (`--ice-udp-port`).
    pub ice_udp_port: Option<u16>,
    /// ICE-TCP on one shared port (`--ice-tcp-port`).
    pub ice_tcp_port: Option<u16>,
    pub ice_lite: bool,
    pub public_ips: Vec<IpAddr>,
    pub ice_bind: Option<IpAddr>,
    pub allow_remote: Vec<IpNet>,
    /// Extra networks refused in addition to the built-in guard.
    pub deny_remote: Vec<IpNet>,
    pub cors_origin: String,
    pub max_sessions: usize,
    /// `--max-sessions-per-room`.
    pub max_sessions_per_room: usize,
    /// `--max-event-streams-per-room`.
    pub max_event_streams_per_room: usize,
    /// The extra `/metrics` listener.
    pub metrics_listen: Option<SocketAddr>,
    /// How long a SIGTERM drain waits for sessions to end.
    pub drain_timeout: Duration,
    /// How long a publisher whose transport died keeps its participant.
    pub reconnect_grace: Duration,
    /// Connections, header time and request rates per client.
    pub http_limits: crate::http::limits::HttpLimits,
    /// `--webhook` and its signing secret.
    pub webhook: Option<(String, String)>,
    /// `--auth-webhook`.
    pub auth_webhook: Option<String>,
    pub auth_webhook_timeout: Duration,
    pub tls: Tls,
    /// (certificate, key) PEM files for DTLS; a certificate is generated at start otherwise.
    pub dtls: Option<(PathBuf, PathBuf)>,
    pub vad: crate::media::vad::VadConfig,
    /// The embedded TURN server, when `--turn-listen` is given.
    pub turn: Option<crate::turn::TurnConfig>,
    /// Cluster mode (`--cluster-redis`, `--node-url`, `--node-id`).
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Recording (`--record-dir`, `--record-rooms`).
    pub record: Option<crate::record::RecordConfig>,
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("port range '{s}' is not LO-HI"))?;
    let lo: u16 = lo.trim().parse().map_err(|_| format!("bad port '{lo}'"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("bad port '{hi}'"))?;
    if lo == 0 || hi < lo {
        return Err(format!("port range '{s}' must be 1..=65535 with LO <= HI"));
    }
    Ok((lo, hi))
}

/// `--cluster-redis` with the `--node-url` it needs and `--node-id` (random by default).
fn cluster(
    redis: Option<String>,
    node_url: Option<String>,
    node_id: Option<String>,
) -> Result<Option<crate::cluster::ClusterConfig>, String> {
    let Some(redis) = redis.filter(|r| !r.is_empty()) else {
        if node_url.is_some() {
            return Err("--node-url is for cluster mode: it needs --cluster-redis".into());
        }
        return Ok(None);
    };
    if !redis.starts_with("redis://") {
        return Err(format!(
            "--cluster-redis '{redis}' is not a redis://HOST:PORT[/DB] URL"
        ));
    }
    let node_url = node_url
        .ok_or("--cluster-redis needs --node-url (how clients and other nodes reach this node)")?
        .trim_end_matches('/')
        .to_owned();
    let node_id = match node_id.filter(|i| !i.is_empty()) {
        Some(id)
            if id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            id
        }
        Some(id) => {
            return Err(format!(
                "--node-id '{id}' must be 1-64 letters, digits, '-', '_' or '.'"
            ));
        }
        None => uuid::Uuid::new_v4().as_simple().to_string()[..12].to_owned(),
    };
    Ok(Some(crate::cluster::ClusterConfig {
        redis,
        node_url,
        node_id,
    }))
}

fn parse_nets(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("'{s}' is not a CIDR"))
        })
        .collect()
}

impl Config {
    /// Merges flags/env over the TOML file over defaults, and validates.
    pub fn from_args(cli: Args) -> Result<Config, String> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<Args>(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Args::default(),
        };
        let ports = cli.ice_ports.or(file.ice_ports);
        let allow = cli.allow_remote.or(file.allow_remote).unwrap_or_default();
        let deny = cli.deny_remote.or(file.deny_remote).unwrap_or_default();
        let token = cli.token.or(file.token).filter(|t| !t.is_empty());
        let auth = crate::auth::AuthConfig {
            token,
            jwt: crate::auth::JwtConfig {
                secret: cli.jwt_secret.or(file.jwt_secret).filter(|s| !s.is_empty()),
                public_key: cli.jwt_public_key.or(file.jwt_public_key),
                jwks: cli.jwt_jwks.or(file.jwt_jwks),
                issuer: cli.jwt_issuer.or(file.jwt_issuer).filter(|s| !s.is_empty()),
                audience: cli
                    .jwt_audience
                    .or(file.jwt_audience)
                    .filter(|s| !s.is_empty()),
            },
        };
        let url = |u: Option<String>, what: &str| -> Result<Option<String>, String> {
            match u.filter(|u| !u.is_empty()) {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u)),
                Some(u) => Err(format!("--{what} '{u}' is not an http(s) URL")),
                None => Ok(None),
            }
        };
        let webhook = match (
            url(cli.webhook.or(file.webhook), "webhook")?,
            cli.webhook_secret
                .or(file.webhook_secret)
                .filter(|s| !s.is_empty()),
        ) {
            (Some(u), Some(s)) => Some((u, s)),
            (Some(_), None) => {
                return Err("--webhook needs --webhook-secret (the signing key)".into());
            }
            (None, _) => None,
        };
        let auth_webhook = url(cli.auth_webhook.or(file.auth_webhook), "auth-webhook")?;
        let cluster = cluster(
            cli.cluster_redis.or(file.cluster_redis),
            url(cli.node_url.or(file.node_url), "node-url")?,
            cli.node_id.or(file.node_id),
        )?;
        let auth_webhook_timeout = cli
            .auth_webhook_timeout
            .or(file.auth_webhook_timeout)
            .unwrap_or(2.0);
        if !(auth_webhook_timeout > 0.0 && auth_webhook_timeout <= 60.0) {
            return Err("--auth-webhook-timeout must be more than 0 and at most 60 seconds".into());
        }
        let d = crate::http::limits::HttpLimits::default();
        let http_limits = crate::http::limits::HttpLimits {
            header_timeout: cli
                .http_header_timeout
                .or(file.http_header_timeout)
                .map_or(d.header_timeout, |s| Duration::from_secs(s.max(1))),
            idle_timeout: cli
                .http_idle_timeout
                .or(file.http_idle_timeout)
                .map_or(d.idle_timeout, |s| Duration::from_secs(s.max(1))),
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections)
                .max(1),
            max_connections_per_ip: cli
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(d.max_connections_per_ip)
                .max(1),
            request_rate: cli
                .request_rate
                .or(file.request_rate)
                .unwrap_or(d.request_rate),
            request_burst: cli
                .request_burst
                .or(file.request_burst)
                .unwrap_or(d.request_burst),
        };
        if !(http_limits.request_rate >= 0.0 && http_limits.request_burst >= 1.0) {
            return Err("--request-rate must be at least 0 and --request-burst at least 1".into());
        }
        let max_sessions = cli.max_sessions.or(file.max_sessions).unwrap_or(500).max(1);
        // Read the keys now, so a bad one stops the start with its reason.
        crate::auth::Auth::new(&auth)?;
        let public_ips = cli
            .public_ip
            .or(file.public_ip)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let pair = |c: Option<PathBuf>, k: Option<PathBuf>, what: &str| match (c, k) {
            (Some(c), Some(k)) => Ok(Some((c, k))),
            (None, None) => Ok(None),
            _ => Err(format!("--{what}-cert and --{what}-key go together")),
        };
        let tls = match (
            pair(
                cli.tls_cert.or(file.tls_cert),
                cli.tls_key.or(file.tls_key),
                "tls",
            )?,
            cli.tls_self_signed || file.tls_self_signed,
        ) {
            (Some(_), true) => {
                return Err("--tls-cert and --tls-self-signed exclude each other".into());
            }
            (Some((cert, key)), false) => Tls::Files { cert, key },
            (None, true) => Tls::SelfSigned,
            (None, false) => Tls::Off,
        };
        let dtls = pair(
            cli.dtls_cert.or(file.dtls_cert),
            cli.dtls_key.or(file.dtls_key),
            "dtls",
        )?;
        let d = crate::media::vad::VadConfig::default();
        let vad = crate::media::vad::VadConfig {
            active_level: cli
                .vad_active_level
                .or(file.vad_active_level)
                .unwrap_or(d.active_level),
            min_active_fraction: cli
                .vad_min_active
                .or(file.vad_min_active)
                .unwrap_or(d.min_active_fraction),
            interval: cli
                .vad_interval_ms
                .or(file.vad_interval_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.interval),
            on_after: d.on_after,
            off_after: cli
                .vad_off_after
                .or(file.vad_off_after)
                .unwrap_or(d.off_after),
        };
        if vad.active_level > 127
            || !(0.0..=1.0).contains(&vad.min_active_fraction)
            || vad.interval < Duration::from_millis(100)
            || vad.off_after == 0
        {
            return Err(
                "VAD settings: level 0..=127, fraction 0..=1, interval >= 100 ms, off-after >= 1"
                    .into(),
            );
        }
        let ice_bind = cli.ice_bind.or(file.ice_bind);
        let turn = match cli.turn_listen.or(file.turn_listen) {
            None => None,
            Some(listen) => {
                let relay_public = public_ips[0];
                let secret = match cli.turn_secret.or(file.turn_secret) {
                    Some(s) if !s.is_empty() => s.into_bytes(),
                    _ => rand::random::<[u8; 32]>().to_vec(),
                };
                Some(crate::turn::TurnConfig {
                    listen,
                    tls_listen: cli.turn_tls_listen.or(file.turn_tls_listen),
                    host: cli
                        .turn_host
                        .or(file.turn_host)
                        .unwrap_or_else(|| relay_public.to_string()),
                    secret,
                    relay_ports: match cli.turn_relay_ports.or(file.turn_relay_ports) {
                        Some(p) => parse_range(&p)?,
                        None => (49152, 49407),
                    },
                    relay_bind: ice_bind.unwrap_or(relay_public),
                    relay_public,
                    credential_ttl: Duration::from_secs(
                        cli.turn_credential_ttl
                            .or(file.turn_credential_ttl)
                            .unwrap_or(86400)
                            .max(60),
                    ),
                    quota: cli.turn_quota.or(file.turn_quota).unwrap_or(10).max(1),
                })
            }
        };
        let record = crate::record::RecordConfig::new(
            cli.record_dir.or(file.record_dir),
            cli.record_rooms.or(file.record_rooms),
        )?;
        Ok(Config {
            record,
            turn,
            cluster,
            vad,
            tls,
            dtls,
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            auth,
            ice_ports: match ports {
                Some(p) => parse_range(&p)?,
                None => (50000, 50199),
            },
            ice_udp_port: cli.ice_udp_port.or(file.ice_udp_port).filter(|p| *p != 0),
            ice_tcp_port: cli.ice_tcp_port.or(file.ice_tcp_port).filter(|p| *p != 0),
            ice_lite: cli.ice_lite || file.ice_lite,
            public_ips,
            ice_bind,
            allow_remote: parse_nets(&allow)?,
            deny_remote: parse_nets(&deny)?,
            cors_origin: cli
                .cors_origin
                .or(file.cors_origin)
                .unwrap_or_else(|| "*".into()),
            max_sessions,
            max_sessions_per_room: cli
                .max_sessions_per_room
                .or(file.max_sessions_per_room)
                .unwrap_or(max_sessions.div_ceil(2))
                .max(1),
            max_event_streams_per_room: cli
                .max_event_streams_per_room
                .or(file.max_event_streams_per_room)
                .unwrap_or(1000)
                .max(1),
            metrics_listen: cli.metrics_listen.or(file.metrics_listen),
            drain_timeout: Duration::from_secs(
                cli.drain_timeout.or(file.drain_timeout).unwrap_or(30),
            ),
            http_limits,
            webhook,
            auth_webhook,
            auth_webhook_timeout: Duration::from_secs_f64(auth_webhook_timeout),
            reconnect_grace: cli
                .reconnect_grace
                .or(file.reconnect_grace)
                .map_or(crate::sfu::DEFAULT_GRACE, Duration::from_secs),
        })
    }

    pub fn rtc_settings(&self) -> RtcSettings {
        RtcSettings {
            public_ips: self.public_ips.clone(),
            bind_ip: self.ice_bind,
            ports: self.ice_ports,
            shared_port: self.ice_udp_port,
            tcp_port: self.ice_tcp_port,
            ice_lite: self.ice_lite,
            filter: {
                let mut f = CandidateFilter::new(self.allow_remote.clone());
                f.deny.extend(self.deny_remote.iter().copied());
                f
            },
            dtls: self.dtls.clone(),
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(25),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_flags() {
        let c = Config::from_args(Args::parse_from(["wisp"])).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.ice_ports, (50000, 50199));
        assert_eq!(c.public_ips, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let c = Config::from_args(Args::parse_from([
            "wisp",
            "--ice-ports",
            "40000-40010",
            "--public-ip",
            "198.18.0.1",
            "--public-ip",
            "::1",
            "--allow-remote",
            "198.18.0.0/24,127.0.0.1",
            "--token",
            "t",
        ]))
        .unwrap();
        assert_eq!(c.ice_ports, (40000, 40010));
        assert_eq!(c.public_ips.len(), 2);
        assert_eq!(c.allow_remote.len(), 2);
        let d = Config::from_args(Args::parse_from([
            "wisp",
            "--deny-remote",
            "10.0.0.0/8,192.168.1.7",
        ]))
        .unwrap();
        let f = d.rtc_settings().filter;
        assert!(!f.allows_ip("10.1.2.3".parse().unwrap()));
        assert!(!f.allows_ip("192.168.1.7".parse().unwrap()));
        assert!(f.allows_ip("192.168.1.8".parse().unwrap()));
        assert!(
            !f.allows_ip("169.254.169.254".parse().unwrap()),
            "the built-in guard stays"
        );
        assert_eq!(c.auth.token.as_deref(), Some("t"));
    }

    #[test]
    fn vad_thresholds_are_config() {
        let c = Config::from_args(Args::parse_from([
            "wisp",
            "--vad-active-level",
            "25",
            "--vad-interval-ms",
            "300",
        ]))
        .unwrap();
        assert_eq!(c.vad.active_level, 25);
        assert_eq!(c.vad.interval, Duration::from_millis(300));
        assert!(Config::from_args(Args::parse_from(["wisp", "--vad-min-active", "2"])).is_err());
    }

    #[test]
    fn toml_file_under_flags() {
        let dir = std::env::temp_dir().join(format!("wisp-cfg-{}", std::process::id()));
        std::fs::write(
            &dir,
            "listen = \"127.0.0.1:9999\"\nice-ports = \"41000-41001\"\n",
        )
        .unwrap();
        let c = Config::from_args(Args::parse_from([
            "wisp",
            "--config",
            dir.to_str().unwrap(),
            "--ice-ports",
            "42000-42001",
        ]))
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.ice_ports, (42000, 42001));
        std::fs::write(&dir, "bogus = 1\n").unwrap();
        assert!(
            Config::from_args(Args::parse_from([
                "wisp",
                "--config",
                dir.to_str().unwrap()
            ]))
            .is_err()
        );
        let _ = std::fs::remove_file(&dir);
    }
}
