//! ICE candidate attribute parsing (RFC 8839 §5.1) and the remote-candidate filter.
//!
//! The filter is a security feature as much as a convenience: the server never sends ICE
//! connectivity checks to addresses outside the allowed networks, so nobody can use wisp to
//! probe a private network or a cloud metadata service. Candidates the server cannot use at
//! all (active TCP with the discard port 9, mDNS `.local` names) are dropped the same way.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The parts of a candidate attribute the server decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `udp` or `tcp`, lower-cased.
    pub transport: String,
    /// The connection address, if it is an IP literal.
    pub ip: Option<IpAddr>,
    /// The address as written (an mDNS name when `ip` is `None`).
    pub address: String,
    pub port: u16,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub typ: String,
}

impl Candidate {
    /// Parses `candidate:...` (with or without the `a=` prefix and the `candidate:` key).
    pub fn parse(line: &str) -> Result<Candidate, String> {
        let body = line.trim();
        let body = body.strip_prefix("a=").unwrap_or(body);
        let body = body.strip_prefix("candidate:").unwrap_or(body);
        let fields: Vec<&str> = body.split_ascii_whitespace().collect();
        if fields.len() < 8 {
            return Err(format!(
                "candidate has {} fields, needs at least 8",
                fields.len()
            ));
        }
        if fields[6] != "typ" {
            return Err("candidate lacks the 'typ' keyword".into());
        }
        fields[1]
            .parse::<u16>()
            .map_err(|_| "candidate component is not a number".to_string())?;
        fields[3]
            .parse::<u32>()
            .map_err(|_| "candidate priority is not a number".to_string())?;
        let port = fields[5]
            .parse::<u16>()
            .map_err(|_| "candidate port is not a number".to_string())?;
        let address = fields[4].to_string();
        let ip = IpAddr::from_str(address.trim_start_matches('[').trim_end_matches(']')).ok();
        Ok(Candidate {
            transport: fields[2].to_ascii_lowercase(),
            ip,
            address,
            port,
            typ: fields[7].to_ascii_lowercase(),
        })
    }
}

/// Which remote addresses the server will talk ICE to.
#[derive(Debug, Clone)]
pub struct CandidateFilter {
    /// Networks allowed; empty means "any address not denied".
    pub allow: Vec<IpNet>,
    /// Networks always refused, checked before `allow`.
    pub deny: Vec<IpNet>,
}

impl CandidateFilter {
    /// The production guard: refuse link-local, multicast, unspecified and cloud metadata
    /// addresses; allow every other address.
    pub fn default_deny() -> Vec<IpNet> {
        [
            "0.0.0.0/8",
            "169.254.0.0/16", // link-local, includes 169.254.169.254 metadata
            "224.0.0.0/4",
            "255.255.255.255/32",
            "100.100.100.200/32", // Alibaba cloud metadata
            "::/128",
            "fe80::/10",
            "ff00::/8",
            "fd00:ec2::254/128", // AWS IMDS over IPv6
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
    }

    /// A filter with the default deny list and the given allow list.
    pub fn new(allow: Vec<IpNet>) -> Self {
        CandidateFilter {
            allow,
            deny: Self::default_deny(),
        }
    }

    /// Whether the server may send ICE checks to `ip`.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }

    /// Whether a remote candidate is one the server can and may use. Only UDP candidates on
    /// IP literals qualify until ICE-TCP lands.
    pub fn usable(&self, c: &Candidate) -> bool {
        if c.transport != "udp" || c.port == 0 {
            return false;
        }
        match c.ip {
            Some(ip) => self.allows_ip(ip),
            None => false, // mDNS (.local) or other names: we do not resolve them
        }
    }

    /// Removes unusable `a=candidate` lines from an SDP, keeping everything else byte-for-byte.
    pub fn filter_sdp(&self, sdp: &str) -> String {
        let mut out = String::with_capacity(sdp.len());
        for line in sdp.split_inclusive('\n') {
            let t = line.trim_end();
            if let Some(rest) = t.strip_prefix("a=candidate:") {
                match Candidate::parse(rest) {
                    Ok(c) if self.usable(&c) => {}
                    _ => continue,
                }
            }
            out.push_str(line);
        }
        out
    }
}

/// A local candidate's transport, as the announcer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalTransport {
    Udp,
    TcpPassive,
    TcpActive,
}

/// What becomes of one local candidate line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announce {
    /// Announced as bound.
    AsIs,
    /// Not announced at all.
    Drop,
    /// Announced at these addresses instead (several: repeated with a lower priority each).
    As(Vec<(IpAddr, u16)>),
}

