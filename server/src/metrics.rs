//! Prometheus metrics, recorded with the `metrics` crate.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `tickwire_connected_clients` | gauge | sessions past the handshake |
//! | `tickwire_connections` | gauge | open TCP connections |
//! | `tickwire_sessions_total{transport}` | counter | sessions welcomed, by transport: `wss`, `quic`, `webtransport` |
//! | `tickwire_rooms` | gauge | open rooms |
//! | `tickwire_tick_seconds` | histogram | time spent in one room tick |
//! | `tickwire_tick_overruns_total` | counter | ticks that started late by more than a period |
//! | `tickwire_snapshot_bytes_total` | counter | snapshot bytes queued for sending |
//! | `tickwire_inputs_dropped_total` | counter | inputs dropped (queue full) |
//! | `tickwire_disconnects_total{reason}` | counter | closed sessions by close reason |
//! | `tickwire_auth_timeouts_total` | counter | joins rejected because the authenticator took longer than `auth_timeout` |
//! | `tickwire_room_configs_refused_total` | counter | rooms not opened because the config `Server::with_room_config` gave them is invalid |
//! | `tickwire_node_state` | gauge | the node's lifecycle state: 0 starting, 1 ready, 2 draining, 3 stopped |
//!
//! Without an installed recorder (no `--metrics-addr`) these are no-ops.

use std::net::SocketAddr;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;
use tickwire_shared::CloseCode;

/// Installs the Prometheus exporter, serving `/metrics` on `addr`.
///
/// # Errors
/// When the exporter cannot bind or a recorder is already installed.
pub fn install(addr: SocketAddr) -> Result<(), metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("tickwire_tick_seconds".into()),
            &[
                0.0005, 0.001, 0.002, 0.004, 0.008, 0.012, 0.016, 0.025, 0.05, 0.1,
            ],
        )?
        .install()
}

pub(crate) fn clients(delta: f64) {
    gauge!("tickwire_connected_clients").increment(delta);
}

/// A session was welcomed over `transport` (`wss`, `quic`, `webtransport`).
pub(crate) fn session_started(transport: &'static str) {
    counter!("tickwire_sessions_total", "transport" => transport).increment(1);
}

pub(crate) fn connections(delta: f64) {
    gauge!("tickwire_connections").increment(delta);
}

pub(crate) fn rooms(delta: f64) {
    gauge!("tickwire_rooms").increment(delta);
}

pub(crate) fn node_state(value: f64) {
    gauge!("tickwire_node_state").set(value);
}

pub(crate) fn tick_seconds(secs: f64) {
    histogram!("tickwire_tick_seconds").record(secs);
}

pub(crate) fn tick_overrun() {
    counter!("tickwire_tick_overruns_total").increment(1);
}

pub(crate) fn snapshot_bytes(n: u64) {
    counter!("tickwire_snapshot_bytes_total").increment(n);
}

pub(crate) fn inputs_dropped(n: u64) {
    counter!("tickwire_inputs_dropped_total").increment(n);
}

pub(crate) fn auth_timeout() {
    counter!("tickwire_auth_timeouts_total").increment(1);
}

pub(crate) fn room_config_refused() {
    counter!("tickwire_room_configs_refused_total").increment(1);
}

pub(crate) fn disconnect(code: CloseCode) {
    counter!("tickwire_disconnects_total", "reason" => reason_label(code)).increment(1);
}

fn reason_label(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Normal => "normal",
        CloseCode::ServerShutdown => "server_shutdown",
        CloseCode::ProtocolError => "protocol_error",
        CloseCode::UnsupportedData => "unsupported_data",
        CloseCode::PolicyViolation => "policy_violation",
        CloseCode::MessageTooBig => "message_too_big",
        CloseCode::InternalError => "internal_error",
        CloseCode::HandshakeTimeout => "handshake_timeout",
        CloseCode::IdleTimeout => "idle_timeout",
        CloseCode::InputFlood => "input_flood",
        CloseCode::SlowConsumer => "slow_consumer",
        CloseCode::Kicked => "kicked",
        CloseCode::Rejected => "rejected",
        CloseCode::RoomClosed => "room_closed",
        CloseCode::Replaced => "replaced",
        CloseCode::MessageFlood => "message_flood",
        _ => "other",
    }
}
