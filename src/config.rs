//! Typed configuration from flags, `WISP_*` environment variables and a TOML file
//! (`--config`), in that order of precedence, validated once at start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::rtc::RtcSettings;
use crate::signal::CandidateFilter;

/// Command-line flags; every one can also come from the environment or the TOML file
/// (same names, kebab-case keys).
#[derive(Debug, Default, Clone, clap::Parser, Deserialize)]
#[command(
    name = "wisp",
    version,
    about = "WHIP/WHEP broadcast and conference server"
)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Args {
    /// TOML file with any of these settings (flags and environment win).
    #[arg(long, env = "WISP_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "WISP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on every WHIP/WHEP request.
    #[arg(long, env = "WISP_TOKEN")]
    pub token: Option<String>,
    /// UDP port range for ICE, one port per session, as LO-HI [default: 50000-50199].
    #[arg(long, env = "WISP_ICE_PORTS")]
    pub ice_ports: Option<String>,
    /// Single-port mode: every session shares this UDP port (overrides --ice-ports).
    #[arg(long, env = "WISP_ICE_UDP_PORT")]
    pub ice_udp_port: Option<u16>,
    /// ICE-lite (RFC 8445 §2.5): answer connectivity checks, never send them. Only for
    /// servers on public addresses (clients do all the checking; every browser can).
    #[arg(long, env = "WISP_ICE_LITE")]
    #[serde(default)]
    pub ice_lite: bool,
    /// Address announced in host candidates; repeatable [default: 127.0.0.1].
    #[arg(long = "public-ip", env = "WISP_PUBLIC_IP", value_delimiter = ',')]
    pub public_ip: Option<Vec<IpAddr>>,
    /// Bind ICE sockets here and announce --public-ip instead (1:1 NAT).
    #[arg(long, env = "WISP_ICE_BIND")]
    pub ice_bind: Option<IpAddr>,
    /// Remote networks ICE may talk to, as CIDRs [default: any, minus link-local, multicast,
    /// unspecified and cloud metadata addresses, which are always refused].
    #[arg(long, env = "WISP_ALLOW_REMOTE", value_delimiter = ',')]
    pub allow_remote: Option<Vec<String>>,
    /// Remote networks ICE must never reach, as CIDRs, on top of the built-in guard
    /// (link-local, multicast, unspecified, cloud metadata).
    #[arg(long, env = "WISP_DENY_REMOTE", value_delimiter = ',')]
    pub deny_remote: Option<Vec<String>>,
    /// Value of Access-Control-Allow-Origin [default: *].
    #[arg(long, env = "WISP_CORS_ORIGIN")]
    pub cors_origin: Option<String>,
    /// Most concurrent sessions before POSTs get 503 [default: 500].
    #[arg(long, env = "WISP_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,
    /// Serve `GET /metrics` (no token) on this address too, for a scraper.
    #[arg(long, env = "WISP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds sessions get to end after SIGTERM before wisp ends them and exits [default: 30].
    #[arg(long, env = "WISP_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (reloaded on SIGHUP).
    #[arg(long, env = "WISP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "WISP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate generated at start (development, e.g. phones on a LAN).
    #[arg(long, env = "WISP_TLS_SELF_SIGNED")]
    #[serde(default)]
    pub tls_self_signed: bool,
    /// DTLS certificate (PEM; ECDSA P-256 or RSA) so the fingerprint is stable across restarts.
    #[arg(long, env = "WISP_DTLS_CERT")]
    pub dtls_cert: Option<PathBuf>,
    /// The PKCS#8 PEM private key for --dtls-cert.
    #[arg(long, env = "WISP_DTLS_KEY")]
    pub dtls_key: Option<PathBuf>,
    /// Run the embedded TURN/STUN server on this address, UDP and TCP (e.g. 0.0.0.0:3478).
    #[arg(long, env = "WISP_TURN_LISTEN")]
    pub turn_listen: Option<SocketAddr>,
    /// Also serve TURN over TLS (`turns:`) here, with the HTTPS certificate (e.g. 0.0.0.0:5349).
    #[arg(long, env = "WISP_TURN_TLS_LISTEN")]
    pub turn_tls_listen: Option<SocketAddr>,
    /// Shared secret for TURN REST credentials [default: random at each start].
    #[arg(long, env = "WISP_TURN_SECRET")]
    pub turn_secret: Option<String>,
    /// UDP port range for TURN relay allocations, as LO-HI [default: 49152-49407].
    #[arg(long, env = "WISP_TURN_RELAY_PORTS")]
    pub turn_relay_ports: Option<String>,
    /// Host name or IP put in the advertised turn: URLs [default: the first --public-ip].
    #[arg(long, env = "WISP_TURN_HOST")]
    pub turn_host: Option<String>,
    /// How long minted TURN credentials stay valid, in seconds [default: 86400].
    #[arg(long, env = "WISP_TURN_CREDENTIAL_TTL")]
    pub turn_credential_ttl: Option<u64>,
    /// Most simultaneous TURN allocations per credential [default: 10].
    #[arg(long, env = "WISP_TURN_QUOTA")]
    pub turn_quota: Option<usize>,
    /// VAD: a packet is active at or above this loudness, in -dBov (0 loudest) [default: 30].
    #[arg(long, env = "WISP_VAD_ACTIVE_LEVEL")]
    pub vad_active_level: Option<u8>,
    /// VAD: fraction of active packets that makes an interval active [default: 0.4].
    #[arg(long, env = "WISP_VAD_MIN_ACTIVE")]
    pub vad_min_active: Option<f32>,
    /// VAD: interval length in milliseconds [default: 500].
    #[arg(long, env = "WISP_VAD_INTERVAL_MS")]
    pub vad_interval_ms: Option<u64>,
    /// VAD: inactive intervals before speaking turns off [default: 2].
    #[arg(long, env = "WISP_VAD_OFF_AFTER")]
    pub vad_off_after: Option<u32>,
}

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
    pub token: Option<String>,
    pub ice_ports: (u16, u16),
    /// Single-port mode (`--ice-udp-port`).
    pub ice_udp_port: Option<u16>,
    pub ice_lite: bool,
    pub public_ips: Vec<IpAddr>,
    pub ice_bind: Option<IpAddr>,
    pub allow_remote: Vec<IpNet>,
    /// Extra networks refused in addition to the built-in guard.
    pub deny_remote: Vec<IpNet>,
    pub cors_origin: String,
    pub max_sessions: usize,
    /// The extra `/metrics` listener.
    pub metrics_listen: Option<SocketAddr>,
    /// How long a SIGTERM drain waits for sessions to end.
    pub drain_timeout: Duration,
    pub tls: Tls,
    /// (certificate, key) PEM files for DTLS; a certificate is generated at start otherwise.
    pub dtls: Option<(PathBuf, PathBuf)>,
    pub vad: crate::media::vad::VadConfig,
    /// The embedded TURN server, when `--turn-listen` is given.
    pub turn: Option<crate::turn::TurnConfig>,
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
        Ok(Config {
            turn,
            vad,
            tls,
            dtls,
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            token,
            ice_ports: match ports {
                Some(p) => parse_range(&p)?,
                None => (50000, 50199),
            },
            ice_udp_port: cli.ice_udp_port.or(file.ice_udp_port).filter(|p| *p != 0),
            ice_lite: cli.ice_lite || file.ice_lite,
            public_ips,
            ice_bind,
            allow_remote: parse_nets(&allow)?,
            deny_remote: parse_nets(&deny)?,
            cors_origin: cli
                .cors_origin
                .or(file.cors_origin)
                .unwrap_or_else(|| "*".into()),
            max_sessions: cli.max_sessions.or(file.max_sessions).unwrap_or(500).max(1),
            metrics_listen: cli.metrics_listen.or(file.metrics_listen),
            drain_timeout: Duration::from_secs(
                cli.drain_timeout.or(file.drain_timeout).unwrap_or(30),
            ),
        })
    }

    pub fn rtc_settings(&self) -> RtcSettings {
        RtcSettings {
            public_ips: self.public_ips.clone(),
            bind_ip: self.ice_bind,
            ports: self.ice_ports,
            shared_port: self.ice_udp_port,
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
        assert_eq!(c.token.as_deref(), Some("t"));
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
