//! A bare TURN client for the TURN tests, and the server configuration they share.

use std::net::SocketAddr;
use std::time::Duration;

use rtc::stun::attributes::*;
use rtc::stun::error_code::ErrorCodeAttribute;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::*;
use rtc::stun::textattrs::TextAttribute;
use rtc::turn::proto::reqtrans::RequestedTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{test_config, within};

pub const SECRET: &str = "test-secret";

pub fn turn_config(quota: usize) -> wisp::Config {
    let mut c = test_config();
    let relay = c.ice_ports.0 - 100;
    c.turn = Some(wisp::turn::TurnConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: None,
        host: "127.0.0.1".into(),
        secret: SECRET.as_bytes().to_vec(),
        relay_ports: (relay, relay + 99),
        relay_bind: "127.0.0.1".parse().unwrap(),
        relay_public: "127.0.0.1".parse().unwrap(),
        credential_ttl: Duration::from_secs(3600),
        quota,
    });
    c
}

/// A bare TURN client over UDP or TCP, enough to exercise the server's checks.
pub struct Raw {
    pub udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    server: SocketAddr,
}

impl Raw {
    pub async fn udp(server: SocketAddr) -> Raw {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Raw {
            udp: Some(s),
            tcp: None,
            server,
        }
    }

    pub async fn tcp(server: SocketAddr) -> Raw {
        Raw {
            udp: None,
            tcp: Some(TcpStream::connect(server).await.unwrap()),
            server,
        }
    }

    pub async fn call(&mut self, setters: &[Box<dyn Setter + '_>]) -> Message {
        let mut m = Message::new();
        m.build(setters).unwrap();
        let mut buf = vec![0u8; 2048];
        let n = within("a TURN response", async {
            if let Some(u) = &self.udp {
                u.send_to(&m.raw, self.server).await.unwrap();
                u.recv(&mut buf).await.unwrap()
            } else {
                let t = self.tcp.as_mut().unwrap();
                t.write_all(&m.raw).await.unwrap();
                t.read_exact(&mut buf[..20]).await.unwrap();
                let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                t.read_exact(&mut buf[20..20 + len]).await.unwrap();
                20 + len
            }
        })
        .await;
        let mut r = Message::new();
        r.unmarshal_binary(&buf[..n]).unwrap();
        assert_eq!(r.transaction_id, m.transaction_id);
        r
    }

    /// Allocate with `username`/`password`; returns the response (after the 401 round).
    pub async fn allocate(&mut self, username: &str, password: &str) -> Message {
        self.allocate_with(username, password, &[]).await
    }

    /// Allocate with extra attributes (type, value) in both rounds.
    pub async fn allocate_with(
        &mut self,
        username: &str,
        password: &str,
        extra: &[(AttrType, Vec<u8>)],
    ) -> Message {
        let attrs = || -> Vec<Box<dyn Setter>> {
            let mut v: Vec<Box<dyn Setter>> = vec![Box::new(RequestedTransport {
                protocol: rtc::turn::proto::PROTO_UDP,
            })];
            v.extend(
                extra
                    .iter()
                    .map(|(t, b)| Box::new(RawAttr(*t, b.clone())) as Box<dyn Setter>),
            );
            v
        };
        let mut first: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ];
        first.extend(attrs());
        let first = self.call(&first).await;
        assert_eq!(code(&first), Some(401));
        let nonce = TextAttribute::get_from_as(&first, ATTR_NONCE).unwrap().text;
        let realm = TextAttribute::get_from_as(&first, ATTR_REALM).unwrap().text;
        self.authed(METHOD_ALLOCATE, username, password, &realm, &nonce, attrs())
            .await
    }

    pub async fn authed(
        &mut self,
        method: Method,
        username: &str,
        password: &str,
        realm: &str,
        nonce: &str,
        extra: Vec<Box<dyn Setter>>,
    ) -> Message {
        let provider = rtc::crypto::default_provider().unwrap();
        let integrity = MessageIntegrity::new_long_term_integrity_with_provider(
            username.into(),
            realm.into(),
            password.into(),
            provider.crypto(),
        )
        .unwrap();
        let mut setters: Vec<Box<dyn Setter + '_>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
        ];
        setters.extend(extra);
        setters.push(Box::new(TextAttribute::new(ATTR_USERNAME, username.into())));
        setters.push(Box::new(TextAttribute::new(ATTR_REALM, realm.into())));
        setters.push(Box::new(TextAttribute::new(ATTR_NONCE, nonce.into())));
        setters.push(Box::new(integrity));
        self.call(&setters).await
    }
}

pub fn code(m: &Message) -> Option<u16> {
    let mut e = ErrorCodeAttribute::default();
    use rtc::stun::message::Getter;
    e.get_from(m).ok().map(|_| e.code.0)
}

pub fn nonce_realm(m: &Message) -> (String, String) {
    (
        TextAttribute::get_from_as(m, ATTR_NONCE)
            .map(|a| a.text)
            .unwrap_or_default(),
        TextAttribute::get_from_as(m, ATTR_REALM)
            .map(|a| a.text)
            .unwrap_or_default(),
    )
}

/// Any attribute, as raw bytes.
pub struct RawAttr(pub AttrType, pub Vec<u8>);

impl Setter for RawAttr {
    fn add_to(&self, m: &mut Message) -> Result<(), rtc::shared::error::Error> {
        m.add(self.0, &self.1);
        Ok(())
    }
}
