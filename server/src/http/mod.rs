//! The server's single origin: HTTP/1.1 for static files, `/healthz` and
//! `/readyz`, and
//! the WebSocket upgrade (with an Origin check) on the same port.
//!
//! One TCP connection (already wrapped in TLS, or plain in an explicit plain
//! mode) is handed to [`serve`], which runs hyper's HTTP/1.1 server on it:
//!
//! ```text
//!  IO ──► serve(io, ctx) ──► hyper http1 (keep-alive)
//!                              ├─ HTTP/1.1 without Host, or two Hosts → 400
//!                              ├─ GET /healthz          → 200 "ok" (liveness)
//!                              ├─ GET /readyz           → 200 "ready" when the node is ready, else 503 "starting" | "draining" | "stopped"
//!                              ├─ POST /matchmake       → JSON ticket, or a JSON error (crate::matchmaking; 404 without a fleet secret)
//!                              ├─ /admin/, /admin/api/… → the fleet console (crate::console; 404 without an admin token)
//!                              ├─ GET|HEAD <static>     → 200 from the in-memory StaticFiles table, or 404
//!                              ├─ other methods         → 405
//!                              └─ GET <ws_path> upgrade → 400 malformed · 403 foreign Origin · 101
//!                                                          └─► HttpOutcome::WebSocket(stream, info)
//!  connection ends without an upgrade ─────────────────────► HttpOutcome::Closed
//!
//!  IO ──► serve_unavailable(io, secs) ──► every request → 503, Retry-After, Connection: close
//! ```
//!
//! Static files are read once at startup into memory ([`StaticFiles::load`])
//! and served only from that table, so no request path ever reaches the file
//! system and path traversal is impossible by construction. A symbolic link
//! is loaded only when it resolves to a file inside the static root.
//!
//! The WebSocket stream is built with [`websocket_config`]'s small buffers
//! and message limits; extensions (permessage-deflate) and subprotocols are
//! never negotiated.
//!
//! `serve` applies no timeouts. The caller bounds it, typically with
//! [`tokio::time::timeout`] around the whole call (a handshake deadline),
//! which also bounds idle keep-alive connections.
//!
//! # Example
//!
//! ```no_run
//! use std::{path::Path, sync::Arc, time::Duration};
//! use tickwire_server::http::{self, HttpContext, HttpOutcome, OriginPolicy, StaticFiles};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let addr = listener.local_addr()?;
//! let ctx = Arc::new(HttpContext::new(
//!     StaticFiles::load(Path::new("www"), 32 * 1024 * 1024)?,
//!     OriginPolicy::for_server(addr, false, Vec::new()),
//! ));
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let ctx = Arc::clone(&ctx);
//!     tokio::spawn(async move {
//!         match tokio::time::timeout(Duration::from_secs(10), http::serve(tcp, ctx)).await {
//!             Ok(Ok(HttpOutcome::WebSocket(_ws, _info))) => { /* hand the stream to a session */ }
//!             Ok(Ok(HttpOutcome::Closed)) => {}
//!             Ok(Err(e)) => tracing::debug!(error = %e, "http connection failed"),
//!             Err(_) => tracing::debug!("http connection timed out"),
//!         }
//!     });
//! }
//! # }
//! ```

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::console::Console;
use crate::lifecycle::{NodeState, NodeStatus};
use crate::matchmaking::Matchmaker;
use crate::transport::webtransport::discovery::{self as webtransport, Discovery, DiscoveryError};

mod api;
mod origin;
mod static_files;
mod upgrade;

pub use origin::OriginPolicy;
pub use static_files::StaticFiles;

use api::{admin, is_admin_path, matchmake};
use upgrade::websocket;

/// Path of the matchmaking endpoint (`POST`).
pub const MATCHMAKE_PATH: &str = "/matchmake";
/// Default path of the WebSocket endpoint.
pub const DEFAULT_WS_PATH: &str = "/ws";
/// Default (and minimum) limit on the size of a request head (request line
/// plus headers), in bytes. hyper cannot go below 8 KiB.
pub const DEFAULT_MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// Default limit on one WebSocket message (and frame), in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Read buffer capacity of each WebSocket, in bytes.
pub const WS_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Write buffer target of each WebSocket, in bytes.
pub const WS_WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// The `Retry-After` (seconds) of the `503` that [`serve_unavailable`] sends.
pub const SERVER_FULL_RETRY_AFTER_SECS: u32 = 5;

