//! Server configuration: every limit and timing in one place, with defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tickwire_shared::Limits;

use crate::console::AdminToken;
use crate::matchmaking::FleetSecret;
use crate::messages::MessageLimits;
use tickwire_shared::conditioner::ConditionerConfig;

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

/// Server configuration. Build it with [`ServerConfig::default`] and the
/// `with_*` methods, or set fields directly.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::ServerConfig;
/// let config = ServerConfig::default()
///     .with_addr("127.0.0.1:0".parse().unwrap())
///     .with_tick_rate(30)
///     .with_snapshot_interval(2);
/// assert_eq!(config.handshake_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
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

    /// Ticks per second. Default 60.
    pub tick_rate: u16,
    /// Send a snapshot every this many ticks (1 = every tick). Default 1.
    pub snapshot_interval: u16,
    /// Snapshots kept for delta baselines (ticks). Default 64.
    pub baseline_ring: usize,
    /// Send deltas against each client's newest acknowledged snapshot.
    /// When false, every snapshot is sent full (no baseline): more bytes,
    /// for measuring what deltas save or for debugging. Default true.
    pub deltas: bool,
    /// How many snapshots older than its newest acknowledgement a client's
    /// delta baseline may be, so that clients whose acks are spread over a
    /// few ticks (different round trips) share one baseline: every distinct
    /// baseline of a tick costs a diff of the world, shared clients cost
    /// none. Each client gets, among the snapshots it acknowledged within
    /// this window, the one most clients can use. 0: always the newest
    /// acknowledged snapshot. Default 4 (67 ms at 60 snapshots/s).
    pub baseline_snap: u16,
    /// Write a delta's patches with the game's field-by-field diff
    /// ([`tickwire_shared::GameProtocol::diff_fields`], derived with
    /// `#[derive(tickwire_derive::Patch)]`) where it has one. When false,
    /// every patch goes through serde's flattener: the same bytes, more CPU,
    /// for measuring what the derive saves or for debugging. Default true.
    pub field_diff: bool,

    /// Protocol decode limits (message sizes, counts). See [`Limits`].
    pub limits: Limits,
    /// Maximum WebSocket message (and frame) size the server accepts.
    /// Default 4096 bytes (the client → server message limit).
    pub max_ws_message_bytes: usize,
    /// TLS accept + HTTP upgrade + protocol handshake must finish within
    /// this. Default 10 s.
    pub handshake_timeout: Duration,
    /// How long an [`crate::auth::Authenticator`] may take for one client
    /// (set with [`crate::Server::with_auth`]) before the client is rejected
    /// with `AuthTimeout`. The handshake deadline
    /// ([`ServerConfig::handshake_timeout`]) bounds it too: keep it shorter.
    /// Default 5 s.
    pub auth_timeout: Duration,
    /// A session with no message for this long is closed. Default 15 s.
    pub idle_timeout: Duration,
    /// The server pings every session this often. Default 2 s.
    pub ping_interval: Duration,
    /// The kernel send buffer of each connection, in bytes (`None`: the OS
    /// default, which autotunes to megabytes). Small keeps a slow client's
    /// backlog short: once it is full, the outbox replaces unsent snapshots
    /// with newer ones instead of queueing stale state. Default 128 KiB.
    pub tcp_send_buffer: Option<usize>,
    /// A write to a session's socket that takes longer than this closes the
    /// session as a slow consumer. Default 5 s.
    pub write_timeout: Duration,
    /// A dropped session can resume within this grace period. Default 10 s.
    pub resume_grace: Duration,
    /// Total connection cap. Default 10,000.
    pub max_connections: usize,
    /// Connections per IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Players per room. Default 64.
    pub max_players_per_room: usize,
    /// Rooms per server. Default 1,000.
    pub max_rooms: usize,
    /// An empty room closes after this long. Default 30 s.
    pub empty_room_grace: Duration,
    /// Inputs applied per client per tick at most (the excess waits; beyond
    /// `max_queued_inputs` it is dropped). Default 2.
    pub max_inputs_per_tick: usize,
    /// Inputs queued per client at most. Default 16.
    pub max_queued_inputs: usize,
    /// Messages per second a client may send (token bucket, burst =
    /// `max_messages_per_sec / 2`). Over it the session closes with
    /// `InputFlood`. Default 240.
    pub max_messages_per_sec: u32,
    /// Reliable game messages (`GameProtocol::Message`): rate limit, queue
    /// bound and per-tick budget. See [`MessageLimits`].
    pub game_messages: MessageLimits,
    /// Reliable messages (events, pongs) queued per session before the
    /// session is closed as a slow consumer. Default 256.
    pub max_queued_reliable: usize,
    /// Snapshots in a row that a session failed to send (each replaced by a
    /// newer one) before it is closed as a slow consumer. Default 120.
    pub max_skipped_snapshots: u32,
    /// How far a client that falls behind is slowed down: it is sent one
    /// snapshot in up to this many, deltas against a baseline the ring still
    /// holds, rather than every snapshot (and, once its baseline left the
    /// ring, full ones). A client falls behind when its outbox still holds
    /// the previous snapshot or its newest acknowledgement is more than half
    /// the ring (`baseline_ring / 2` snapshots) old; its rate recovers step
    /// by step once it keeps up. A client still stalled at the slowest rate
    /// for `max_skipped_snapshots` snapshots is closed as a slow consumer.
    /// 1: never slow down. Default 8 (7.5 snapshots/s at 60).
    pub max_snapshot_slowdown: u16,
    /// Each client's byte budget for snapshots, in bytes per second (the
    /// protocol payload, before WebSocket/TLS framing). When a snapshot
    /// would exceed it, lower-priority changes wait for a later snapshot and
    /// their priority ([`crate::Game::priority`]) accumulates until they are
    /// sent; see `budget.rs`. Nothing changes on the wire. Needs `deltas`.
    /// Default none (every change of every snapshot is sent).
    pub client_bytes_per_sec: Option<u32>,
    /// With a byte budget, the longest a changed entity waits: after this
    /// it is sent whatever the budget (so a budget too small for the view
    /// is exceeded rather than leaving entities stale). At most half the
    /// ring (`baseline_ring × snapshot_interval / 2` ticks) when a budget
    /// is set. Default 500 ms.
    pub budget_max_wait: Duration,
    /// Bounded channel from sessions to their room for joins, leaves and
    /// disconnects (commands that wake the room). Default 1,024. Inputs
    /// travel on a second channel that the room reads once per tick; see
    /// [`ServerConfig::room_message_capacity`].
    pub room_channel_capacity: usize,
    /// On shutdown, sessions get this long to flush their close. Default 5 s.
    pub shutdown_timeout: Duration,
    /// While draining (SIGTERM, [`crate::RunningServer::drain`]), running
    /// rooms get this long to finish; then their sessions are closed with
    /// `ServerShutdown` and a reason. A fleet manager's kill deadline must
    /// exceed it plus [`ServerConfig::shutdown_timeout`] (Kubernetes:
    /// `terminationGracePeriodSeconds`, 30 s by default). Default 25 s.
    pub drain_grace: Duration,
    /// How often [`crate::lifecycle::LifecycleHooks::health`] is called
    /// while the node is ready or draining (Agones expects a health ping
    /// within its `health.periodSeconds`, 5 s by default). At least 10 ms.
    /// Default 2 s.
    pub health_interval: Duration,
    /// After its WebSocket close frame, the server half-closes the
    /// connection and reads (and drops) what the client still sends, for at
    /// most this long, before it drops the connection: dropping it with
    /// unread bytes would send a TCP reset, which can destroy the close
    /// frame before the client reads it. Default 1 s.
    pub close_linger: Duration,
    /// The most bytes read (and dropped) while lingering. Default 256 KiB.
    pub close_linger_bytes: u64,
    /// Connections over [`ServerConfig::max_connections`] or
    /// [`ServerConfig::max_connections_per_ip`] that are answered (TLS, then
    /// HTTP `503` with `Retry-After`, bounded by the handshake timeout) at
    /// one time; more are dropped at once, before TLS (0: drop them all).
    /// Default 64.
    pub max_refused_in_flight: usize,
    /// Simulate a bad network on every session (testing only): latency,
    /// jitter, loss… applied to each session's traffic in both directions
    /// (reliable server messages get the delays only). Default none.
    pub conditioner: Option<ConditionerConfig>,
    /// Seed for the conditioner (combined with each client id). Default 1.
    pub conditioner_seed: u64,
    /// The UDP address for QUIC (native clients; ALPN `tickwire/1`, the same
    /// certificate as HTTPS). It serves the same rooms as WSS. Needs TLS.
    /// Default none (QUIC off).
    pub quic_addr: Option<SocketAddr>,
    /// QUIC limits and address validation. See [`QuicConfig`].
    pub quic: QuicConfig,
    /// How this node presents itself in the room directory. See
    /// [`FleetConfig`].
    pub fleet: FleetConfig,
    /// The token that opens the fleet console (`/admin/` and
    /// `/admin/api/…` on this listener; see [`crate::console`] and
    /// docs/CONSOLE.md). Default none: the console is off and its paths
    /// answer `404`. [`AdminToken`] refuses tokens under 16 bytes.
    pub admin_token: Option<AdminToken>,
}

