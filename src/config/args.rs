//! The command line: every flag of the server (each also a `WISP_*` environment variable and a
//! TOML key), and the subcommands of the same binary.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

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
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
    /// TOML file with any of these settings (flags and environment win).
    #[arg(long, env = "WISP_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "WISP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// A static bearer token that is an admin of every room; with it (or a JWT key) every
    /// request needs a credential.
    #[arg(long, env = "WISP_TOKEN")]
    pub token: Option<String>,
    /// Accept JWTs signed with this shared secret (HS256, at least 16 characters).
    #[arg(long, env = "WISP_JWT_SECRET")]
    pub jwt_secret: Option<String>,
    /// Accept JWTs signed by this PEM public key's private half (EC P-256: ES256, RSA: RS256,
    /// or Ed25519).
    #[arg(long, env = "WISP_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// Accept JWTs signed by a key in this JSON Web Key Set file (chosen by `kid`).
    #[arg(long, env = "WISP_JWT_JWKS")]
    pub jwt_jwks: Option<PathBuf>,
    /// Every JWT must carry this `iss`.
    #[arg(long, env = "WISP_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Every JWT must carry this `aud`.
    #[arg(long, env = "WISP_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// UDP port range for ICE, one port per session, as LO-HI [default: 50000-50199].
    #[arg(long, env = "WISP_ICE_PORTS")]
    pub ice_ports: Option<String>,
    /// Single-port mode: every session shares this UDP port (overrides --ice-ports).
    #[arg(long, env = "WISP_ICE_UDP_PORT")]
    pub ice_udp_port: Option<u16>,
    /// ICE-TCP (RFC 6544): also accept every session's ICE over TCP on this one port (passive
    /// candidates), for clients whose networks block UDP. Off by default.
    #[arg(long, env = "WISP_ICE_TCP_PORT")]
    pub ice_tcp_port: Option<u16>,
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
    /// Most sessions (publishers and viewers) in one room before its POSTs get 503
    /// [default: half of --max-sessions].
    #[arg(long, env = "WISP_MAX_SESSIONS_PER_ROOM")]
    pub max_sessions_per_room: Option<usize>,
    /// Most open event streams (`GET /rooms/{room}/events`) of one room before 503
    /// [default: 1000].
    #[arg(long, env = "WISP_MAX_EVENT_STREAMS_PER_ROOM")]
    pub max_event_streams_per_room: Option<usize>,
    /// Serve `GET /metrics` (no token) on this address too, for a scraper.
    #[arg(long, env = "WISP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a client has to send a request's headers, from connecting or from its previous
    /// request [default: 10].
    #[arg(long, env = "WISP_HTTP_HEADER_TIMEOUT")]
    pub http_header_timeout: Option<u64>,
    /// Seconds an HTTP connection may pass with no byte read or written before it is closed
    /// (event streams send a comment line well within it) [default: 60].
    #[arg(long, env = "WISP_HTTP_IDLE_TIMEOUT")]
    pub http_idle_timeout: Option<u64>,
    /// Most open HTTP connections [default: 4096].
    #[arg(long, env = "WISP_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most open HTTP connections from one client address [default: 64].
    #[arg(long, env = "WISP_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// POSTs and PATCHes per second from one client address before 429 [default: 50].
    #[arg(long, env = "WISP_REQUEST_RATE")]
    pub request_rate: Option<f64>,
    /// How many POSTs and PATCHes one address may send at once [default: 100].
    #[arg(long, env = "WISP_REQUEST_BURST")]
    pub request_burst: Option<f64>,
    /// POST a signed JSON event here when participants join or leave, start or stop
    /// publishing, and when rooms close (needs --webhook-secret).
    #[arg(long, env = "WISP_WEBHOOK")]
    pub webhook: Option<String>,
    /// The HMAC-SHA256 key of the webhook's X-Wisp-Signature.
    #[arg(long, env = "WISP_WEBHOOK_SECRET")]
    pub webhook_secret: Option<String>,
    /// Ask this URL before admitting each WHIP/WHEP POST; a non-2xx answer refuses it (403).
    #[arg(long, env = "WISP_AUTH_WEBHOOK")]
    pub auth_webhook: Option<String>,
    /// Seconds the admission webhook has to answer before the POST gets 503 [default: 2].
    #[arg(long, env = "WISP_AUTH_WEBHOOK_TIMEOUT")]
    pub auth_webhook_timeout: Option<f64>,
    /// Seconds a publisher whose connection dropped keeps its place (viewers' slots, the
    /// roster) for it to come back, 0 to end it at once [default: 10].
    #[arg(long, env = "WISP_RECONNECT_GRACE")]
    pub reconnect_grace: Option<u64>,
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
    /// Cluster mode: nodes sharing this Redis (`redis://HOST:PORT[/DB]`) answer as one
    /// service (rooms placed on the least-loaded node, other nodes redirect to the owner).
    /// Needs --node-url.
    #[arg(long, env = "WISP_CLUSTER_REDIS")]
    pub cluster_redis: Option<String>,
    /// Cluster mode: how clients and other nodes reach this node's HTTP (e.g.
    /// https://node-a.example.com:8443).
    #[arg(long, env = "WISP_NODE_URL")]
    pub node_url: Option<String>,
    /// Cluster mode: this node's id in the directory [default: random at each start].
    #[arg(long, env = "WISP_NODE_ID")]
    pub node_id: Option<String>,
    /// Record every publisher to a file under this directory (`<room>/<name>-<UTC start>.mp4`,
    /// or `.webm` for VP8), listed at `/api/rooms/{room}/recordings`, served at `/recordings/`.
    #[arg(long, env = "WISP_RECORD_DIR")]
    pub record_dir: Option<PathBuf>,
    /// Record only these rooms (comma-separated names) [default: every room].
    #[arg(long, env = "WISP_RECORD_ROOMS", value_delimiter = ',')]
    pub record_rooms: Option<Vec<String>>,
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

/// What the binary does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print a JWT for a room and a role, signed with this configuration's --jwt-secret (or
    /// --key), with its --jwt-issuer and --jwt-audience.
    Token(TokenArgs),
}

/// `wisp token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The room the token is for, or `*` for every room.
    #[arg(long)]
    pub room: String,
    /// What it lets its holder do.
    #[arg(long, value_enum)]
    pub role: crate::auth::Role,
    /// How long it is valid: 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// The participant's display name (wins over `?name=`).
    #[arg(long)]
    pub name: Option<String>,
    /// Sign with this PEM private key (ES256, RS256 or EdDSA by its type) instead of the secret.
    #[arg(long)]
    pub key: Option<PathBuf>,
}
