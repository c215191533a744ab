//! Where and how connections are accepted: [`ListenerConfig`] (addresses,
//! TLS, origins, connection caps, the handshake deadline) and its QUIC
//! tuning, [`QuicConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::room_config::with;

/// How the server gets its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// PEM files: a certificate chain and a private key.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A self-signed development certificate for `localhost` and `127.0.0.1`
    /// (and `::1`), made at start-up. Its fingerprints are logged.
    SelfSigned,
    /// No TLS: plain `ws://`, for running behind a TLS-terminating proxy.
    /// Never the default; logs a warning.
    Plain,
}
/// Where and how connections are accepted, before a connection knows its
/// room: addresses, TLS, the web origin, connection caps and the handshake
/// deadline. Part of [`crate::ServerConfig`] (`listener`).
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::config::ListenerConfig;
/// let listener = ListenerConfig::default().with_addr("0.0.0.0:443".parse().unwrap());
/// assert_eq!(listener.handshake_timeout, Duration::from_secs(10));
/// assert_eq!(listener.max_connections_per_ip, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// The TCP address for HTTPS + WSS. Default `127.0.0.1:8443`.
    pub addr: SocketAddr,
    /// TLS mode. Default [`TlsMode::SelfSigned`].
    pub tls: TlsMode,
    /// The WebSocket path. Default `/ws`.
    pub ws_path: String,
    /// Directory of static files served on the same origin (the web client).
    /// Default none.
    pub static_dir: Option<PathBuf>,
    /// Cap on the total size of the static files, in bytes. Default 64 MiB.
    pub max_static_bytes: u64,
    /// Extra allowed `Origin`s besides the server's own. Default none.
    pub extra_origins: Vec<String>,
    /// Whether a WebSocket upgrade without an `Origin` header (native
    /// clients) is accepted. Default true.
    pub allow_missing_origin: bool,
    /// Address for the Prometheus metrics endpoint. Default none (off).
    pub metrics_addr: Option<SocketAddr>,
    /// The UDP address for QUIC (native clients; ALPN `tickwire/1`, the same
    /// certificate as HTTPS). It serves the same rooms as WSS. Needs TLS.
    /// Default none (QUIC off).
    pub quic_addr: Option<SocketAddr>,
    /// QUIC limits and address validation. See [`QuicConfig`].
    pub quic: QuicConfig,
    /// Maximum WebSocket message (and frame) size the server accepts.
    /// At least 64. Default 4096 bytes (the client → server message limit).
    pub max_ws_message_bytes: usize,
    /// TLS accept + HTTP upgrade + protocol handshake must finish within
    /// this. Default 10 s.
    pub handshake_timeout: Duration,
    /// The kernel send buffer of each connection, in bytes (`None`: the OS
    /// default, which autotunes to megabytes). Small keeps a slow client's
    /// backlog short: once it is full, the outbox replaces unsent snapshots
    /// with newer ones instead of queueing stale state. Default 128 KiB.
    pub tcp_send_buffer: Option<usize>,
    /// Total connection cap. Default 10,000.
    pub max_connections: usize,
    /// Connections per IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Connections over [`ListenerConfig::max_connections`] or
    /// [`ListenerConfig::max_connections_per_ip`] that are answered (TLS,
    /// then HTTP `503` with `Retry-After`, bounded by the handshake timeout)
    /// at one time; more are dropped at once, before TLS (0: drop them all).
    /// Default 64.
    pub max_refused_in_flight: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls: TlsMode::SelfSigned,
            ws_path: "/ws".to_owned(),
            static_dir: None,
            max_static_bytes: 64 << 20,
            extra_origins: Vec::new(),
            allow_missing_origin: true,
            metrics_addr: None,
            quic_addr: None,
            quic: QuicConfig::default(),
            max_ws_message_bytes: 4096,
            handshake_timeout: Duration::from_secs(10),
            tcp_send_buffer: Some(128 << 10),
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_refused_in_flight: 64,
        }
    }
}

with! { ListenerConfig;
    /// Sets [`ListenerConfig::addr`].
    with_addr: addr: SocketAddr,
    /// Sets [`ListenerConfig::tls`].
    with_tls: tls: TlsMode,
    /// Sets [`ListenerConfig::ws_path`].
    with_ws_path: ws_path: String,
    /// Sets [`ListenerConfig::static_dir`].
    with_static_dir: static_dir: Option<PathBuf>,
    /// Sets [`ListenerConfig::extra_origins`].
    with_extra_origins: extra_origins: Vec<String>,
    /// Sets [`ListenerConfig::metrics_addr`].
    with_metrics_addr: metrics_addr: Option<SocketAddr>,
    /// Sets [`ListenerConfig::quic_addr`].
    with_quic_addr: quic_addr: Option<SocketAddr>,
    /// Sets [`ListenerConfig::quic`].
    with_quic: quic: QuicConfig,
    /// Sets [`ListenerConfig::handshake_timeout`].
    with_handshake_timeout: handshake_timeout: Duration,
    /// Sets [`ListenerConfig::max_connections`].
    with_max_connections: max_connections: usize,
    /// Sets [`ListenerConfig::max_connections_per_ip`].
    with_max_connections_per_ip: max_connections_per_ip: usize,
}