/// Largest WebSocket frame header: 2 bytes + 8 bytes length + 4 bytes mask.
const WS_MAX_FRAME_HEADER_BYTES: usize = 14;
/// hyper's lower bound for `max_buf_size`; smaller values make it panic.
const HYPER_MIN_BUF_SIZE: usize = 8 * 1024;

/// The WebSocket stream [`serve`] hands over after a successful upgrade.
pub type ServerWebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Errors from loading static files or serving a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Reading the static directory or one of its files failed.
    #[error("cannot read static path {}: {source}", path.display())]
    StaticRead {
        /// The file or directory.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: io::Error,
    },
    /// The static root is not a directory.
    #[error("static root {} is not a directory", path.display())]
    StaticNotADirectory {
        /// The path as given.
        path: PathBuf,
    },
    /// A file or directory name under the static root is not UTF-8, so it
    /// has no URL path.
    #[error("static path {} has a non-UTF-8 name", path.display())]
    StaticNonUtf8Name {
        /// The offending path.
        path: PathBuf,
    },
    /// The static files together exceed the configured cap.
    #[error(
        "static files exceed {max_total_bytes} bytes in total (at least {total_bytes} bytes, reached at {})",
        path.display()
    )]
    StaticTooLarge {
        /// The file that crossed the cap.
        path: PathBuf,
        /// Bytes counted so far, including that file (a lower bound).
        total_bytes: u64,
        /// The cap passed to [`StaticFiles::load`].
        max_total_bytes: u64,
    },
    /// [`HttpContext::ws_config`] would make tungstenite panic: its
    /// `max_write_buffer_size` must exceed `write_buffer_size`.
    #[error(
        "invalid WebSocket config: max_write_buffer_size ({max_write_buffer_size}) must exceed write_buffer_size ({write_buffer_size})"
    )]
    InvalidWebSocketConfig {
        /// The configured write buffer target.
        write_buffer_size: usize,
        /// The configured write buffer cap.
        max_write_buffer_size: usize,
    },
    /// The HTTP connection failed: IO error, malformed or oversized request,
    /// or the peer went away mid-request.
    #[error("http connection error: {0}")]
    Connection(#[source] hyper::Error),
    /// The 101 response was produced but the connection could not be taken
    /// over for the WebSocket.
    #[error("websocket upgrade failed: {0}")]
    Upgrade(#[source] hyper::Error),
}

// ---------------------------------------------------------------------------
// Context and outcome
// ---------------------------------------------------------------------------

/// A [`WebSocketConfig`] with small buffers and the given message limit.
///
/// - read buffer: [`WS_READ_BUFFER_BYTES`] (tungstenite's default is 128 KiB),
/// - write buffer target: [`WS_WRITE_BUFFER_BYTES`] (default 128 KiB),
/// - write buffer cap: the target plus two maximal frames, so one outgoing
///   message of up to `max_message_bytes` always fits while a stalled peer
///   still gets backpressure (`WriteBufferFull`) instead of unbounded memory,
/// - `max_message_size` and `max_frame_size`: `max_message_bytes` (defaults
///   64 MiB / 16 MiB), checked by tungstenite before buffering a frame,
/// - unmasked client frames are rejected (RFC 6455).
pub fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    let max_frame = max_message_bytes.saturating_add(WS_MAX_FRAME_HEADER_BYTES);
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WS_WRITE_BUFFER_BYTES.saturating_add(max_frame.saturating_mul(2)))
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
        .accept_unmasked_frames(false)
}