/// How a node registers itself and its rooms in the room directory
/// ([`crate::directory`]; in memory unless the server is given another
/// with [`crate::Server::with_directory`]). A task of its own does it,
/// never a room's tick.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::config::FleetConfig;
/// let fleet = FleetConfig::default().with_node_id("eu-1").with_mode("ffa");
/// assert_eq!(fleet.ttl, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetConfig {
    /// This node's id, unique in the fleet (a pod or host name). Default
    /// `node`.
    pub node_id: String,
    /// The WebSocket URL clients should use to reach this node (behind a
    /// proxy, the proxy's). Default: `wss://localhost:PORT/ws` (or `ws://`
    /// in plain mode) from the bound address.
    pub public_wss_url: Option<String>,
    /// The QUIC URL clients should use. Default: `quic://localhost:PORT`
    /// when QUIC is on.
    pub public_quic_url: Option<String>,
    /// The game mode this node's rooms are registered with. Default empty.
    pub mode: String,
    /// How often the node refreshes its entry and its rooms'. Default 2 s.
    pub heartbeat_interval: Duration,
    /// How long an entry lives without a refresh: a node that dies leaves
    /// the directory (with its rooms) within this. More than
    /// `heartbeat_interval`. Default 10 s.
    pub ttl: Duration,
    /// The fleet's shared secret, which signs and checks seat tokens
    /// ([`crate::matchmaking`]). With it, the node answers `POST /matchmake`
    /// and checks the seat token of every hello that has one. Without it
    /// (the default), matchmaking is off (`/matchmake` answers `404`) and
    /// a hello with a seat token is rejected (`SeatTokenInvalid`). Never
    /// logged.
    pub secret: Option<FleetSecret>,
    /// Admit only hellos with a valid seat token (`SeatTokenRequired`
    /// otherwise): players must come through `POST /matchmake`. Needs
    /// [`FleetConfig::secret`]. Default false.
    pub require_seat_token: bool,
    /// How long a seat token is accepted after the matchmaker issued it
    /// (the nodes' clocks must agree to well within it). Default 30 s.
    pub seat_ttl: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            node_id: "node".to_owned(),
            public_wss_url: None,
            public_quic_url: None,
            mode: String::new(),
            heartbeat_interval: Duration::from_secs(2),
            ttl: Duration::from_secs(10),
            secret: None,
            require_seat_token: false,
            seat_ttl: Duration::from_secs(30),
        }
    }
}

