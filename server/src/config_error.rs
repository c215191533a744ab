//! Why a [`crate::ServerConfig`] cannot work: one variant per rule of
//! [`crate::ServerConfig::validate`], each with the values it saw.

use std::time::Duration;

/// A configuration value that cannot work. Each variant is one rule, with
/// the offending values.
///
/// ```
/// use tickwire_server::{ConfigError, ServerConfig};
/// let err = ServerConfig::default().with_tick_rate(0).validate().unwrap_err();
/// assert_eq!(err, ConfigError::TickRate(0));
/// assert_eq!(err.to_string(), "invalid configuration: tick_rate must be 1..=1000 (got 0)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `tick_rate` is not 1..=1000.
    #[error("invalid configuration: tick_rate must be 1..=1000 (got {0})")]
    TickRate(u16),
    /// `snapshot_interval` is 0.
    #[error("invalid configuration: snapshot_interval must be at least 1")]
    SnapshotInterval,
    /// `max_snapshot_slowdown` is 0.
    #[error("invalid configuration: max_snapshot_slowdown must be at least 1 (1: never slow down)")]
    MaxSnapshotSlowdown,
    /// `client_bytes_per_sec` is `Some(0)`.
    #[error("invalid configuration: client_bytes_per_sec must be positive (or none for no budget)")]
    ClientBytesPerSec,
    /// With a byte budget, `budget_max_wait` is longer than half the ring.
    #[error(
        "invalid configuration: budget_max_wait ({wait_ticks} ticks) must be at most half the ring \
         (baseline_ring × snapshot_interval / 2 = {max_ticks} ticks)"
    )]
    BudgetMaxWait {
        /// `budget_max_wait` in ticks.
        wait_ticks: u64,
        /// Half the ring, in ticks.
        max_ticks: u64,
    },
    /// `baseline_ring` is under 2.
    #[error("invalid configuration: baseline_ring must be at least 2 (got {0})")]
    BaselineRing(usize),
    /// `baseline_snap × snapshot_interval` exceeds the ack window.
    #[error(
        "invalid configuration: baseline_snap × snapshot_interval must be at most {max} ticks (got {ticks})"
    )]
    BaselineSnap {
        /// `baseline_snap × snapshot_interval`.
        ticks: u32,
        /// The ack window's span.
        max: u32,
    },
    /// `ws_path` does not start with `/`.
    #[error("invalid configuration: ws_path must start with '/' (got {0:?})")]
    WsPath(String),
    /// `max_ws_message_bytes` is under 64.
    #[error("invalid configuration: max_ws_message_bytes must be at least 64 (got {0})")]
    MaxWsMessageBytes(usize),
    /// Not `1 <= max_inputs_per_tick <= max_queued_inputs`.
    #[error(
        "invalid configuration: need 1 <= max_inputs_per_tick ({per_tick}) <= max_queued_inputs ({queued})"
    )]
    InputQueue {
        /// `max_inputs_per_tick`.
        per_tick: usize,
        /// `max_queued_inputs`.
        queued: usize,
    },
    /// `auth_timeout` is zero.
    #[error("invalid configuration: auth_timeout must be positive")]
    AuthTimeout,
    /// A game-message limit (`burst`, `max_queued`, `max_per_tick`) is 0.
    #[error("invalid configuration: game_messages.{0} must be positive")]
    GameMessages(&'static str),
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
    /// `max_players_per_room`, `max_connections` or `max_rooms` is 0.
    #[error("invalid configuration: {0} must be positive")]
    Capacity(&'static str),
    /// `health_interval` is under 10 ms.
    #[error("invalid configuration: health_interval must be at least 10 ms (got {0:?})")]
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
    /// `quic_addr` with [`crate::TlsMode::Plain`].
    #[error("invalid configuration: quic_addr needs TLS: QUIC cannot run in plain mode")]
    QuicWithoutTls,
    /// `quic.stream_receive_window` cannot hold one client message and its
    /// length prefix.
    #[error(
        "invalid configuration: quic.stream_receive_window ({window}) must hold one client message and its length ({needed})"
    )]
    QuicStreamWindow {
        /// `quic.stream_receive_window`.
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
        check(|c| c.tick_rate = 1001, ConfigError::TickRate(1001));
        check(|c| c.snapshot_interval = 0, ConfigError::SnapshotInterval);
        check(|c| c.baseline_ring = 1, ConfigError::BaselineRing(1));
        check(
            |c| c.baseline_snap = 40,
            ConfigError::BaselineSnap { ticks: 40, max: 31 },
        );
        check(
            |c| c.ws_path = "ws".into(),
            ConfigError::WsPath("ws".into()),
        );
        check(
            |c| c.max_queued_inputs = 1,
            ConfigError::InputQueue {
                per_tick: 2,
                queued: 1,
            },
        );
        check(
            |c| c.auth_timeout = Duration::ZERO,
            ConfigError::AuthTimeout,
        );
        check(
            |c| c.game_messages.max_per_tick = 0,
            ConfigError::GameMessages("max_per_tick"),
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
            |c| c.fleet.require_seat_token = true,
            ConfigError::SeatTokenWithoutSecret,
        );
    }
}