/// Rewrites the server's own candidate lines by what `announce` says of each `(ip, port)`.
/// This is how wisp announces `--public-ip` for sockets bound to `--ice-bind` (NAT 1:1), and
/// the shared ports in single-port mode and for ICE-TCP: webrtc-rs 0.21 only ever announces
/// the address it bound.
pub fn rewrite_local(
    sdp: &str,
    announce: &dyn Fn(IpAddr, u16, LocalTransport) -> Announce,
) -> String {
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.split_inclusive('\n') {
        let t = line.trim_end();
        let eol = &line[t.len()..];
        let Some(body) = t.strip_prefix("a=candidate:") else {
            out.push_str(line);
            continue;
        };
        let fields: Vec<&str> = body.split(' ').collect();
        let parsed = (fields.len() >= 8)
            .then(|| {
                let ip = IpAddr::from_str(fields[4]).ok()?;
                let port = fields[5].parse::<u16>().ok()?;
                let prio = fields[3].parse::<u32>().ok()?;
                Some((ip, port, prio))
            })
            .flatten();
        let Some((ip, port, prio)) = parsed else {
            out.push_str(line);
            continue;
        };
        let transport = if !fields[2].eq_ignore_ascii_case("tcp") {
            LocalTransport::Udp
        } else if fields.windows(2).any(|w| w == ["tcptype", "active"]) {
            LocalTransport::TcpActive
        } else {
            LocalTransport::TcpPassive
        };
        let to = match announce(ip, port, transport) {
            Announce::AsIs => {
                out.push_str(line);
                continue;
            }
            Announce::Drop => continue,
            Announce::As(to) => to,
        };
        for (i, (nip, nport)) in to.iter().enumerate() {
            let mut f = fields.clone();
            let p = prio.saturating_sub(i as u32).to_string();
            let a = nip.to_string();
            let n = nport.to_string();
            f[3] = &p;
            f[4] = &a;
            f[5] = &n;
            out.push_str("a=candidate:");
            out.push_str(&f.join(" "));
            out.push_str(eol);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_announced_addresses_and_keeps_the_rest() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\na=candidate:2 1 udp 100 192.0.2.9 7 typ host\r\na=candidate:3 1 tcp 90 10.0.0.5 9 typ host tcptype active\r\na=candidate:4 1 tcp 80 10.0.0.5 4000 typ host tcptype passive\r\na=end-of-candidates\r\n";
        let out = rewrite_local(sdp, &|ip, port, t| match t {
            LocalTransport::TcpActive => Announce::Drop,
            LocalTransport::TcpPassive => Announce::As(vec![(ip, 443)]),
            LocalTransport::Udp if ip.to_string() == "10.0.0.5" => Announce::As(vec![
                ("203.0.113.1".parse().unwrap(), port),
                ("203.0.113.2".parse().unwrap(), 3478),
            ]),
            LocalTransport::Udp => Announce::AsIs,
        });
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.1 50000 typ host\r\na=candidate:1 1 udp 2130706430 203.0.113.2 3478 typ host\r\na=candidate:2 1 udp 100 192.0.2.9 7 typ host\r\na=candidate:4 1 tcp 80 10.0.0.5 443 typ host tcptype passive\r\na=end-of-candidates\r\n"
        );
    }

    fn f() -> CandidateFilter {
        CandidateFilter::new(vec![])
    }

    #[test]
    fn parses_a_host_candidate() {
        let c = Candidate::parse("a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host").unwrap();
        assert_eq!(c.transport, "udp");
        assert_eq!(c.port, 5000);
        assert_eq!(c.typ, "host");
        assert!(f().usable(&c));
    }

    #[test]
    fn drops_what_cannot_be_used() {
        for line in [
            "candidate:1 1 TCP 2130706431 192.0.2.1 9 typ host tcptype active",
            "candidate:1 1 udp 2130706431 fe80::1 5000 typ host",
            "candidate:1 1 udp 2130706431 1f2e3d4c-1234.local 5000 typ host",
            "candidate:1 1 udp 2130706431 169.254.169.254 5000 typ host",
            "candidate:1 1 udp 2130706431 224.0.0.1 5000 typ host",
            "candidate:1 1 udp 2130706431 0.0.0.0 5000 typ host",
        ] {
            let c = Candidate::parse(line).unwrap();
            assert!(!f().usable(&c), "{line}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for line in [
            "",
            "candidate:1 1 udp",
            "candidate:1 x udp 1 1.2.3.4 5 typ host",
            "candidate:1 1 udp 1 1.2.3.4 99999 typ host",
            "candidate:1 1 udp 1 1.2.3.4 5 type host",
        ] {
            assert!(Candidate::parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn allow_list_limits_networks() {
        let filt = CandidateFilter::new(vec!["198.18.0.0/24".parse().unwrap()]);
        assert!(filt.allows_ip("198.18.0.2".parse().unwrap()));
        assert!(!filt.allows_ip("10.0.0.1".parse().unwrap()));
        assert!(filt.allows_ip("::ffff:198.18.0.9".parse().unwrap()));
    }

    #[test]
    fn filters_sdp_lines() {
        let sdp = "v=0\r\na=candidate:1 1 udp 1 10.0.0.1 5 typ host\r\na=candidate:2 1 udp 1 x.local 5 typ host\r\na=mid:0\r\n";
        let out = f().filter_sdp(sdp);
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 1 10.0.0.1 5 typ host\r\na=mid:0\r\n"
        );
    }
}
