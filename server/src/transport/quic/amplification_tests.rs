//! RFC 9000 §8.1: before a client's address is validated, a server sends it
//! at most three times the bytes it received from it.
//!
//! Sans-IO, on a virtual clock: a real quinn-proto client makes one Initial;
//! a quinn-proto server endpoint built with our [`server_config`] takes it,
//! and is then driven through its timers (its loss probes) for 30 s without
//! ever hearing from the client again. Every byte it sends is counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{ClientConfig, Connection, DatagramEvent, Endpoint, EndpointConfig};

use super::{ALPN, server_config, should_retry};
use crate::config::{QuicConfig, RetryPolicy, ServerConfig};
use crate::tls::{TlsIdentity, client_config_trusting};

const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4433);
const CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50000);

/// How long the server is driven after the Initial (its idle timeout with
/// the default config is 20 s; nothing is sent after that).
const HORIZON: Duration = Duration::from_secs(30);

/// The hosts of the certificate the server makes in `TlsMode::SelfSigned`
/// (the default): its first flight is one full datagram and ~220 bytes.
const SELF_SIGNED: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Those hosts plus 24 more: a certificate the size of a small real one,
/// whose first flight spills ~210 bytes into a second datagram, as in the
/// report (1,200 + 222 bytes, then two 1,200-byte probes).
fn bigger_cert_hosts() -> Vec<String> {
    SELF_SIGNED
        .iter()
        .map(|h| (*h).to_owned())
        .chain((0..24).map(|i| format!("host-{i}.example.com")))
        .collect()
}

/// What the server sent to one unanswered Initial.
#[derive(Debug)]
struct Exchange {
    /// Bytes of the client's Initial datagram.
    received: usize,
    /// The size of each datagram the server sent, and when (after the
    /// Initial).
    sent: Vec<(Duration, usize)>,
    /// Whether the server answered with a Retry.
    retried: bool,
}

impl Exchange {
    fn sent_bytes(&self) -> usize {
        self.sent.iter().map(|(_, n)| n).sum()
    }

    fn ratio(&self) -> f64 {
        self.sent_bytes() as f64 / self.received as f64
    }
}

/// A server endpoint built with `config` and a certificate for `hosts`, and
/// a client connection to it (nothing sent yet), at virtual time `start`.
fn endpoints(config: &ServerConfig, hosts: &[&str]) -> (Endpoint, Endpoint, Connection, Instant) {
    let identity = TlsIdentity::self_signed(hosts).expect("certificate");
    let server_cfg = server_config(config, &identity).expect("server config");
    let server = Endpoint::new(
        Arc::new(EndpointConfig::default()),
        Some(Arc::new(server_cfg)),
        true,
        Some([7; 32]),
    );
    let mut client = Endpoint::new(
        Arc::new(EndpointConfig::default()),
        None,
        true,
        Some([9; 32]),
    );
    let tls = client_config_trusting(identity.leaf(), &[ALPN]).expect("client TLS");
    let crypto = QuicClientConfig::try_from(tls).expect("QUIC client TLS");
    let start = Instant::now();
    let (_, conn) = client
        .connect(
            start,
            ClientConfig::new(Arc::new(crypto)),
            SERVER,
            "localhost",
        )
        .expect("connect");
    (server, client, conn, start)
}

/// The client's next datagram.
fn client_datagram(conn: &mut Connection, now: Instant) -> BytesMut {
    let mut buf = Vec::new();
    let t = conn
        .poll_transmit(now, 1, &mut buf)
        .expect("a client datagram");
    BytesMut::from(&buf[..t.size])
}

/// Feeds the server endpoint one client Initial and drives it, never
/// answering, until [`HORIZON`]. Accepts or retries the attempt exactly as
/// the accept loop does under `config.listener.quic.retry`.
fn one_unanswered_initial(config: &ServerConfig, hosts: &[&str]) -> Exchange {
    let (mut server, _client, mut conn, start) = endpoints(config, hosts);
    let initial = client_datagram(&mut conn, start);
    let mut exchange = Exchange {
        received: initial.len(),
        sent: Vec::new(),
        retried: false,
    };

    let mut out = Vec::new();
    let incoming = match server.handle(start, CLIENT, None, None, initial, &mut out) {
        Some(DatagramEvent::NewConnection(incoming)) => incoming,
        Some(DatagramEvent::Response(t)) => {
            exchange.sent.push((Duration::ZERO, t.size));
            return exchange;
        }
        _ => return exchange,
    };
    // One peer: no other handshake in progress.
    if should_retry(
        config.listener.quic.retry,
        0,
        incoming.remote_address_validated(),
        incoming.may_retry(),
    ) {
        out.clear();
        let t = server.retry(incoming, &mut out).expect("retry");
        exchange.sent.push((Duration::ZERO, t.size));
        exchange.retried = true;
        return exchange;
    }
    out.clear();
    let (_, mut sconn) = server
        .accept(incoming, start, &mut out, None)
        .expect("accept");
    let mut now = start;
    loop {
        loop {
            out.clear();
            let Some(t) = sconn.poll_transmit(now, 16, &mut out) else {
                break;
            };
            let seg = t.segment_size.unwrap_or(t.size).max(1);
            let mut left = t.size;
            while left > 0 {
                exchange.sent.push((now - start, left.min(seg)));
                left = left.saturating_sub(seg);
            }
        }
        match sconn.poll_timeout() {
            Some(next) if next <= start + HORIZON => {
                now = now.max(next);
                sconn.handle_timeout(now);
            }
            _ => break,
        }
    }
    exchange
}

