//! Network figures of a [`Connection`]: round trip, snapshots and bytes per
//! second, the newest tick, entities, inputs in flight and reconnects.

use serde::Serialize;
use tickwire_shared::GameProtocol;

use crate::connection::Connection;

/// A connection's figures at one moment (`performance.now()` time). Field
/// names are those of the JavaScript object the JS API returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetStats {
    /// [`crate::connection::Status::name`]: `idle`, `connecting`,
    /// `connected`, `waiting` or `stopped`.
    pub status: &'static str,
    /// True while a session is established.
    pub connected: bool,
    /// The newest applied snapshot tick.
    pub tick: Option<u32>,
    /// Smoothed round trip in milliseconds (RFC 6298 style, α = 1/8).
    pub rtt_ms: Option<f64>,
    /// Snapshots applied during the last second.
    pub snapshots_per_sec: f64,
    /// Bytes received during the last second.
    pub bytes_in_per_sec: f64,
    /// Bytes sent during the last second.
    pub bytes_out_per_sec: f64,
    /// Entities in the client's world.
    pub entity_count: usize,
    /// Inputs sent but not yet applied by the server.
    pub pending_inputs: usize,
    /// Connection attempts since the last established session.
    pub reconnect_attempts: u32,
    /// [`crate::transport::TransportKind::name`] of the current (or last)
    /// attempt: `websocket` or `webtransport`.
    pub transport: Option<&'static str>,
}

impl NetStats {
    /// The figures of `connection` at `now_ms`.
    pub fn of<G: GameProtocol>(connection: &mut Connection<G>, now_ms: f64) -> Self {
        let status = connection.status().name();
        let reconnect_attempts = connection.reconnect_attempts();
        let transport = connection.transport().map(|k| k.name());
        let (entity_count, pending_inputs, tick, connected) = match connection.established() {
            Some(s) => (
                s.world().len(),
                s.pending_inputs().len(),
                s.world().tick(),
                true,
            ),
            None => (0, 0, None, false),
        };
        let Some(net) = connection.net_mut() else {
            return Self {
                status,
                reconnect_attempts,
                transport,
                ..Self::default()
            };
        };
        Self {
            status,
            connected,
            tick,
            rtt_ms: net.rtt_ms(),
            snapshots_per_sec: net.snapshots_per_sec(now_ms),
            bytes_in_per_sec: net.bytes_in_per_sec(now_ms),
            bytes_out_per_sec: net.bytes_out_per_sec(now_ms),
            entity_count,
            pending_inputs,
            reconnect_attempts,
            transport,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written `TickwireStats` declaration names every field.
    #[test]
    fn the_typescript_declaration_names_every_field() {
        let json = serde_json::to_value(NetStats::default()).unwrap();
        let decl = crate::js::TS_COMMON
            .split("export interface TickwireStats")
            .nth(1)
            .unwrap();
        let decl = &decl[..decl.find('}').unwrap()];
        let fields = json.as_object().unwrap();
        for key in fields.keys() {
            assert!(decl.contains(&format!("{key}:")), "{key} missing in {decl}");
        }
        assert_eq!(decl.matches(':').count(), fields.len(), "{decl}");
    }
}