/// Everything [`serve`] needs, shared by all connections of a listener.
#[derive(Debug)]
#[non_exhaustive]
pub struct HttpContext {
    /// The static files to serve. Default (in [`HttpContext::new`]): as given.
    pub static_files: StaticFiles,
    /// The exact request path of the WebSocket endpoint. Default:
    /// [`DEFAULT_WS_PATH`] (`/ws`).
    pub ws_path: String,
    /// Which origins may upgrade. Default: as given.
    pub origin: OriginPolicy,
    /// Limits and buffers of upgraded WebSockets. Default:
    /// [`websocket_config`]`(`[`DEFAULT_MAX_MESSAGE_BYTES`]`)`.
    pub ws_config: WebSocketConfig,
    /// Limit on a request's head (request line and headers), in bytes;
    /// larger heads get `431`. Values below hyper's minimum of 8 KiB are
    /// raised to 8 KiB. Default: [`DEFAULT_MAX_REQUEST_HEAD_BYTES`] (8 KiB).
    pub max_request_head_bytes: usize,
    /// The node state `/readyz` reports. Default:
    /// [`NodeStatus::always_ready`]; a server sets its own.
    pub status: NodeStatus,
    /// Answers `POST /matchmake`. Default none: `404 matchmaking_off`.
    pub matchmaker: Option<Arc<Matchmaker>>,
    /// Serves the fleet console under `/admin/`. Default none: `404`
    /// (`console_off` on `/admin/api/…`).
    pub console: Option<Arc<Console>>,
    /// Answers `GET /webtransport` (where browsers find the WebTransport
    /// endpoint). Default none: `404`.
    pub webtransport: Option<Discovery>,
}

impl HttpContext {
    /// A context with the given static files and origin policy, and the
    /// documented defaults for everything else.
    pub fn new(static_files: StaticFiles, origin: OriginPolicy) -> Self {
        Self {
            static_files,
            ws_path: DEFAULT_WS_PATH.to_owned(),
            origin,
            ws_config: websocket_config(DEFAULT_MAX_MESSAGE_BYTES),
            max_request_head_bytes: DEFAULT_MAX_REQUEST_HEAD_BYTES,
            status: NodeStatus::always_ready(),
            matchmaker: None,
            console: None,
            webtransport: None,
        }
    }

    /// Sets [`HttpContext::webtransport`].
    pub fn with_webtransport(mut self, discovery: Discovery) -> Self {
        self.webtransport = Some(discovery);
        self
    }

    /// Sets [`HttpContext::matchmaker`].
    pub fn with_matchmaker(mut self, matchmaker: Arc<Matchmaker>) -> Self {
        self.matchmaker = Some(matchmaker);
        self
    }

    /// Sets [`HttpContext::console`].
    pub fn with_console(mut self, console: Arc<Console>) -> Self {
        self.console = Some(console);
        self
    }

    /// Sets [`HttpContext::status`].
    pub fn with_status(mut self, status: NodeStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets [`HttpContext::ws_path`].
    pub fn with_ws_path(mut self, path: impl Into<String>) -> Self {
        self.ws_path = path.into();
        self
    }

    /// Sets [`HttpContext::ws_config`].
    pub fn with_ws_config(mut self, config: WebSocketConfig) -> Self {
        self.ws_config = config;
        self
    }

    /// Sets [`HttpContext::max_request_head_bytes`].
    pub fn with_max_request_head_bytes(mut self, bytes: usize) -> Self {
        self.max_request_head_bytes = bytes;
        self
    }
}

/// Request details a session may want after an upgrade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeInfo {
    /// The `Origin` header, if the client sent one (browsers do).
    pub origin: Option<String>,
    /// The `User-Agent` header, if any (non-UTF-8 bytes replaced).
    pub user_agent: Option<String>,
}

/// How a connection handled by [`serve`] ended.
#[derive(Debug)]
pub enum HttpOutcome {
    /// The connection closed (or the peer stopped sending) without an
    /// upgrade. Nothing more to do.
    Closed,
    /// A WebSocket upgrade completed; the stream is ready for frames. It is
    /// boxed to keep this enum small; `*stream` moves it out.
    WebSocket(Box<ServerWebSocket>, UpgradeInfo),
}

// ---------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------