fn report(what: &str, e: &Exchange) {
    eprintln!(
        "{what}: received {} B, sent {} B in {} datagrams {:?}, ratio {:.2}, retry {}",
        e.received,
        e.sent_bytes(),
        e.sent.len(),
        e.sent,
        e.ratio(),
        e.retried
    );
}

/// Documents the upstream behaviour (quinn-proto 0.11.19), not ours: with
/// no Retry, the server exceeds the 3× limit to a peer that never answers
/// whenever its first flight does not end on a full datagram (with our
/// small self-signed certificate it is exactly one datagram, and the total
/// happens to land on 3.00×).
/// If this starts failing, quinn fixed it: the default Retry policy could
/// then be revisited (docs/PROTOCOL.md §2.2).
#[test]
fn without_retry_quinn_sends_an_unanswered_initial_more_than_3x() {
    let config =
        ServerConfig::default().with_quic(QuicConfig::default().with_retry(RetryPolicy::Never));
    let hosts = bigger_cert_hosts();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let e = one_unanswered_initial(&config, &hosts);
    report("RetryPolicy::Never", &e);
    assert!(!e.retried);
    assert!(
        e.received >= 1200,
        "a client Initial is padded to 1,200 bytes"
    );
    assert!(
        e.sent_bytes() > 3 * e.received,
        "quinn stayed within 3x without a Retry ({} of {} bytes): the upstream bug is fixed",
        e.sent_bytes(),
        e.received
    );
}

/// Our production configuration stays within the anti-amplification limit,
/// whatever the size of the certificate (the first flight's size decides
/// how far quinn overshoots without a Retry).
#[test]
fn the_default_config_sends_an_unanswered_initial_at_most_3x() {
    let bigger = bigger_cert_hosts();
    let bigger: Vec<&str> = bigger.iter().map(String::as_str).collect();
    let many: Vec<String> = (0..60).map(|i| format!("host-{i}.example.com")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for hosts in [&["localhost"][..], SELF_SIGNED, &bigger, &many] {
        let e = one_unanswered_initial(&ServerConfig::default(), hosts);
        report(&format!("default config, {} SANs", hosts.len()), &e);
        assert!(
            e.sent_bytes() <= 3 * e.received,
            "{} SANs: sent {} bytes for {} received ({:.2}x) before the address was validated",
            hosts.len(),
            e.sent_bytes(),
            e.received,
            e.ratio()
        );
    }
}

/// The Retry costs a round trip and nothing else: the client answers it with
/// a second Initial carrying the token, and the server accepts that attempt
/// with the address validated (so the 3× limit no longer applies).
#[test]
fn a_retried_client_comes_back_validated_and_is_accepted() {
    let config = ServerConfig::default();
    let (mut server, mut client, mut conn, start) = endpoints(&config, SELF_SIGNED);
    let mut out = Vec::new();
    let initial = client_datagram(&mut conn, start);
    let Some(DatagramEvent::NewConnection(incoming)) =
        server.handle(start, CLIENT, None, None, initial, &mut out)
    else {
        panic!("no connection attempt");
    };
    assert!(should_retry(
        config.listener.quic.retry,
        0,
        incoming.remote_address_validated(),
        incoming.may_retry()
    ));
    out.clear();
    let retry = server.retry(incoming, &mut out).expect("retry");
    let retry = BytesMut::from(&out[..retry.size]);
    assert!(
        retry.len() < 1200,
        "a Retry is small: {} bytes",
        retry.len()
    );

    let now = start + Duration::from_millis(20);
    let mut buf = Vec::new();
    match client.handle(now, SERVER, None, None, retry, &mut buf) {
        Some(DatagramEvent::ConnectionEvent(_, event)) => conn.handle_event(event),
        _ => panic!("the client did not take the Retry"),
    }
    let second = client_datagram(&mut conn, now);
    let Some(DatagramEvent::NewConnection(incoming)) =
        server.handle(now, CLIENT, None, None, second, &mut out)
    else {
        panic!("no second connection attempt");
    };
    assert!(incoming.remote_address_validated());
    assert!(!should_retry(
        config.listener.quic.retry,
        0,
        incoming.remote_address_validated(),
        incoming.may_retry()
    ));
    out.clear();
    server
        .accept(incoming, now, &mut out, None)
        .expect("the validated attempt is accepted");
}
