//! The console's HTTP surface: request → [`ApiReply`], with no hyper types,
//! so every rule (token, methods, bodies, errors) is testable on its own.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ADMIN_PREFIX, Console, ControlError, DIRECTORY_TIMEOUT, MAX_BODY_BYTES, MAX_REASON_BYTES,
};
use crate::directory::NodeInfo;

/// The console page (no secret in it: it asks the operator for the token).
pub(crate) const PAGE_HTML: &str = include_str!("page.html");
/// The console page's script.
pub(crate) const PAGE_JS: &str = include_str!("console.js");

/// The default reason of a kick without one.
const DEFAULT_KICK_REASON: &str = "kicked by an operator";
/// The default reason of a room close without one.
const DEFAULT_CLOSE_REASON: &str = "room closed by an operator";

/// An answer of the console API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiReply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// `Allow` header of a `405`.
    pub(crate) allow: Option<&'static str>,
    /// Whether to send `WWW-Authenticate: Bearer` (a `401`).
    pub(crate) challenge: bool,
}

impl ApiReply {
    fn ok(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            allow: None,
            challenge: false,
        }
    }

    /// A typed error: `{"error": code, "message": …}`.
    pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::ok(status, json!({ "error": code, "message": message.into() }))
    }

    /// `404 console_off`: no admin token is configured.
    pub(crate) fn off() -> Self {
        Self::error(
            404,
            "console_off",
            "the console is off on this node (no admin token configured)",
        )
    }

    /// `413 too_large`.
    pub(crate) fn too_large() -> Self {
        Self::error(
            413,
            "too_large",
            format!("request body over {MAX_BODY_BYTES} bytes"),
        )
    }

    /// `401 unauthorized`, with a `WWW-Authenticate: Bearer` challenge.
    pub(crate) fn unauthorized() -> Self {
        let mut r = Self::error(
            401,
            "unauthorized",
            "send the admin token as Authorization: Bearer <token>",
        );
        r.challenge = true;
        r
    }

    fn method_not_allowed(allow: &'static str) -> Self {
        let mut r = Self::error(405, "method_not_allowed", format!("use {allow}"));
        r.allow = Some(allow);
        r
    }

    fn not_found(path: &str) -> Self {
        Self::error(404, "not_found", format!("no API endpoint at {path}"))
    }

    fn control(e: &ControlError) -> Self {
        let (status, code) = match e {
            ControlError::RoomNotFound(_) => (404, "room_not_found"),
            ControlError::ClientNotFound { .. } => (404, "client_not_found"),
            ControlError::Busy(_) => (503, "room_busy"),
        };
        Self::error(status, code, e.to_string())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Reads a POST body: empty means the defaults; otherwise it must be
/// `application/json` and exactly the fields of `T`.
fn parse_body<T: for<'de> Deserialize<'de> + Default>(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<T, ApiReply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json_type = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(ApiReply::error(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiReply::error(400, "bad_request", format!("invalid JSON body: {e}")))
}

/// A reason as given (trimmed), or `default`; at most
/// [`MAX_REASON_BYTES`] bytes, no control characters.
fn reason(given: Option<String>, default: &str) -> Result<String, ApiReply> {
    let reason = given
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| default.to_owned());
    if reason.len() > MAX_REASON_BYTES {
        return Err(ApiReply::error(
            400,
            "bad_request",
            format!("reason is over {MAX_REASON_BYTES} bytes"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiReply::error(
            400,
            "bad_request",
            "reason has control characters",
        ));
    }
    Ok(reason)
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn node_json(n: &NodeInfo, this: &str) -> Value {
    json!({
        "id": n.id,
        "self": n.id == this,
        "state": n.state.as_str(),
        "wss_url": n.wss_url,
        "quic_url": n.quic_url,
        "capacity": n.capacity,
        "players": n.players,
        "rooms": n.rooms,
    })
}

impl Console {
    /// Whether `authorization` (the raw header) carries the admin token.
    pub(crate) fn authorized(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization.and_then(|v| std::str::from_utf8(v).ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.token.matches(token.trim())
    }

    /// Answers one API request (`path` under `/admin/api/`) from a caller
    /// that [`Console::authorized`] accepted.
    pub(crate) async fn handle(
        &self,
        method: &hyper::Method,
        path: &str,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) -> ApiReply {
        use hyper::Method;
        let rest = path
            .strip_prefix(ADMIN_PREFIX)
            .and_then(|p| p.strip_prefix("/api/"))
            .unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        let get = *method == Method::GET || *method == Method::HEAD;
        let post = *method == Method::POST;
        match parts.as_slice() {
            ["nodes"] if get => self.nodes().await,
            ["rooms"] if get => self.rooms_json(),
            ["rooms", room, "clients"] if get => self.clients_json(room),
            ["rooms", room, "clients", id, "kick"] if post => {
                let body = match parse_body::<ReasonBody>(content_type, body)
                    .and_then(|b| reason(b.reason, DEFAULT_KICK_REASON))
                {
                    Ok(r) => r,
                    Err(e) => return e,
                };
                let Ok(id) = id.parse::<u32>() else {
                    return ApiReply::error(404, "client_not_found", format!("no client {id:?}"));
                };
                match self.rooms.kick(room, id, &body) {
                    Ok(()) => ApiReply::ok(
                        202,
                        json!({ "room": room, "client": id, "kicked": true, "reason": body }),
                    ),
                    Err(e) => ApiReply::control(&e),
                }
            }
            ["rooms", room, "close"] if post => {
                let body = match parse_body::<ReasonBody>(content_type, body)
                    .and_then(|b| reason(b.reason, DEFAULT_CLOSE_REASON))
                {
                    Ok(r) => r,
                    Err(e) => return e,
                };
                match self.rooms.close_room(room, &body) {
                    Ok(()) => ApiReply::ok(
                        202,
                        json!({ "room": room, "closing": true, "reason": body }),
                    ),
                    Err(e) => ApiReply::control(&e),
                }
            }
            ["drain"] if post => {
                if let Err(e) = parse_body::<EmptyBody>(content_type, body) {
                    return e;
                }
                tracing::info!(node = %self.node_id, "console: drain requested");
                (self.drain)();
                ApiReply::ok(202, json!({ "node": self.node_id, "draining": true }))
            }
            ["nodes"] | ["rooms"] | ["rooms", _, "clients"] => ApiReply::method_not_allowed("GET"),
            ["rooms", _, "clients", _, "kick"] | ["rooms", _, "close"] | ["drain"] => {
                ApiReply::method_not_allowed("POST")
            }
            _ => ApiReply::not_found(path),
        }
    }

    /// `GET nodes`: the fleet's nodes and rooms from the directory; this
    /// node as it sees itself when the directory does not answer (or does
    /// not list it yet).
    async fn nodes(&self) -> ApiReply {
        let directory = &self.directory;
        let listed = tokio::time::timeout(DIRECTORY_TIMEOUT, async {
            let nodes = directory.nodes().await?;
            let rooms = directory.rooms().await?;
            Ok::<_, crate::directory::DirectoryError>((nodes, rooms))
        })
        .await;
        let (mut nodes, rooms, error) = match listed {
            Ok(Ok((nodes, rooms))) => (nodes, rooms, None),
            Ok(Err(e)) => (Vec::new(), Vec::new(), Some(e.to_string())),
            Err(_) => (
                Vec::new(),
                Vec::new(),
                Some("the directory did not answer in time".to_owned()),
            ),
        };
        // This node's own figures are fresher than its last heartbeat.
        let local = self.rooms.snapshot();
        let players: usize = local.iter().map(|r| r.players).sum();
        let players = u32::try_from(players).unwrap_or(u32::MAX);
        let open = u32::try_from(local.len()).unwrap_or(u32::MAX);
        match nodes.iter_mut().find(|n| n.id == self.node_id) {
            Some(me) => {
                me.players = players;
                me.rooms = open;
                me.state = self.status.get();
            }
            None => nodes.push(
                NodeInfo::new(self.node_id.clone())
                    .with_state(self.status.get())
                    .with_load(players, open),
            ),
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut rooms = rooms;
        for r in rooms.iter_mut().filter(|r| r.node == self.node_id) {
            if let Some(open) = local.iter().find(|open| open.name == r.name) {
                r.players = u32::try_from(open.players).unwrap_or(u32::MAX);
                r.capacity = u32::try_from(open.capacity).unwrap_or(u32::MAX);
            }
        }
        rooms.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
        let nodes: Vec<Value> = nodes.iter().map(|n| node_json(n, &self.node_id)).collect();
        let rooms: Vec<Value> = rooms
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "node": r.node,
                    "mode": r.mode,
                    "players": r.players,
                    "capacity": r.capacity,
                    "state": r.state.as_str(),
                })
            })
            .collect();
        ApiReply::ok(
            200,
            json!({
                "node": self.node_id,
                "nodes": nodes,
                "fleet_rooms": rooms,
                "directory_error": error,
            }),
        )
    }

    /// `GET rooms`: this node's rooms with their last window's figures.
    fn rooms_json(&self) -> ApiReply {
        let now = Instant::now();
        let rooms: Vec<Value> = self
            .rooms
            .room_rows(now)
            .iter()
            .map(|r| {
                let f = &r.figures;
                json!({
                    "name": r.name,
                    "mode": &*r.mode,
                    "players": r.players,
                    "ticks": f.ticks,
                    "tick_p50_ms": f.tick_p50_us as f64 / 1e3,
                    "tick_p99_ms": f.tick_p99_us as f64 / 1e3,
                    "tick_max_ms": f.tick_max_us as f64 / 1e3,
                    "overruns": f.overruns,
                    "snapshots_per_s": round2(f.snapshots_per_s),
                    "bytes_per_s": round2(f.bytes_per_s),
                })
            })
            .collect();
        ApiReply::ok(
            200,
            json!({
                "node": self.node_id,
                "state": self.status.get().as_str(),
                "rooms": rooms,
            }),
        )
    }

    /// `GET rooms/{name}/clients`.
    fn clients_json(&self, room: &str) -> ApiReply {
        let now = Instant::now();
        let Some(rows) = self.rooms.client_rows(room, now) else {
            return ApiReply::control(&ControlError::RoomNotFound(room.to_owned()));
        };
        let clients: Vec<Value> = rows
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "rtt_ms": c.figures.rtt.map(ms),
                    "snapshots_per_s": round2(c.figures.snapshots_per_s),
                    "bytes_per_s": round2(c.figures.bytes_per_s),
                    "connected_s": (c.connected.as_secs_f64() * 10.0).round() / 10.0,
                })
            })
            .collect();
        ApiReply::ok(200, json!({ "room": room, "clients": clients }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_strict() {
        let ct = Some(&b"application/json"[..]);
        assert!(parse_body::<ReasonBody>(None, b"").is_ok());
        assert!(parse_body::<ReasonBody>(ct, br#"{"reason":"x"}"#).is_ok());
        let e = parse_body::<ReasonBody>(ct, br#"{"reason":"x","extra":1}"#).unwrap_err();
        assert_eq!((e.status, &e.body["error"]), (400, &json!("bad_request")));
        let e = parse_body::<ReasonBody>(ct, b"{").unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse_body::<ReasonBody>(Some(b"text/plain"), br#"{"reason":"x"}"#).unwrap_err();
        assert_eq!(e.status, 415);
        let e = parse_body::<EmptyBody>(ct, br#"{"now":true}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(parse_body::<EmptyBody>(ct, b"{}").is_ok());
    }

    #[test]
    fn reasons_are_bounded() {
        assert_eq!(reason(None, "d").unwrap(), "d");
        assert_eq!(reason(Some("  ".into()), "d").unwrap(), "d");
        assert_eq!(reason(Some(" cheating ".into()), "d").unwrap(), "cheating");
        assert_eq!(reason(Some("x".repeat(101)), "d").unwrap_err().status, 400);
        assert_eq!(reason(Some("a\nb".into()), "d").unwrap_err().status, 400);
    }
}