/// Where the service leaves an accepted upgrade for [`serve`] to pick up.
type UpgradeSlot = Mutex<Option<(OnUpgrade, UpgradeInfo)>>;

/// Serves HTTP/1.1 on `io` until the connection ends or a WebSocket upgrade
/// completes.
///
/// Keep-alive is on, so a client may fetch files and then upgrade on the
/// same connection. After a `101` response hyper stops reading requests and
/// returns the connection; `serve` then builds the [`WebSocketStream`] from
/// it, so the connection is driven by exactly one owner at a time.
///
/// No timeouts are applied here: wrap the call in
/// [`tokio::time::timeout`]. Errors are per connection: log them and drop
/// the connection.
pub async fn serve<IO>(io: IO, ctx: Arc<HttpContext>) -> Result<HttpOutcome, HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = ctx.ws_config;
    if ws.max_write_buffer_size <= ws.write_buffer_size {
        return Err(HttpError::InvalidWebSocketConfig {
            write_buffer_size: ws.write_buffer_size,
            max_write_buffer_size: ws.max_write_buffer_size,
        });
    }

    let slot: Arc<UpgradeSlot> = Arc::new(Mutex::new(None));
    let service = {
        let ctx = Arc::clone(&ctx);
        let slot = Arc::clone(&slot);
        service_fn(move |req: Request<Incoming>| {
            let ctx = Arc::clone(&ctx);
            let slot = Arc::clone(&slot);
            async move {
                let path = req.uri().path();
                let response = if path == MATCHMAKE_PATH && host_problem(&req).is_none() {
                    matchmake(req, &ctx).await
                } else if is_admin_path(path) && host_problem(&req).is_none() {
                    admin(req, &ctx).await
                } else {
                    route(req, &ctx, &slot)
                };
                Ok::<_, Infallible>(response)
            }
        })
    };

    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .half_close(false)
        .max_buf_size(ctx.max_request_head_bytes.max(HYPER_MIN_BUF_SIZE))
        // Timeouts belong to the caller (and hyper would need a timer).
        .header_read_timeout(None);
    let result = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    let pending = slot.lock().unwrap_or_else(PoisonError::into_inner).take();

    match (result, pending) {
        (Err(e), _) => Err(HttpError::Connection(e)),
        (Ok(()), None) => Ok(HttpOutcome::Closed),
        (Ok(()), Some((on_upgrade, info))) => {
            // hyper has already fulfilled (or dropped) the upgrade by the
            // time the connection future resolves, so this does not wait.
            let upgraded = on_upgrade.await.map_err(HttpError::Upgrade)?;
            let stream =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws))
                    .await;
            tracing::debug!(origin = ?info.origin, "websocket upgrade complete");
            Ok(HttpOutcome::WebSocket(Box::new(stream), info))
        }
    }
}

/// Answers every request on `io` with `503 Service Unavailable`,
/// `Retry-After: retry_after_secs` and `Connection: close`, then closes: the
/// answer to a connection over a connection cap, which tells a client that
/// the server is full rather than down.
///
/// No timeouts are applied here: wrap the call in [`tokio::time::timeout`].
pub async fn serve_unavailable<IO>(io: IO, retry_after_secs: u32) -> Result<(), HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |_req: Request<Incoming>| async move {
        let mut res = simple(StatusCode::SERVICE_UNAVAILABLE, "server full; retry later");
        let h = res.headers_mut();
        h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, Infallible>(res)
    });
    http1::Builder::new()
        .keep_alive(false)
        .half_close(false)
        .max_buf_size(HYPER_MIN_BUF_SIZE)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .await
        .map_err(HttpError::Connection)
}

type Body = Full<Bytes>;

