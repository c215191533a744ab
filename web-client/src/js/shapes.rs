//! The shapes of what the JS API takes and gives, apart from the game's
//! own types: the TypeScript declarations every game's class shares, the
//! options of `connect` (with the transport policy they make), and the
//! status object.

use serde::{Deserialize, Serialize};

use crate::connection::Status;
use crate::reconnect::Ending;
use crate::transport::{TransportPolicy, UnknownTransport};

/// The TypeScript declarations shared by every game's class; the macro
/// writes them into the game's `.d.ts` (with the game's aliases).
pub const TS_COMMON: &str = r#"
/** One entity: its id and its state (a plain object of the game's type; read-only, shared until the entity changes). */
export interface TickwireEntity<S> { id: number; state: S }
/** The ids that one applied snapshot added, changed and removed, sorted; read the states with `entity(id)`. */
export interface TickwireChanges {
  tick: number;
  added: number[];
  changed: number[];
  removed: number[];
}
/**
 * How to join: `auth` goes to the server's auth hook, `room` names a room, `seatToken` is a matchmaker's ticket.
 * `transport` picks the transport: `"auto"` (the default) tries WebTransport first and falls back to WebSocket
 * when the browser lacks it, it fails, or it is not welcomed within `webTransportDeadlineMs` (default 2500);
 * a failure is remembered for `rememberFailureMs` (default 600000, in localStorage per server) so that later
 * connects use WebSocket at once. `"websocket"` and `"webtransport"` use that transport only.
 */
export interface TickwireConnectOptions {
  auth?: string;
  room?: string;
  seatToken?: string;
  transport?: "auto" | "websocket" | "webtransport";
  webTransportDeadlineMs?: number;
  rememberFailureMs?: number;
}
/** Where the connection stands; `reason` says why it ended, `retryInMs` when the next attempt starts. */
export interface TickwireStatus {
  status: "idle" | "connecting" | "connected" | "waiting" | "stopped";
  reason?: string;
  retryInMs?: number;
}
/** Network figures (rates over the last second). */
export interface TickwireStats {
  status: "idle" | "connecting" | "connected" | "waiting" | "stopped";
  connected: boolean;
  tick: number | undefined;
  rttMs: number | undefined;
  snapshotsPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  entityCount: number;
  pendingInputs: number;
  reconnectAttempts: number;
  transport: "websocket" | "webtransport" | undefined;
}
"#;

/// The options of `connect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ConnectOptions {
    pub(super) auth: Option<String>,
    pub(super) room: Option<String>,
    pub(super) seat_token: Option<String>,
    pub(super) transport: Option<String>,
    pub(super) web_transport_deadline_ms: Option<f64>,
    pub(super) remember_failure_ms: Option<f64>,
}

impl ConnectOptions {
    /// The transport policy these options ask for.
    pub(super) fn policy(&self) -> Result<TransportPolicy, String> {
        let mut policy = TransportPolicy::default();
        if let Some(t) = &self.transport {
            policy.mode = t.parse().map_err(|e: UnknownTransport| e.to_string())?;
        }
        let ms = |name: &str, v: Option<f64>, default: f64| match v {
            None => Ok(default),
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            // (No `{v}`: float formatting would weigh on the bundle.)
            Some(_) => Err(format!("{name} is not a number of milliseconds >= 0")),
        };
        policy.deadline_ms = ms(
            "webTransportDeadlineMs",
            self.web_transport_deadline_ms,
            policy.deadline_ms,
        )?;
        policy.remember_failure_ms = ms(
            "rememberFailureMs",
            self.remember_failure_ms,
            policy.remember_failure_ms,
        )?;
        Ok(policy)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatusView {
    pub(super) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_ms: Option<f64>,
}

/// Words for how a connection ended.
fn ending_reason(ending: &Ending) -> String {
    match ending {
        Ending::CannotConnect => "cannot connect".to_owned(),
        Ending::Rejected { code, message } => format!("rejected ({code:?}): {message}"),
        Ending::Closed { code, reason } => format!("closed ({code:?}): {reason}"),
        Ending::ProtocolError(msg) => format!("protocol error: {msg}"),
        Ending::Lost => "connection lost".to_owned(),
        Ending::Left => "left".to_owned(),
    }
}

pub(super) fn status_view(status: &Status, now_ms: f64) -> StatusView {
    let (reason, retry_in_ms) = match status {
        Status::Waiting {
            ending,
            retry_at_ms,
        } => (
            Some(ending_reason(ending)),
            Some((retry_at_ms - now_ms).max(0.0)),
        ),
        Status::Stopped(ending) => (Some(ending_reason(ending)), None),
        _ => (None, None),
    };
    StatusView {
        status: status.name(),
        reason,
        retry_in_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{DEFAULT_DEADLINE_MS, DEFAULT_REMEMBER_MS, TransportMode};

    fn options(
        transport: Option<&str>,
        deadline: Option<f64>,
        remember: Option<f64>,
    ) -> ConnectOptions {
        ConnectOptions {
            transport: transport.map(str::to_owned),
            web_transport_deadline_ms: deadline,
            remember_failure_ms: remember,
            ..ConnectOptions::default()
        }
    }

    #[test]
    fn connect_options_make_the_transport_policy() {
        assert_eq!(
            options(None, None, None).policy(),
            Ok(TransportPolicy::default())
        );
        assert_eq!(
            options(Some("websocket"), Some(1500.0), Some(0.0)).policy(),
            Ok(TransportPolicy {
                mode: TransportMode::WebSocket,
                deadline_ms: 1500.0,
                remember_failure_ms: 0.0,
            })
        );
        let p = options(Some("webtransport"), None, None).policy().unwrap();
        assert_eq!(
            (p.mode, p.deadline_ms, p.remember_failure_ms),
            (
                TransportMode::WebTransport,
                DEFAULT_DEADLINE_MS,
                DEFAULT_REMEMBER_MS
            )
        );
    }

    #[test]
    fn bad_transport_options_are_refused_with_their_name() {
        let e = options(Some("h3"), None, None).policy().unwrap_err();
        assert!(e.contains("unknown transport \"h3\""), "{e}");
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = options(None, Some(bad), None).policy().unwrap_err();
            assert!(e.starts_with("webTransportDeadlineMs"), "{e}");
            let e = options(None, None, Some(bad)).policy().unwrap_err();
            assert!(e.starts_with("rememberFailureMs"), "{e}");
        }
    }
}
