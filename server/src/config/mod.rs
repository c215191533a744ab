//! Server configuration: every limit and timing, with documented defaults,
//! split by concern.
//!
//! ```text
//!  ServerConfig
//!  ├─ listener: ListenerConfig    addresses, TLS, origins, connection caps, handshake deadline, QUIC
//!  ├─ session: SessionConfig      a connection past its handshake: auth, idle/ping/write timeouts, close
//!  ├─ limits: Limits              protocol decode limits (shared with clients)
//!  ├─ room: RoomConfig            every room's tick/snapshot rate, capacity and limits, unless
//!  │                              Server::with_room_config gives a room its own
//!  ├─ max_rooms                   rooms on this node
//!  ├─ lifecycle: LifecycleConfig  drain grace, health pings, shutdown timeout
//!  ├─ fleet: FleetConfig          the room directory, matchmaking, seat tokens
//!  └─ admin_token                 the fleet console
//! ```

mod fleet;
mod listener;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tickwire_shared::Limits;
use tickwire_shared::conditioner::ConditionerConfig;

pub use self::fleet::FleetConfig;
pub use self::listener::{ListenerConfig, QuicConfig, RetryPolicy, TlsMode};
pub use crate::config_error::{ConfigError, RoomConfigError};
use crate::console::AdminToken;
use crate::messages::MessageLimits;
use crate::room_config::with;
pub use crate::room_config::{RoomConfig, RoomSpec};

/// Server configuration, split by concern (see the [module docs](self)).
/// Build it with [`ServerConfig::default`] and the `with_*` methods, or set
/// fields directly.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::{RoomConfig, ServerConfig};
/// let mut config = ServerConfig::default()
///     .with_addr("127.0.0.1:0".parse().unwrap())
///     .with_room(RoomConfig::default().with_tick_rate(30).with_snapshot_interval(2));
/// config.listener.max_connections_per_ip = 256;
/// config.room.max_clients = 16;
/// assert_eq!(config.listener.handshake_timeout, Duration::from_secs(10));
/// assert_eq!(config.validate(), Ok(()));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where and how connections are accepted. See [`ListenerConfig`].
    pub listener: ListenerConfig,
    /// Connections past their handshake. See [`SessionConfig`].
    pub session: SessionConfig,
    /// Protocol decode limits (message sizes, counts), the same as the
    /// clients'. See [`Limits`].
    pub limits: Limits,
    /// The configuration of every room, unless
    /// [`crate::Server::with_room_config`] gives a room its own. See
    /// [`RoomConfig`].
    pub room: RoomConfig,
    /// Rooms on this node at most. Default 1,000.
    pub max_rooms: usize,
    /// Draining, health pings and shutdown. See [`LifecycleConfig`].
    pub lifecycle: LifecycleConfig,
    /// How this node presents itself in the room directory. See
    /// [`FleetConfig`].
    pub fleet: FleetConfig,
    /// The token that opens the fleet console (`/admin/` and
    /// `/admin/api/…` on this listener; see [`crate::console`] and
    /// docs/CONSOLE.md). Default none: the console is off and its paths
    /// answer `404`. [`AdminToken`] refuses tokens under 16 bytes.
    pub admin_token: Option<AdminToken>,
}

/// A connection past its handshake, whatever its room: how its client is
/// authenticated, how it is kept alive and closed. Part of
/// [`ServerConfig`] (`session`).
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::config::SessionConfig;
/// let session = SessionConfig::default().with_idle_timeout(Duration::from_secs(30));
/// assert_eq!(session.ping_interval, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How long an [`crate::auth::Authenticator`] may take for one client
    /// (set with [`crate::Server::with_auth`]) before the client is rejected
    /// with `AuthTimeout`. The handshake deadline
    /// ([`ListenerConfig::handshake_timeout`]) bounds it too: keep it
    /// shorter. Default 5 s.
    pub auth_timeout: Duration,
    /// A session with no message for this long is closed. Default 15 s.
    pub idle_timeout: Duration,
    /// The server pings every session this often. Default 2 s.
    pub ping_interval: Duration,
    /// A write to a session's socket that takes longer than this closes the
    /// session as a slow consumer. Default 5 s.
    pub write_timeout: Duration,
    /// After its WebSocket close frame, the server half-closes the
    /// connection and reads (and drops) what the client still sends, for at
    /// most this long, before it drops the connection: dropping it with
    /// unread bytes would send a TCP reset, which can destroy the close
    /// frame before the client reads it. Default 1 s.
    pub close_linger: Duration,
    /// The most bytes read (and dropped) while lingering. Default 256 KiB.
    pub close_linger_bytes: u64,
    /// Simulate a bad network on every session (testing only): latency,
    /// jitter, loss… applied to each session's traffic in both directions
    /// (reliable server messages get the delays only). Default none.
    pub conditioner: Option<ConditionerConfig>,
    /// Seed for the conditioner (combined with each client id). Default 1.
    pub conditioner_seed: u64,
    /// Grant implicit acks to WSS clients that ask for them (PROTOCOL.md
    /// §8.7): a snapshot written to such a client's connection counts as
    /// acknowledged, so it sends no `Ack` per snapshot (one read and often
    /// one wakeup less per client per snapshot for the server). QUIC and
    /// WebTransport sessions never get them (datagrams may be lost), nor
    /// does any session while [`SessionConfig::conditioner`] is set (it
    /// holds snapshots back without the backpressure that paces a slow
    /// client, and may drop them when its queue is full). Default true.
    pub implicit_acks: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            auth_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            ping_interval: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            close_linger: Duration::from_secs(1),
            close_linger_bytes: 256 << 10,
            conditioner: None,
            conditioner_seed: 1,
            implicit_acks: true,
        }
    }
}