/// When a QUIC client must prove it owns its source address (a Retry round
/// trip, RFC 9000 §8.1) before the server keeps any state for it. This stops
/// spoofed-source floods from filling the server with half-open handshakes,
/// and keeps the server within the 3× anti-amplification limit: without a
/// Retry, quinn-proto 0.11 may send an unvalidated peer up to one datagram
/// more than 3× what it received (its loss probes go out in full while any
/// budget is left), so only [`RetryPolicy::Always`] is within RFC 9000 §8.1
/// for every peer. See docs/PROTOCOL.md §2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// Never ask: one round trip faster, but a peer that never answers may
    /// get slightly more than 3× its bytes (see above). Only for a trusted
    /// network.
    Never,
    /// Always ask before accepting (the default): one more round trip per
    /// connection; within 3× for every peer.
    Always,
    /// Ask when more than `handshakes` QUIC handshakes are in progress;
    /// below that, as [`RetryPolicy::Never`].
    UnderLoad {
        /// Handshakes in progress above which unvalidated clients are retried.
        handshakes: usize,
    },
}

/// QUIC tuning, tighter than quinn's defaults (which suit bulk transfer),
/// and WebTransport for browsers on the same socket.
/// A native connection uses one bidirectional stream (the client's reliable
/// stream) and no unidirectional ones; a WebTransport connection also needs
/// HTTP/3's three control streams and its CONNECT stream. Its idle timeout is
/// [`crate::config::SessionConfig::idle_timeout`] plus 5 s, so the protocol's own idle
/// close (with its reason) comes first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuicConfig {
    /// Address validation. Default [`RetryPolicy::Always`] (costs one round
    /// trip on connect; keeps the server within the anti-amplification
    /// limit).
    pub retry: RetryPolicy,
    /// Bytes a client may have in flight on its stream (flow control).
    /// Default 16 KiB (client messages are at most 4 KiB).
    pub stream_receive_window: u32,
    /// Bytes a client may have in flight on the whole connection. Default 32 KiB.
    pub receive_window: u32,
    /// Unacknowledged bytes in flight to one client. Default 1 MiB.
    pub send_window: u64,
    /// Client datagrams buffered, in bytes, before the oldest is dropped.
    /// Default 16 KiB.
    pub datagram_receive_buffer: usize,
    /// Outgoing datagrams (snapshots) buffered, in bytes, before the oldest is
    /// dropped. Default 128 KiB.
    pub datagram_send_buffer: usize,
    /// Bytes buffered for one connection attempt that is not accepted yet.
    /// Default 16 KiB.
    pub incoming_buffer: u64,
    /// Send each snapshot datagram a second time, a quarter of a snapshot
    /// interval later, unless a newer snapshot went out first. A single lost
    /// datagram then costs a quarter of an interval instead of a whole one
    /// (at 5 % loss the snapshot-interval p99 stays near 1.25 intervals
    /// instead of two), for twice the snapshot packets. The delay is a
    /// compromise: later copies survive longer loss bursts, earlier ones
    /// cost less when a single packet is lost. Clients ignore the copy they
    /// already applied. Default true.
    pub redundant_snapshots: bool,
    /// The path of the WebTransport (HTTP/3) endpoint on the QUIC address,
    /// for browsers: `https://HOST:QUIC_PORT/wt`. It shares the QUIC socket
    /// and the certificate; connections are told apart by ALPN (`h3` here,
    /// `tickwire/1` for native clients). `None` turns WebTransport off.
    /// Default `Some("/wt")`.
    pub webtransport_path: Option<String>,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            // Not `UnderLoad`: quinn alone can exceed 3× (see RetryPolicy).
            retry: RetryPolicy::Always,
            stream_receive_window: 16 << 10,
            receive_window: 32 << 10,
            send_window: 1 << 20,
            datagram_receive_buffer: 16 << 10,
            datagram_send_buffer: 128 << 10,
            incoming_buffer: 16 << 10,
            redundant_snapshots: true,
            webtransport_path: Some("/wt".to_owned()),
        }
    }
}

impl QuicConfig {
    /// Sets [`QuicConfig::retry`].
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`QuicConfig::webtransport_path`] (`None`: WebTransport off).
    #[must_use]
    pub fn with_webtransport_path(mut self, path: Option<String>) -> Self {
        self.webtransport_path = path;
        self
    }

    /// Sets [`QuicConfig::redundant_snapshots`].
    #[must_use]
    pub fn with_redundant_snapshots(mut self, on: bool) -> Self {
        self.redundant_snapshots = on;
        self
    }
}