impl FleetConfig {
    /// Sets [`FleetConfig::node_id`].
    #[must_use]
    pub fn with_node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = id.into();
        self
    }

    /// Sets [`FleetConfig::mode`].
    #[must_use]
    pub fn with_mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = mode.into();
        self
    }

    /// Sets [`FleetConfig::secret`] (matchmaking on).
    #[must_use]
    pub fn with_secret(mut self, secret: FleetSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Sets [`FleetConfig::require_seat_token`].
    #[must_use]
    pub fn with_require_seat_token(mut self, on: bool) -> Self {
        self.require_seat_token = on;
        self
    }

    /// Sets [`FleetConfig::seat_ttl`].
    #[must_use]
    pub fn with_seat_ttl(mut self, ttl: Duration) -> Self {
        self.seat_ttl = ttl;
        self
    }

    /// Sets [`FleetConfig::heartbeat_interval`] and [`FleetConfig::ttl`].
    #[must_use]
    pub fn with_heartbeat(mut self, interval: Duration, ttl: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.ttl = ttl;
        self
    }
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

/// QUIC tuning, tighter than quinn's defaults (which suit bulk transfer).
/// The connection allows one bidirectional stream (the client's reliable
/// stream) and no unidirectional ones; its idle timeout is
/// [`ServerConfig::idle_timeout`] plus 5 s, so the protocol's own idle
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
    /// Send each snapshot datagram a second time, half a snapshot interval
    /// later, unless a newer snapshot went out first. A single lost datagram
    /// then costs half an interval instead of a whole one (at 5 % loss the
    /// snapshot-interval p99 stays near one interval instead of two), for
    /// twice the snapshot packets. Clients ignore the copy they already
    /// applied. Default true.
    pub redundant_snapshots: bool,
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

    /// Sets [`QuicConfig::redundant_snapshots`].
    #[must_use]
    pub fn with_redundant_snapshots(mut self, on: bool) -> Self {
        self.redundant_snapshots = on;
        self
    }
}