/// Answers one request. Never fails: every problem becomes a status code.
fn route(mut req: Request<Incoming>, ctx: &HttpContext, slot: &UpgradeSlot) -> Response<Body> {
    if let Some(reason) = host_problem(&req) {
        tracing::debug!(reason, "bad request");
        let mut res = simple(StatusCode::BAD_REQUEST, reason);
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    let path = req.uri().path();
    if path == ctx.ws_path {
        return websocket(&mut req, ctx, slot);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    if path == "/healthz" {
        return simple(StatusCode::OK, "ok");
    }
    if path == webtransport::PATH {
        return webtransport_discovery(&req, ctx);
    }
    if path == "/readyz" {
        return match ctx.status.get() {
            NodeState::Ready => simple(StatusCode::OK, "ready"),
            other => simple(StatusCode::SERVICE_UNAVAILABLE, other.as_str()),
        };
    }
    // `/` and every `…/` map to their `index.html`.
    match ctx.static_files.lookup(path) {
        Some(file) => {
            // For HEAD hyper sends the length but not the body.
            let mut res = Response::new(Full::new(file.body.clone()));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            );
            add_common_headers(res.headers_mut());
            res
        }
        None => simple(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `GET /webtransport`: the endpoint's URL for this page's host and the
/// certificate hashes (see [`Discovery`]); `404` when WebTransport is off.
/// Pages of the origins the WebSocket endpoint accepts may read it across
/// origins (CORS), so that a page served by one node finds another's.
fn webtransport_discovery(req: &Request<Incoming>, ctx: &HttpContext) -> Response<Body> {
    let Some(discovery) = &ctx.webtransport else {
        return simple(StatusCode::NOT_FOUND, "WebTransport is off");
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match discovery.document(host) {
        Ok(body) => {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            add_common_headers(res.headers_mut());
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // A page of another allowed origin (another node of the fleet,
            // reached through matchmaking) may read it too.
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = req.headers().get(header::ORIGIN)
                && let Ok(o) = origin.to_str()
                && ctx.origin.is_allowed(Some(o))
            {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            }
            res
        }
        Err(DiscoveryError::NoHost) => simple(StatusCode::BAD_REQUEST, "a Host header is required"),
        Err(DiscoveryError::BadHost) => simple(StatusCode::BAD_REQUEST, "malformed Host header"),
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request without Host, or any request with
/// more than one, gets 400 (an upgrade too: RFC 6455 §4.2.1).
fn host_problem(req: &Request<Incoming>) -> Option<&'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if req.version() == Version::HTTP_11 => Some("missing Host header"),
        (Some(_), Some(_)) => Some("more than one Host header"),
        _ => None,
    }
}

fn add_common_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A short `text/plain` response.
fn simple(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    add_common_headers(res.headers_mut());
    res
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = simple(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt as _, StreamExt as _};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
    use tokio::task::JoinHandle;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::{self, Message};

    const DEADLINE: Duration = Duration::from_secs(10);
    const ORIGIN: &str = "https://localhost:8443";
    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn context() -> HttpContext {
        let mut files = StaticFiles::empty();
        files.insert("/index.html", "<!doctype html><title>t</title>");
        files.insert("/pkg/game_bg.wasm", WASM);
        files.insert("/app.js", "console.log(1)");
        HttpContext::new(files, OriginPolicy::new([ORIGIN.to_owned()]))
    }

    fn start(ctx: HttpContext) -> (DuplexStream, JoinHandle<Result<HttpOutcome, HttpError>>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let handle = tokio::spawn(serve(server, Arc::new(ctx)));
        (client, handle)
    }

    struct RawResponse {
        status: u16,
        head: String,
        body: Vec<u8>,
    }

    impl RawResponse {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().skip(1).find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// Reads one response head and a `Content-Length` body (none for 101 or
    /// when `head_only`).
    async fn read_response(io: &mut DuplexStream, head_only: bool) -> RawResponse {
        let mut buf = Vec::new();
        let end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "eof before response head: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut res = RawResponse {
            status,
            head,
            body: buf[end..].to_vec(),
        };
        let len: usize = match res.header("content-length") {
            Some(len) if !head_only && status != 101 => len.parse().unwrap(),
            _ => 0,
        };
        while res.body.len() < len {
            let mut chunk = vec![0u8; len - res.body.len()];
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "eof in body");
            res.body.extend_from_slice(&chunk[..n]);
        }
        res
    }

    /// Sends one raw request on a fresh connection and returns the response
    /// and how `serve` ended.
    async fn request(ctx: HttpContext, raw: &str) -> (RawResponse, Result<HttpOutcome, HttpError>) {
        tokio::time::timeout(DEADLINE, async {
            let (mut io, server) = start(ctx);
            io.write_all(raw.as_bytes()).await.unwrap();
            let head_only = raw.starts_with("HEAD ");
            let res = read_response(&mut io, head_only).await;
            drop(io);
            (res, server.await.unwrap())
        })
        .await
        .expect("deadline")
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    }

    fn upgrade_request(extra: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    #[tokio::test]
    async fn serves_wasm_with_content_type() {
        let (res, outcome) = request(context(), &get("/pkg/game_bg.wasm")).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("application/wasm"));
        assert_eq!(res.header("cache-control"), Some("no-cache"));
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(res.body, WASM);
        assert!(matches!(outcome, Ok(HttpOutcome::Closed)));
    }

    #[tokio::test]
    async fn root_maps_to_index_and_js_type() {
        let (res, _) = request(context(), &get("/")).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(res.body.starts_with(b"<!doctype html>"));
        let (res, _) = request(context(), &get("/app.js?v=3")).await;
        assert_eq!(res.status, 200);
        assert_eq!(
            res.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn head_sends_length_without_body() {
        let raw = "HEAD /pkg/game_bg.wasm HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        let (res, _) = request(context(), raw).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-length"), Some("8"));
        assert!(res.body.is_empty());
    }

    #[tokio::test]
    async fn unknown_path_is_404_and_traversal_finds_nothing() {
        for path in [
            "/nope.js",
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/pkg/%zz",
        ] {
            let (res, _) = request(context(), &get(path)).await;
            assert_eq!(res.status, 404, "{path}");
            assert_eq!(res.body, b"not found");
        }
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let (res, _) = request(context(), &get("/healthz")).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body, b"ok");
    }

    #[tokio::test]
    async fn readyz_follows_the_node_state_and_healthz_stays_ok() {
        let status = NodeStatus::new();
        let states = [
            (None, 503, &b"starting"[..]),
            (Some(NodeState::Ready), 200, b"ready"),
            (Some(NodeState::Draining), 503, b"draining"),
            (Some(NodeState::Stopped), 503, b"stopped"),
        ];
        for (state, code, body) in states {
            if let Some(state) = state {
                status.advance(state);
            }
            let ctx = context().with_status(status.clone());
            let (res, _) = request(ctx, &get("/readyz")).await;
            assert_eq!((res.status, res.body.as_slice()), (code, body));
            let ctx = context().with_status(status.clone());
            let (res, _) = request(ctx, &get("/healthz")).await;
            assert_eq!((res.status, res.body.as_slice()), (200, &b"ok"[..]));
        }
        // A context outside a server is always ready.
        let (res, _) = request(context(), &get("/readyz")).await;
        assert_eq!(res.status, 200);
    }

    #[tokio::test]
    async fn post_is_405() {
        let raw = "POST /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (res, _) = request(context(), raw).await;
        assert_eq!(res.status, 405);
        assert_eq!(res.header("allow"), Some("GET, HEAD"));
    }

    #[tokio::test]
    async fn oversized_head_is_431() {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(16 * 1024)
        );
        let (res, outcome) = request(context(), &raw).await;
        assert_eq!(res.status, 431);
        assert!(matches!(outcome, Err(HttpError::Connection(_))));
    }

    #[tokio::test]
    async fn upgrade_without_key_is_400() {
        let (res, outcome) = request(context(), &upgrade_request("")).await;
        assert_eq!(res.status, 400);
        assert_eq!(res.body, b"expected one Sec-WebSocket-Key");
        assert!(matches!(outcome, Ok(HttpOutcome::Closed)));

        let (res, _) = request(context(), &get("/ws")).await;
        assert_eq!(res.status, 400);
        let (res, _) = request(
            context(),
            &upgrade_request("Sec-WebSocket-Key: dG9vIHNob3J0\r\n"),
        )
        .await;
        assert_eq!(res.status, 400);
        let raw = upgrade_request("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
            .replace("Version: 13", "Version: 8");
        let (res, _) = request(context(), &raw).await;
        assert_eq!(res.status, 400);
        assert_eq!(res.header("sec-websocket-version"), Some("13"));
    }

    #[tokio::test]
    async fn raw_upgrade_accept_key_and_no_extensions() {
        tokio::time::timeout(DEADLINE, async {
            let (mut io, server) = start(context());
            // The sample handshake of RFC 6455 §1.3, asking for compression.
            let raw = upgrade_request(
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
                 Origin: https://LOCALHOST:8443\r\nUser-Agent: test-agent\r\n",
            );
            io.write_all(raw.as_bytes()).await.unwrap();
            let res = read_response(&mut io, false).await;
            assert_eq!(res.status, 101);
            assert_eq!(
                res.header("sec-websocket-accept"),
                Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            );
            assert_eq!(res.header("sec-websocket-extensions"), None);
            assert_eq!(res.header("sec-websocket-protocol"), None);
            match server.await.unwrap() {
                Ok(HttpOutcome::WebSocket(_, info)) => {
                    assert_eq!(info.origin.as_deref(), Some("https://LOCALHOST:8443"));
                    assert_eq!(info.user_agent.as_deref(), Some("test-agent"));
                }
                other => panic!("unexpected {other:?}"),
            }
        })
        .await
        .expect("deadline");
    }

    #[tokio::test]
    async fn webtransport_discovery_answers_allowed_origins_only_across_origins() {
        let ctx = || {
            context().with_webtransport(Discovery {
                port: 4433,
                loopback: None,
                path: "/wt".into(),
                certificate_hashes: vec![[7; 32]],
            })
        };
        let (res, _) = request(context(), &get("/webtransport")).await;
        assert_eq!(res.status, 404, "off by default");
        let (res, _) = request(ctx(), &get("/webtransport")).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let doc: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        assert_eq!(doc["url"], "https://localhost:4433/wt");
        assert_eq!(res.header("access-control-allow-origin"), None);
        let with_origin = |origin: &str| {
            format!(
                "GET /webtransport HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
            )
        };
        let (res, _) = request(ctx(), &with_origin(ORIGIN)).await;
        assert_eq!(res.header("access-control-allow-origin"), Some(ORIGIN));
        let (res, _) = request(ctx(), &with_origin("https://evil.example")).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("access-control-allow-origin"), None);
        let bad_host = "GET /webtransport HTTP/1.1\r\nHost: a\"b\r\nConnection: close\r\n\r\n";
        let (res, _) = request(ctx(), bad_host).await;
        assert_eq!(res.status, 400);
    }

    #[tokio::test]
    async fn foreign_origin_is_403() {
        tokio::time::timeout(DEADLINE, async {
            let (io, server) = start(context());
            let mut req = "ws://localhost:8443/ws".into_client_request().unwrap();
            req.headers_mut().insert(
                "Origin",
                tungstenite::http::HeaderValue::from_static("https://evil.example"),
            );
            match tokio_tungstenite::client_async(req, io).await {
                Err(tungstenite::Error::Http(res)) => {
                    assert_eq!(res.status(), 403);
                    assert_eq!(res.body().as_deref(), Some(&b"origin not allowed"[..]));
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(matches!(server.await.unwrap(), Ok(HttpOutcome::Closed)));
        })
        .await
        .expect("deadline");
    }

    #[tokio::test]
    async fn missing_origin_follows_policy() {
        let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let mut ctx = context();
        ctx.origin.allow_missing = false;
        let (res, _) = request(ctx, &upgrade_request(key)).await;
        assert_eq!(res.status, 403);
        let (res, outcome) = request(context(), &upgrade_request(key)).await;
        assert_eq!(res.status, 101);
        assert!(matches!(outcome, Ok(HttpOutcome::WebSocket(..))));
        // Two Origin headers are never allowed.
        let twice = format!("{key}Origin: {ORIGIN}\r\nOrigin: {ORIGIN}\r\n");
        let (res, _) = request(context(), &upgrade_request(&twice)).await;
        assert_eq!(res.status, 403);
    }

    /// Accepts one TCP connection on 127.0.0.1, serves it, and echoes one
    /// binary message over the resulting WebSocket.
    #[tokio::test]
    async fn allowed_origin_upgrades_and_binary_round_trips_over_tcp() {
        tokio::time::timeout(DEADLINE, async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut ctx = context();
            ctx.origin = OriginPolicy::for_server(addr, false, Vec::new());
            let ctx = Arc::new(ctx);
            let server = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                match serve(tcp, ctx).await.unwrap() {
                    HttpOutcome::WebSocket(mut ws, info) => {
                        let msg = ws.next().await.unwrap().unwrap();
                        ws.send(msg).await.unwrap();
                        ws.close().await.unwrap();
                        info
                    }
                    HttpOutcome::Closed => panic!("no upgrade"),
                }
            });

            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let origin = format!("http://127.0.0.1:{}", addr.port());
            let mut req = format!("ws://127.0.0.1:{}/ws", addr.port())
                .into_client_request()
                .unwrap();
            req.headers_mut().insert(
                "Origin",
                tungstenite::http::HeaderValue::from_str(&origin).unwrap(),
            );
            let (mut ws, res) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
            assert_eq!(res.status(), 101);
            let payload = vec![0u8, 1, 2, 254, 255];
            ws.send(Message::binary(payload.clone())).await.unwrap();
            match ws.next().await.unwrap().unwrap() {
                Message::Binary(data) => assert_eq!(&data[..], &payload[..]),
                other => panic!("unexpected {other:?}"),
            }
            let info = server.await.unwrap();
            assert_eq!(info.origin, Some(origin));
        })
        .await
        .expect("deadline");
    }

    #[tokio::test]
    async fn keep_alive_then_upgrade_on_same_connection() {
        tokio::time::timeout(DEADLINE, async {
            let (mut io, server) = start(context().with_ws_config(websocket_config(16)));
            io.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let res = read_response(&mut io, false).await;
            assert_eq!((res.status, &res.body[..]), (200, &b"ok"[..]));

            let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost/ws", io)
                .await
                .unwrap();
            let mut server_ws = match server.await.unwrap().unwrap() {
                HttpOutcome::WebSocket(ws, _) => ws,
                HttpOutcome::Closed => panic!("no upgrade"),
            };
            // Within the 16-byte limit: delivered.
            ws.send(Message::binary(vec![7u8; 16])).await.unwrap();
            let msg = server_ws.next().await.unwrap().unwrap();
            assert_eq!(msg.into_data().len(), 16);
            // Over the limit: refused before buffering.
            ws.send(Message::binary(vec![7u8; 17])).await.unwrap();
            match server_ws.next().await {
                Some(Err(tungstenite::Error::Capacity(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        })
        .await
        .expect("deadline");
    }

    #[tokio::test]
    async fn invalid_ws_config_is_rejected() {
        let config = WebSocketConfig::default()
            .write_buffer_size(1024)
            .max_write_buffer_size(1024);
        let (_io, server) = start(context().with_ws_config(config));
        let outcome = tokio::time::timeout(DEADLINE, server)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            outcome,
            Err(HttpError::InvalidWebSocketConfig { .. })
        ));
    }

    #[test]
    fn serve_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let (io, _peer) = tokio::io::duplex(64);
        let fut = serve(io, Arc::new(context()));
        assert_send(&fut);
    }

    #[test]
    fn websocket_config_is_small() {
        let c = websocket_config(1000);
        assert_eq!(c.read_buffer_size, 4096);
        assert_eq!(c.write_buffer_size, 4096);
        assert_eq!(c.max_message_size, Some(1000));
        assert_eq!(c.max_frame_size, Some(1000));
        assert!(c.max_write_buffer_size > c.write_buffer_size + 1000);
        assert!(c.max_write_buffer_size <= c.write_buffer_size + 2 * 1014);
        assert!(!c.accept_unmasked_frames);
    }
}
