//! The figures the page and the tests read (`window.tickwire.stats()`),
//! and their JSON, written by hand (no serializer in the bundle).

use std::fmt::Write as _;

/// The figures the page and the tests read (`window.tickwire.stats()`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// True while a session is established.
    pub connected: bool,
    /// The banner's words, or "playing".
    pub status: String,
    /// The player's name.
    pub name: String,
    /// The newest applied snapshot tick.
    pub tick: Option<u32>,
    /// Smoothed round trip, ms.
    pub rtt_ms: Option<f64>,
    /// Snapshots applied per second.
    pub snapshots_per_sec: f64,
    /// Bytes received per second.
    pub bytes_per_sec: f64,
    /// Prediction corrections per second.
    pub corrections_per_sec: f64,
    /// Rendered frames per second.
    pub fps: f64,
    /// The local player's entity.
    pub my_entity: Option<u32>,
    /// The local player's client id.
    pub client_id: Option<u32>,
    /// Entities in the newest snapshot.
    pub entity_count: usize,
    /// Players in the newest snapshot (the local one included).
    pub visible_players: usize,
    /// Projectiles in the newest snapshot.
    pub projectiles: usize,
    /// Inputs sent but not yet applied by the server.
    pub unacked_inputs: usize,
    /// The interpolation delay, ms.
    pub interp_delay_ms: f64,
    /// Connection attempts since the last established session.
    pub reconnect_attempts: u32,
    /// The transport of the current (or last) attempt: `webtransport` or
    /// `websocket`.
    pub transport: Option<&'static str>,
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_num(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            let _ = write!(out, "{}", (v * 100.0).round() / 100.0);
        }
        _ => out.push_str("null"),
    }
}

impl Stats {
    /// The stats as a JSON object.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut o = String::from("{");
        let field = |o: &mut String, key: &str| {
            if o.len() > 1 {
                o.push(',');
            }
            json_str(o, key);
            o.push(':');
        };
        field(&mut o, "connected");
        o.push_str(if self.connected { "true" } else { "false" });
        field(&mut o, "status");
        json_str(&mut o, &self.status);
        field(&mut o, "name");
        json_str(&mut o, &self.name);
        field(&mut o, "transport");
        match self.transport {
            Some(t) => json_str(&mut o, t),
            None => o.push_str("null"),
        }
        let nums: [(&str, Option<f64>); 14] = [
            ("tick", self.tick.map(f64::from)),
            ("rtt_ms", self.rtt_ms),
            ("snapshots_per_sec", Some(self.snapshots_per_sec)),
            ("bytes_per_sec", Some(self.bytes_per_sec)),
            ("corrections_per_sec", Some(self.corrections_per_sec)),
            ("fps", Some(self.fps)),
            ("my_entity", self.my_entity.map(f64::from)),
            ("client_id", self.client_id.map(f64::from)),
            ("entity_count", Some(self.entity_count as f64)),
            ("visible_players", Some(self.visible_players as f64)),
            ("projectiles", Some(self.projectiles as f64)),
            ("unacked_inputs", Some(self.unacked_inputs as f64)),
            ("interp_delay_ms", Some(self.interp_delay_ms)),
            (
                "reconnect_attempts",
                Some(f64::from(self.reconnect_attempts)),
            ),
        ];
        for (key, v) in nums {
            field(&mut o, key);
            json_num(&mut o, v);
        }
        o.push('}');
        o
    }
}