impl Default for ServerConfig {
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
            tick_rate: 60,
            snapshot_interval: 1,
            baseline_ring: 64,
            deltas: true,
            baseline_snap: 4,
            field_diff: true,
            limits: Limits::default(),
            max_ws_message_bytes: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            ping_interval: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            tcp_send_buffer: Some(128 << 10),
            resume_grace: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_players_per_room: 64,
            max_rooms: 1_000,
            empty_room_grace: Duration::from_secs(30),
            max_inputs_per_tick: 2,
            max_queued_inputs: 16,
            auth_timeout: Duration::from_secs(5),
            max_messages_per_sec: 240,
            game_messages: MessageLimits::default(),
            max_queued_reliable: 256,
            max_skipped_snapshots: 120,
            max_snapshot_slowdown: 8,
            client_bytes_per_sec: None,
            budget_max_wait: Duration::from_millis(500),
            room_channel_capacity: 1024,
            shutdown_timeout: Duration::from_secs(5),
            drain_grace: Duration::from_secs(25),
            health_interval: Duration::from_secs(2),
            close_linger: Duration::from_secs(1),
            close_linger_bytes: 256 << 10,
            max_refused_in_flight: 64,
            conditioner: None,
            conditioner_seed: 1,
            quic_addr: None,
            quic: QuicConfig::default(),
            fleet: FleetConfig::default(),
            admin_token: None,
        }
    }
}