with! { SessionConfig;
    /// Sets [`SessionConfig::auth_timeout`].
    with_auth_timeout: auth_timeout: Duration,
    /// Sets [`SessionConfig::idle_timeout`].
    with_idle_timeout: idle_timeout: Duration,
    /// Sets [`SessionConfig::ping_interval`].
    with_ping_interval: ping_interval: Duration,
    /// Sets [`SessionConfig::write_timeout`].
    with_write_timeout: write_timeout: Duration,
    /// Sets [`SessionConfig::conditioner`].
    with_conditioner: conditioner: Option<ConditionerConfig>,
    /// Sets [`SessionConfig::implicit_acks`].
    with_implicit_acks: implicit_acks: bool,
}

/// How the node drains, reports its health and shuts down (see
/// [`crate::lifecycle`]). Part of [`ServerConfig`] (`lifecycle`).
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::config::LifecycleConfig;
/// let lifecycle = LifecycleConfig::default().with_drain_grace(Duration::from_secs(90));
/// assert_eq!(lifecycle.shutdown_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleConfig {
    /// While draining (SIGTERM, [`crate::RunningServer::drain`]), running
    /// rooms get this long to finish; then their sessions are closed with
    /// `ServerShutdown` and a reason. A fleet manager's kill deadline must
    /// exceed it plus [`LifecycleConfig::shutdown_timeout`] (Kubernetes:
    /// `terminationGracePeriodSeconds`, 30 s by default). Default 25 s.
    pub drain_grace: Duration,
    /// How often [`crate::lifecycle::LifecycleHooks::health`] is called
    /// while the node is ready or draining (Agones expects a health ping
    /// within its `health.periodSeconds`, 5 s by default). At least 10 ms.
    /// Default 2 s.
    pub health_interval: Duration,
    /// On shutdown, sessions get this long to flush their close. Default 5 s.
    pub shutdown_timeout: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            drain_grace: Duration::from_secs(25),
            health_interval: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

with! { LifecycleConfig;
    /// Sets [`LifecycleConfig::drain_grace`].
    with_drain_grace: drain_grace: Duration,
    /// Sets [`LifecycleConfig::health_interval`].
    with_health_interval: health_interval: Duration,
    /// Sets [`LifecycleConfig::shutdown_timeout`].
    with_shutdown_timeout: shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listener: ListenerConfig::default(),
            session: SessionConfig::default(),
            limits: Limits::default(),
            room: RoomConfig::default(),
            max_rooms: 1_000,
            lifecycle: LifecycleConfig::default(),
            fleet: FleetConfig::default(),
            admin_token: None,
        }
    }
}

