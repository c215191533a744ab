//! The JSON endpoints on the server's origin: `POST /matchmake` (the
//! fleet's matchmaker) and the console under `/admin` (its page, and its API
//! behind the admin token), with bounded request bodies.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{Body, HttpContext, add_common_headers, method_not_allowed, simple};
use crate::console::{self, ApiReply};
use crate::matchmaking::{self, MatchmakeError, Reply};

/// `POST /matchmake`: reads at most [`matchmaking::MAX_REQUEST_BYTES`] of
/// body and answers the matchmaker's JSON.
pub(super) async fn matchmake(req: Request<Incoming>, ctx: &HttpContext) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let Some(matchmaker) = &ctx.matchmaker else {
        return json(&Reply::from_result(&Err(MatchmakeError::Off)));
    };
    let body = match read_body(req, matchmaking::MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return json(&Reply::from_result(&Err(MatchmakeError::TooLarge)));
        }
        Err(BodyError::Unreadable) => {
            let e = MatchmakeError::BadRequest("the request body could not be read".to_owned());
            return json(&Reply::from_result(&Err(e)));
        }
    };
    json(&matchmaker.reply(&body).await)
}

/// Why [`read_body`] read no body.
enum BodyError {
    /// Over the limit (declared or sent).
    TooLarge,
    /// The peer failed mid-body.
    Unreadable,
}

/// Reads at most `max` bytes of body: a larger `Content-Length` is refused
/// before reading, and a body that grows past `max` stops being read.
async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, BodyError> {
    use http_body_util::{BodyExt as _, Limited};
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// Whether `path` belongs to the console (`/admin` and below).
pub(super) fn is_admin_path(path: &str) -> bool {
    path == console::ADMIN_PREFIX
        || path
            .strip_prefix(console::ADMIN_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The console: its page (no secret in it) and its API behind the admin
/// token. Everything answers `404` when the console is off.
pub(super) async fn admin(req: Request<Incoming>, ctx: &HttpContext) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let api = path.starts_with("/admin/api/") || path == "/admin/api";
    let Some(console) = &ctx.console else {
        return if api {
            admin_json(&ApiReply::off())
        } else {
            simple(StatusCode::NOT_FOUND, "not found")
        };
    };
    if !api {
        let is_get = req.method() == Method::GET || req.method() == Method::HEAD;
        let (body, content_type) = match path.as_str() {
            "/admin" | "/admin/" | "/admin/index.html" => {
                (console::PAGE_HTML, "text/html; charset=utf-8")
            }
            "/admin/console.js" => (console::PAGE_JS, "text/javascript; charset=utf-8"),
            _ => return simple(StatusCode::NOT_FOUND, "not found"),
        };
        if !is_get {
            return method_not_allowed("GET, HEAD");
        }
        let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        let h = res.headers_mut();
        add_common_headers(h);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                 form-action 'none'; frame-ancestors 'none'",
            ),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        return res;
    }
    if !console.authorized(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    ) {
        tracing::debug!(path = %path, "console: unauthorized request");
        return admin_json(&ApiReply::unauthorized());
    }
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec());
    let body = match read_body(req, console::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return admin_json(&ApiReply::too_large()),
        Err(BodyError::Unreadable) => {
            return admin_json(&ApiReply::error(
                400,
                "bad_request",
                "the request body could not be read",
            ));
        }
    };
    let reply = console
        .handle(&method, &path, content_type.as_deref(), &body)
        .await;
    admin_json(&reply)
}

/// A JSON response of the console API.
fn admin_json(reply: &ApiReply) -> Response<Body> {
    let body = serde_json::to_vec(&reply.body).unwrap_or_default();
    let mut res = json(&Reply {
        status: reply.status,
        retry_after: None,
        body: String::new(),
    });
    *res.body_mut() = Full::new(Bytes::from(body));
    let h = res.headers_mut();
    if reply.challenge {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tickwire console\""),
        );
    }
    if let Some(allow) = reply.allow {
        h.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    res
}

/// A JSON response of the matchmaker.
fn json(reply: &Reply) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from(reply.body.clone())));
    *res.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}