macro_rules! with {
    ($($(#[$m:meta])* $name:ident: $field:ident: $ty:ty,)*) => {
        impl ServerConfig {
            $($(#[$m])* #[must_use] pub fn $name(mut self, v: $ty) -> Self { self.$field = v; self })*
        }
    };
}

with! {
    /// Sets [`ServerConfig::addr`].
    with_addr: addr: SocketAddr,
    /// Sets [`ServerConfig::tls`].
    with_tls: tls: TlsMode,
    /// Sets [`ServerConfig::static_dir`].
    with_static_dir: static_dir: Option<PathBuf>,
    /// Sets [`ServerConfig::metrics_addr`].
    with_metrics_addr: metrics_addr: Option<SocketAddr>,
    /// Sets [`ServerConfig::tick_rate`].
    with_tick_rate: tick_rate: u16,
    /// Sets [`ServerConfig::snapshot_interval`].
    with_snapshot_interval: snapshot_interval: u16,
    /// Sets [`ServerConfig::max_players_per_room`].
    with_max_players_per_room: max_players_per_room: usize,
    /// Sets [`ServerConfig::deltas`].
    with_deltas: deltas: bool,
    /// Sets [`ServerConfig::client_bytes_per_sec`].
    with_client_bytes_per_sec: client_bytes_per_sec: Option<u32>,
    /// Sets [`ServerConfig::budget_max_wait`].
    with_budget_max_wait: budget_max_wait: Duration,
    /// Sets [`ServerConfig::max_snapshot_slowdown`].
    with_max_snapshot_slowdown: max_snapshot_slowdown: u16,
    /// Sets [`ServerConfig::baseline_snap`].
    with_baseline_snap: baseline_snap: u16,
    /// Sets [`ServerConfig::field_diff`].
    with_field_diff: field_diff: bool,
    /// Sets [`ServerConfig::handshake_timeout`].
    with_handshake_timeout: handshake_timeout: Duration,
    /// Sets [`ServerConfig::idle_timeout`].
    with_idle_timeout: idle_timeout: Duration,
    /// Sets [`ServerConfig::resume_grace`].
    with_resume_grace: resume_grace: Duration,
    /// Sets [`ServerConfig::limits`].
    with_limits: limits: Limits,
    /// Sets [`ServerConfig::conditioner`].
    with_conditioner: conditioner: Option<ConditionerConfig>,
    /// Sets [`ServerConfig::quic_addr`].
    with_quic_addr: quic_addr: Option<SocketAddr>,
    /// Sets [`ServerConfig::quic`].
    with_quic: quic: QuicConfig,
    /// Sets [`ServerConfig::drain_grace`].
    with_drain_grace: drain_grace: Duration,
    /// Sets [`ServerConfig::health_interval`].
    with_health_interval: health_interval: Duration,
    /// Sets [`ServerConfig::fleet`].
    with_fleet: fleet: FleetConfig,
    /// Sets [`ServerConfig::admin_token`] (`Some` turns the console on).
    with_admin_token: admin_token: Option<AdminToken>,
}

pub use crate::config_error::ConfigError;

impl ServerConfig {
    /// The tick period.
    #[must_use]
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.tick_rate.max(1))
    }

    /// The capacity of a room's input channel, which the room reads once per
    /// tick: a tick's worth of messages from a
    /// full room at the message rate limit (`max_players_per_room` ×
    /// ⌈`max_messages_per_sec` / `tick_rate`⌉), twice over for a late tick,
    /// and at least [`ServerConfig::room_channel_capacity`]. A message that
    /// finds it full is dropped (an input is resent until acked).
    ///
    /// ```
    /// let c = tickwire_server::ServerConfig::default();
    /// assert!(c.room_message_capacity() >= c.max_players_per_room * 4);
    /// ```
    #[must_use]
    pub fn room_message_capacity(&self) -> usize {
        let per_tick = self
            .max_messages_per_sec
            .div_ceil(u32::from(self.tick_rate.max(1)))
            .max(1) as usize;
        self.max_players_per_room
            .saturating_mul(per_tick)
            .saturating_mul(2)
            .max(self.room_channel_capacity)
    }

    /// Checks that the values can work together.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigError as E;
        if self.tick_rate == 0 || self.tick_rate > 1000 {
            return Err(E::TickRate(self.tick_rate));
        }
        if self.snapshot_interval == 0 {
            return Err(E::SnapshotInterval);
        }
        if self.max_snapshot_slowdown == 0 {
            return Err(E::MaxSnapshotSlowdown);
        }
        if self.client_bytes_per_sec == Some(0) {
            return Err(E::ClientBytesPerSec);
        }
        let max_ticks =
            (self.baseline_ring as u64).saturating_mul(u64::from(self.snapshot_interval)) / 2;
        let wait_ticks =
            (self.budget_max_wait.as_secs_f64() * f64::from(self.tick_rate)).ceil() as u64;
        if self.client_bytes_per_sec.is_some() && wait_ticks > max_ticks {
            return Err(E::BudgetMaxWait {
                wait_ticks,
                max_ticks,
            });
        }
        if self.baseline_ring < 2 {
            return Err(E::BaselineRing(self.baseline_ring));
        }
        let ticks = u32::from(self.baseline_snap) * u32::from(self.snapshot_interval);
        let max = crate::outbox::AckWindow::SPAN;
        if ticks > max {
            return Err(E::BaselineSnap { ticks, max });
        }
        if !self.ws_path.starts_with('/') {
            return Err(E::WsPath(self.ws_path.clone()));
        }
        if self.max_ws_message_bytes < 64 {
            return Err(E::MaxWsMessageBytes(self.max_ws_message_bytes));
        }
        if self.max_inputs_per_tick == 0 || self.max_queued_inputs < self.max_inputs_per_tick {
            return Err(E::InputQueue {
                per_tick: self.max_inputs_per_tick,
                queued: self.max_queued_inputs,
            });
        }
        if self.auth_timeout.is_zero() {
            return Err(E::AuthTimeout);
        }
        let gm = &self.game_messages;
        for (name, value) in [
            ("burst", gm.burst as usize),
            ("max_queued", gm.max_queued),
            ("max_per_tick", gm.max_per_tick),
        ] {
            if value == 0 {
                return Err(E::GameMessages(name));
            }
        }
        let (game, client) = (
            self.limits.max_game_message_bytes,
            self.limits.max_client_message_bytes,
        );
        if game >= client {
            return Err(E::GameMessageBytes { game, client });
        }
        for (name, value) in [
            ("max_players_per_room", self.max_players_per_room),
            ("max_connections", self.max_connections),
            ("max_rooms", self.max_rooms),
        ] {
            if value == 0 {
                return Err(E::Capacity(name));
            }
        }
        if self.health_interval < Duration::from_millis(10) {
            return Err(E::HealthInterval(self.health_interval));
        }
        let (heartbeat, ttl) = (self.fleet.heartbeat_interval, self.fleet.ttl);
        if heartbeat < Duration::from_millis(10) || ttl <= heartbeat {
            return Err(E::Heartbeat { heartbeat, ttl });
        }
        let (len, max) = (self.fleet.node_id.len(), crate::directory::MAX_NAME_BYTES);
        if len == 0 || len > max {
            return Err(E::NodeId { len, max });
        }
        if self.fleet.require_seat_token && self.fleet.secret.is_none() {
            return Err(E::SeatTokenWithoutSecret);
        }
        if self.fleet.seat_ttl < Duration::from_secs(1) {
            return Err(E::SeatTtl(self.fleet.seat_ttl));
        }
        if self.quic_addr.is_some() && matches!(self.tls, TlsMode::Plain) {
            return Err(E::QuicWithoutTls);
        }
        let needed = 4 + self.limits.max_client_message_bytes;
        if (self.quic.stream_receive_window as usize) < needed {
            return Err(E::QuicStreamWindow {
                window: self.quic.stream_receive_window,
                needed,
            });
        }
        Ok(())
    }
}
