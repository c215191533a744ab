//! The WebSocket upgrade on the server's origin: RFC 6455 §4.2.1 checks,
//! the `Origin` check against the [`super::OriginPolicy`], and the `101`
//! whose connection [`super::serve`] then hands over.

use std::sync::PoisonError;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{Body, HttpContext, UpgradeInfo, UpgradeSlot, method_not_allowed, simple};

/// Validates an upgrade request, checks its origin, and answers 101 (after
/// parking the upgrade in `slot`), 400, 403 or 405.
pub(super) fn websocket(
    req: &mut Request<Incoming>,
    ctx: &HttpContext,
    slot: &UpgradeSlot,
) -> Response<Body> {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    let key = match check_upgrade(req) {
        Ok(key) => key,
        Err(rejection) => {
            tracing::debug!(reason = rejection.reason, "bad websocket upgrade");
            let mut res = simple(StatusCode::BAD_REQUEST, rejection.reason);
            if rejection.advertise_version {
                res.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            return res;
        }
    };

    let headers = req.headers();
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (None, _) => None,
        (Some(value), None) => Some(value.to_str().ok()),
        (Some(_), Some(_)) => Some(None), // several Origin headers: not a browser
    };
    let allowed = match origin {
        None => ctx.origin.is_allowed(None),
        Some(Some(origin)) => ctx.origin.is_allowed(Some(origin)),
        Some(None) => false,
    };
    if !allowed {
        tracing::debug!(
            origin = ?headers.get(header::ORIGIN),
            "websocket upgrade from a foreign origin refused"
        );
        return simple(StatusCode::FORBIDDEN, "origin not allowed");
    }

    let accept = match HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        Ok(accept) => accept,
        // Base64 is always a valid header value; kept total anyway.
        Err(_) => return simple(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    };
    let info = UpgradeInfo {
        origin: origin.flatten().map(str::to_owned),
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|ua| String::from_utf8_lossy(ua.as_bytes()).into_owned()),
    };

    let on_upgrade = hyper::upgrade::on(&mut *req);
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((on_upgrade, info));

    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    res
}

/// Why an upgrade request is malformed.
struct Rejection {
    reason: &'static str,
    /// Whether to send `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2).
    advertise_version: bool,
}

impl Rejection {
    fn new(reason: &'static str) -> Self {
        Self {
            reason,
            advertise_version: false,
        }
    }
}

/// Checks RFC 6455 §4.2.1 and returns the `Sec-WebSocket-Key` value.
fn check_upgrade(req: &Request<Incoming>) -> Result<HeaderValue, Rejection> {
    if req.version() != Version::HTTP_11 {
        return Err(Rejection::new("websocket upgrade requires HTTP/1.1"));
    }
    let headers = req.headers();
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(Rejection::new("expected Upgrade: websocket"));
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(Rejection::new("expected Connection: upgrade"));
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes() == b"13" => {}
        _ => {
            return Err(Rejection {
                reason: "expected Sec-WebSocket-Version: 13",
                advertise_version: true,
            });
        }
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        _ => return Err(Rejection::new("expected one Sec-WebSocket-Key")),
    };
    // The key must be base64 of 16 bytes: exactly 24 characters.
    use base64::Engine as _;
    let mut decoded = [0u8; 18];
    match base64::engine::general_purpose::STANDARD.decode_slice(key.as_bytes(), &mut decoded) {
        Ok(16) if key.len() == 24 => Ok(key.clone()),
        _ => Err(Rejection::new("malformed Sec-WebSocket-Key")),
    }
}

/// Whether any comma-separated token of header `name` equals `token`
/// (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
