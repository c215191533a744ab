//! Why a configuration cannot work: [`RoomConfigError`], one variant per
//! rule of [`crate::RoomConfig::validate`], and [`ConfigError`], one per
//! rule of [`crate::ServerConfig::validate`] (whose default room's rules
//! come as [`ConfigError::Room`]), each with the values it saw.

use std::time::Duration;

/// A room configuration value that cannot work. Each variant is one rule of
/// [`crate::RoomConfig::validate`], with the offending values; its message
/// says it is a room's rule.
///
/// ```
/// use tickwire_server::{RoomConfig, RoomConfigError};
/// let err = RoomConfig::default().with_tick_rate(0).validate().unwrap_err();
/// assert_eq!(err, RoomConfigError::TickRate(0));
/// assert_eq!(err.to_string(), "invalid room configuration: tick_rate must be 1..=1000 (got 0)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomConfigError {
    /// `tick_rate` is not 1..=1000.
    #[error("invalid room configuration: tick_rate must be 1..=1000 (got {0})")]
    TickRate(u16),
    /// `snapshot_interval` is 0.
    #[error("invalid room configuration: snapshot_interval must be at least 1")]
    SnapshotInterval,
    /// `max_clients` is 0.
    #[error("invalid room configuration: max_clients must be positive")]
    MaxClients,
    /// `max_snapshot_slowdown` is 0.
    #[error(
        "invalid room configuration: max_snapshot_slowdown must be at least 1 (1: never slow down)"
    )]
    MaxSnapshotSlowdown,
    /// `client_bytes_per_sec` is `Some(0)`.
    #[error(
        "invalid room configuration: client_bytes_per_sec must be positive (or none for no budget)"
    )]
    ClientBytesPerSec,
    /// With a byte budget, `budget_max_wait` is longer than half the ring.
    #[error(
        "invalid room configuration: budget_max_wait ({wait_ticks} ticks) must be at most half the ring \
         (baseline_ring × snapshot_interval / 2 = {max_ticks} ticks)"
    )]
    BudgetMaxWait {
        /// `budget_max_wait` in ticks.
        wait_ticks: u64,
        /// Half the ring, in ticks.
        max_ticks: u64,
    },
    /// `baseline_ring` is under 2.
    #[error("invalid room configuration: baseline_ring must be at least 2 (got {0})")]
    BaselineRing(usize),
    /// `baseline_snap` exceeds the ack window.
    #[error(
        "invalid room configuration: baseline_snap must be at most {max} snapshots (got {snapshots})"
    )]
    BaselineSnap {
        /// `baseline_snap`.
        snapshots: u16,
        /// The ack window's span.
        max: u32,
    },
    /// Not `1 <= max_inputs_per_tick <= max_queued_inputs`.
    #[error(
        "invalid room configuration: need 1 <= max_inputs_per_tick ({per_tick}) <= max_queued_inputs ({queued})"
    )]
    InputQueue {
        /// `max_inputs_per_tick`.
        per_tick: usize,
        /// `max_queued_inputs`.
        queued: usize,
    },
    /// A game-message limit (`burst`, `max_queued`, `max_per_tick`) is 0.
    #[error("invalid room configuration: game_messages.{0} must be positive")]
    GameMessages(&'static str),
    /// A bound that must be positive (`max_queued_reliable`,
    /// `channel_capacity`) is 0.
    #[error("invalid room configuration: {0} must be positive")]
    Zero(&'static str),
}

/// A configuration value that cannot work. Each variant is one rule, with
/// the offending values; the rules of the default room
/// ([`crate::ServerConfig::room`]) come as [`ConfigError::Room`].
///
/// ```
/// use tickwire_server::{ConfigError, RoomConfigError, ServerConfig};
/// let err = ServerConfig::default().with_tick_rate(0).validate().unwrap_err();
/// assert_eq!(err, ConfigError::Room(RoomConfigError::TickRate(0)));
/// assert_eq!(err.to_string(), "invalid room configuration: tick_rate must be 1..=1000 (got 0)");
/// let err = ServerConfig::default().with_ws_path("ws".into()).validate().unwrap_err();
/// assert_eq!(err.to_string(), "invalid configuration: listener.ws_path must start with '/' (got \"ws\")");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A rule of the default room ([`crate::ServerConfig::room`]).
    #[error(transparent)]
    Room(#[from] RoomConfigError),
    /// `listener.ws_path` does not start with `/`.
    #[error("invalid configuration: listener.ws_path must start with '/' (got {0:?})")]
    WsPath(String),
    /// `listener.quic.webtransport_path` does not start with `/`.
    #[error(
        "invalid configuration: listener.quic.webtransport_path must start with '/' (got {0:?})"
    )]
    WebTransportPath(String),
    /// `listener.max_ws_message_bytes` is under 64.
    #[error("invalid configuration: listener.max_ws_message_bytes must be at least 64 (got {0})")]
    MaxWsMessageBytes(usize),
    /// `session.auth_timeout` is zero.
    #[error("invalid configuration: session.auth_timeout must be positive")]
    AuthTimeout,
    /// `limits.max_game_message_bytes` does not fit in a client message.
    #[error(
        "invalid configuration: limits.max_game_message_bytes ({game}) must be under max_client_message_bytes ({client})"
    )]
    GameMessageBytes {
        /// `limits.max_game_message_bytes`.
        game: usize,
        /// `limits.max_client_message_bytes`.
        client: usize,
    },
    /// `listener.max_connections` or `max_rooms` is 0.
    #[error("invalid configuration: {0} must be positive")]
    Capacity(&'static str),
    /// `lifecycle.health_interval` is under 10 ms.
    #[error("invalid configuration: lifecycle.health_interval must be at least 10 ms (got {0:?})")]
    HealthInterval(Duration),
    /// Not `10 ms <= fleet.heartbeat_interval < fleet.ttl`.
    #[error(
        "invalid configuration: fleet: need 10 ms <= heartbeat_interval ({heartbeat:?}) < ttl ({ttl:?})"
    )]
    Heartbeat {
        /// `fleet.heartbeat_interval`.
        heartbeat: Duration,
        /// `fleet.ttl`.
        ttl: Duration,
    },
    /// `fleet.node_id` is empty or longer than the directory allows.
    #[error("invalid configuration: fleet.node_id must be 1 to {max} bytes (got {len})")]
    NodeId {
        /// Its length.
        len: usize,
        /// The directory's limit.
        max: usize,
    },
    /// `fleet.require_seat_token` without `fleet.secret`.
    #[error("invalid configuration: fleet.require_seat_token needs fleet.secret")]
    SeatTokenWithoutSecret,
    /// `fleet.seat_ttl` is under 1 s.
    #[error("invalid configuration: fleet.seat_ttl must be at least 1 s (got {0:?})")]
    SeatTtl(Duration),
    /// `listener.quic_addr` with [`crate::TlsMode::Plain`].
    #[error("invalid configuration: listener.quic_addr needs TLS: QUIC cannot run in plain mode")]
    QuicWithoutTls,
    /// `listener.quic.stream_receive_window` cannot hold one client message
    /// and its length prefix.
    #[error(
        "invalid configuration: listener.quic.stream_receive_window ({window}) must hold one client message and its length ({needed})"
    )]
    QuicStreamWindow {
        /// `listener.quic.stream_receive_window`.
        window: u32,
        /// `4 + limits.max_client_message_bytes`.
        needed: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerConfig;

    /// `check(change, expected)`: the default config with one change is
    /// refused with exactly that error.
    fn check(change: impl FnOnce(&mut ServerConfig), want: ConfigError) {
        let mut c = ServerConfig::default();
        change(&mut c);
        assert_eq!(c.validate(), Err(want));
    }

    #[test]
    fn each_rule_has_its_variant() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        check(
            |c| c.room.tick_rate = 1001,
            ConfigError::Room(RoomConfigError::TickRate(1001)),
        );
        check(
            |c| c.room.baseline_ring = 1,
            ConfigError::Room(RoomConfigError::BaselineRing(1)),
        );
        check(
            |c| c.listener.ws_path = "ws".into(),
            ConfigError::WsPath("ws".into()),
        );
        check(
            |c| c.listener.quic.webtransport_path = Some("wt".into()),
            ConfigError::WebTransportPath("wt".into()),
        );
        check(
            |c| c.listener.max_ws_message_bytes = 63,
            ConfigError::MaxWsMessageBytes(63),
        );
        check(
            |c| c.session.auth_timeout = Duration::ZERO,
            ConfigError::AuthTimeout,
        );
        check(
            |c| c.limits.max_game_message_bytes = 4096,
            ConfigError::GameMessageBytes {
                game: 4096,
                client: 4096,
            },
        );
        check(|c| c.max_rooms = 0, ConfigError::Capacity("max_rooms"));
        check(
            |c| c.listener.max_connections = 0,
            ConfigError::Capacity("listener.max_connections"),
        );
        check(
            |c| c.lifecycle.health_interval = Duration::from_millis(9),
            ConfigError::HealthInterval(Duration::from_millis(9)),
        );
        check(
            |c| c.fleet.require_seat_token = true,
            ConfigError::SeatTokenWithoutSecret,
        );
        check(
            |c| {
                c.listener.tls = crate::TlsMode::Plain;
                c.listener.quic_addr = Some(([127, 0, 0, 1], 0).into());
            },
            ConfigError::QuicWithoutTls,
        );
    }
}