with! { ServerConfig;
    /// Sets [`ServerConfig::listener`].
    with_listener: listener: ListenerConfig,
    /// Sets [`ServerConfig::session`].
    with_session: session: SessionConfig,
    /// Sets [`ServerConfig::room`], the default config of rooms.
    with_room: room: RoomConfig,
    /// Sets [`ServerConfig::lifecycle`].
    with_lifecycle: lifecycle: LifecycleConfig,
    /// Sets [`ServerConfig::limits`].
    with_limits: limits: Limits,
    /// Sets [`ServerConfig::max_rooms`].
    with_max_rooms: max_rooms: usize,
    /// Sets [`ServerConfig::fleet`].
    with_fleet: fleet: FleetConfig,
    /// Sets [`ServerConfig::admin_token`] (`Some` turns the console on).
    with_admin_token: admin_token: Option<AdminToken>,
    // Shortcuts to nested fields (the setters of the flat config this
    // one was split from).
    /// Sets [`ListenerConfig::addr`].
    with_addr: listener.addr: SocketAddr,
    /// Sets [`ListenerConfig::tls`].
    with_tls: listener.tls: TlsMode,
    /// Sets [`ListenerConfig::ws_path`].
    with_ws_path: listener.ws_path: String,
    /// Sets [`ListenerConfig::static_dir`].
    with_static_dir: listener.static_dir: Option<PathBuf>,
    /// Sets [`ListenerConfig::metrics_addr`].
    with_metrics_addr: listener.metrics_addr: Option<SocketAddr>,
    /// Sets [`ListenerConfig::quic_addr`].
    with_quic_addr: listener.quic_addr: Option<SocketAddr>,
    /// Sets [`ListenerConfig::quic`].
    with_quic: listener.quic: QuicConfig,
    /// Sets [`ListenerConfig::handshake_timeout`].
    with_handshake_timeout: listener.handshake_timeout: Duration,
    /// Sets [`SessionConfig::idle_timeout`].
    with_idle_timeout: session.idle_timeout: Duration,
    /// Sets [`SessionConfig::conditioner`].
    with_conditioner: session.conditioner: Option<ConditionerConfig>,
    /// Sets [`SessionConfig::implicit_acks`].
    with_implicit_acks: session.implicit_acks: bool,
    /// Sets [`LifecycleConfig::drain_grace`].
    with_drain_grace: lifecycle.drain_grace: Duration,
    /// Sets [`LifecycleConfig::health_interval`].
    with_health_interval: lifecycle.health_interval: Duration,
    /// Sets [`RoomConfig::tick_rate`] of the default room.
    with_tick_rate: room.tick_rate: u16,
    /// Sets [`RoomConfig::snapshot_interval`] of the default room.
    with_snapshot_interval: room.snapshot_interval: u16,
    /// Sets [`RoomConfig::max_clients`] of the default room.
    with_max_players_per_room: room.max_clients: usize,
    /// Sets [`RoomConfig::resume_grace`] of the default room.
    with_resume_grace: room.resume_grace: Duration,
    /// Sets [`RoomConfig::deltas`] of the default room.
    with_deltas: room.deltas: bool,
    /// Sets [`RoomConfig::baseline_snap`] of the default room.
    with_baseline_snap: room.baseline_snap: u16,
    /// Sets [`RoomConfig::field_diff`] of the default room.
    with_field_diff: room.field_diff: bool,
    /// Sets [`RoomConfig::client_bytes_per_sec`] of the default room.
    with_client_bytes_per_sec: room.client_bytes_per_sec: Option<u32>,
    /// Sets [`RoomConfig::budget_max_wait`] of the default room.
    with_budget_max_wait: room.budget_max_wait: Duration,
    /// Sets [`RoomConfig::max_snapshot_slowdown`] of the default room.
    with_max_snapshot_slowdown: room.max_snapshot_slowdown: u16,
    /// Sets [`RoomConfig::game_messages`] of the default room.
    with_game_messages: room.game_messages: MessageLimits,
}

impl ServerConfig {
    /// Checks that the values can work together, the default room's
    /// ([`RoomConfig::validate`]) first.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigError as E;
        self.room.validate()?;
        let listener = &self.listener;
        if !listener.ws_path.starts_with('/') {
            return Err(E::WsPath(listener.ws_path.clone()));
        }
        if let Some(path) = &listener.quic.webtransport_path
            && !path.starts_with('/')
        {
            return Err(E::WebTransportPath(path.clone()));
        }
        if listener.max_ws_message_bytes < 64 {
            return Err(E::MaxWsMessageBytes(listener.max_ws_message_bytes));
        }
        if self.session.auth_timeout.is_zero() {
            return Err(E::AuthTimeout);
        }
        let (game, client) = (
            self.limits.max_game_message_bytes,
            self.limits.max_client_message_bytes,
        );
        if game >= client {
            return Err(E::GameMessageBytes { game, client });
        }
        for (name, value) in [
            ("listener.max_connections", listener.max_connections),
            ("max_rooms", self.max_rooms),
        ] {
            if value == 0 {
                return Err(E::Capacity(name));
            }
        }
        let health = self.lifecycle.health_interval;
        if health < Duration::from_millis(10) {
            return Err(E::HealthInterval(health));
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
        if listener.quic_addr.is_some() && matches!(listener.tls, TlsMode::Plain) {
            return Err(E::QuicWithoutTls);
        }
        let needed = 4 + self.limits.max_client_message_bytes;
        if (listener.quic.stream_receive_window as usize) < needed {
            return Err(E::QuicStreamWindow {
                window: listener.quic.stream_receive_window,
                needed,
            });
        }
        Ok(())
    }
}
