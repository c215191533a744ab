//! WebTransport (HTTP/3) for browsers, on the native QUIC listener's socket
//! and certificate. The QUIC listener ([`super::quic`]) offers ALPN `h3`
//! beside `tickwire/1`, and hands `h3` connections here:
//!
//! ```text
//!  h3 SETTINGS + CONNECT https://host:port/wt ──▶ path and Origin checked ──▶ 200
//!  client's bidirectional stream ──u32 LE length + message──▶ FrameDecoder (limit) ──▶ session
//!  client datagrams (inputs, acks) ─────────────────────────────────────────────────▶ session
//!  session ──reliable──▶ stream (length-prefixed, in order)
//!  session ──snapshot──▶ datagram when it fits, else the stream
//! ```
//!
//! Everything after the CONNECT is native QUIC's framing (docs/PROTOCOL.md
//! §2.2 and §2.3): one bidirectional stream opened by the client, datagrams
//! that each hold one message, and the same limits. A session ends with the
//! protocol `Close` on the stream, then `CLOSE_WEBTRANSPORT_SESSION` with
//! the same code (the [`CloseCode`] value) and reason.
//!
//! [`discovery`] answers the page's `GET /webtransport`: where the endpoint
//! is and which certificate hashes the browser may pin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tickwire_shared::CloseCode;
use tickwire_shared::framing::FrameDecoder;
use tokio::time::Instant;
use web_transport_quinn::http::StatusCode;
use web_transport_quinn::{Request, SessionError, WebTransportError};

use crate::game::Game;
use crate::http::{OriginPolicy, UpgradeInfo};
use crate::metrics as m;
use crate::session::{self, Shared};
use crate::transport::quic::{push_chunk, push_frame, stream_chunks};
use crate::transport::{Connection, End, Incoming};

pub(crate) mod discovery;

/// The ALPN of HTTP/3, which WebTransport runs on.
pub(crate) const ALPN: &[u8] = b"h3";

/// What the QUIC listener needs to accept WebTransport sessions.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The CONNECT path (`/wt`).
    pub(crate) path: String,
    /// Which page origins may connect (the WebSocket endpoint's policy).
    pub(crate) origin: OriginPolicy,
}

/// How long a closing session waits for the client to read its last stream
/// bytes and close, before closing the session itself.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// Runs the HTTP/3 and WebTransport handshakes on `conn` (ALPN `h3`, QUIC
/// handshake done) within `deadline`, then a session. Requests for another
/// path get 404, foreign origins 403; a peer that does not speak
/// WebTransport is closed with [`CloseCode::ProtocolError`].
pub(crate) async fn serve<G: Game>(
    conn: quinn::Connection,
    peer: SocketAddr,
    endpoint: &Endpoint,
    shared: Arc<Shared<G>>,
    deadline: Instant,
) {
    let request = match tokio::time::timeout_at(deadline, Request::accept(conn.clone())).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "WebTransport: no valid CONNECT");
            let end = End::new(
                CloseCode::ProtocolError,
                format!("WebTransport handshake failed: {e}"),
            );
            close_quic(&conn, &end);
            return;
        }
        Err(_) => {
            let end = End::new(
                CloseCode::HandshakeTimeout,
                "WebTransport handshake not completed in time",
            );
            close_quic(&conn, &end);
            return;
        }
    };
    if request.url.path() != endpoint.path {
        tracing::debug!(%peer, path = request.url.path(), "WebTransport: unknown path");
        let end = End::new(CloseCode::ProtocolError, "unknown path");
        refuse(request, StatusCode::NOT_FOUND, &end, deadline).await;
        return;
    }
    let header = |name: &str| {
        let mut values = request.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| ()),
            (Some(_), Some(_)) => Err(()),
        }
    };
    let origin = match header("origin") {
        Ok(origin) if endpoint.origin.is_allowed(origin.as_deref()) => origin,
        _ => {
            tracing::info!(%peer, origin = ?request.headers.get("origin"), "WebTransport from a foreign origin refused");
            let end = End::new(CloseCode::ProtocolError, "origin not allowed");
            refuse(request, StatusCode::FORBIDDEN, &end, deadline).await;
            return;
        }
    };
    let info = UpgradeInfo {
        origin,
        user_agent: header("user-agent").ok().flatten(),
    };
    let wt = match tokio::time::timeout_at(deadline, request.ok()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "WebTransport: CONNECT response failed");
            return;
        }
        Err(_) => {
            close_quic(
                &conn,
                &End::new(
                    CloseCode::HandshakeTimeout,
                    "handshake not completed in time",
                ),
            );
            return;
        }
    };
    let (send, recv) = match tokio::time::timeout_at(deadline, wt.accept_bi()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "WebTransport: no stream opened");
            return;
        }
        Err(_) => {
            let end = End::new(
                CloseCode::HandshakeTimeout,
                "handshake not completed in time",
            );
            wt.close(u32::from(end.code.to_u16()), end.reason.as_bytes());
            m::disconnect(end.code);
            return;
        }
    };
    let connection = WebTransportConnection {
        frames: FrameDecoder::new(shared.config.limits.max_client_message_bytes),
        max_outgoing: shared.config.limits.max_server_message_bytes,
        session: wt,
        send,
        recv,
    };
    session::run(connection, shared, peer, info, deadline).await;
}

/// Answers the CONNECT with `status`, gives the client a moment to read it
/// and close (the answer is lost if the connection closes first), then
/// closes with `end`. Bounded by `deadline` and [`CLOSE_LINGER`].
async fn refuse(request: Request, status: StatusCode, end: &End, deadline: Instant) {
    let conn = request.conn().clone();
    if let Ok(Ok(())) = tokio::time::timeout_at(deadline, request.reject(status)).await {
        let _ = tokio::time::timeout(CLOSE_LINGER, conn.closed()).await;
    }
    close_quic(&conn, end);
}

/// Closes a connection that has no WebTransport session (yet) with `end`.
fn close_quic(conn: &quinn::Connection, end: &End) {
    conn.close(
        quinn::VarInt::from_u32(u32::from(end.code.to_u16())),
        end.reason_within(1000).as_bytes(),
    );
    m::disconnect(end.code);
}

/// A session's WebTransport connection: the client's bidirectional stream
/// plus datagrams.
pub(crate) struct WebTransportConnection {
    session: web_transport_quinn::Session,
    send: web_transport_quinn::SendStream,
    recv: web_transport_quinn::RecvStream,
    frames: FrameDecoder,
    max_outgoing: usize,
}

impl WebTransportConnection {
    /// Appends `message` to `chunks` as one frame.
    fn frame(&self, message: Bytes, chunks: &mut Vec<Bytes>) -> Result<(), End> {
        push_frame(message, self.max_outgoing, chunks)
    }

    async fn write(&mut self, mut chunks: Vec<Bytes>) -> Result<(), End> {
        self.send
            .write_all_chunks(&mut chunks)
            .await
            .map_err(|e| End::new(CloseCode::Normal, format!("stream ended: {e}")))
    }
}

impl Connection for WebTransportConnection {
    const NAME: &'static str = "webtransport";
    const DATAGRAMS: bool = true;

    fn max_datagram_size(&self) -> Option<usize> {
        Some(self.session.max_datagram_size()).filter(|&n| n > 0)
    }

    async fn recv(&mut self) -> Result<Incoming, End> {
        loop {
            // Both branches are cancel-safe (quinn's `read_datagram` and
            // `read_chunk` underneath); a partial frame stays in
            // `self.frames`.
            tokio::select! {
                datagram = self.session.read_datagram() => {
                    return match datagram {
                        Ok(bytes) => Ok(Incoming::Message { bytes, unreliable: true }),
                        Err(e) => Err(session_error_end(&e)),
                    };
                }
                chunk = self.recv.read_chunk(self.frames.wanted(), true) => {
                    match chunk {
                        Ok(Some(chunk)) => {
                            if let Some(message) = push_chunk(&mut self.frames, &chunk.bytes)? {
                                return Ok(message);
                            }
                        }
                        Ok(None) => {
                            return Err(End::new(CloseCode::Normal, "client finished its stream"));
                        }
                        Err(web_transport_quinn::ReadError::SessionError(e)) => {
                            return Err(session_error_end(&e));
                        }
                        Err(e) => {
                            return Err(End::new(CloseCode::Normal, format!("stream ended: {e}")));
                        }
                    }
                }
            }
        }
    }

    async fn send(&mut self, reliable: Vec<Bytes>, snapshot: Option<Bytes>) -> Result<(), End> {
        let session = &self.session;
        let chunks = stream_chunks(
            reliable,
            snapshot,
            self.max_datagram_size(),
            self.max_outgoing,
            |snapshot| match session.send_datagram(snapshot.clone()) {
                Ok(()) => Ok(None),
                // The path shrank, or the buffer is full: the stream.
                Err(SessionError::SendDatagramError(_)) => Ok(Some(snapshot)),
                Err(e) => Err(session_error_end(&e)),
            },
        )?;
        if chunks.is_empty() {
            return Ok(());
        }
        self.write(chunks).await
    }

    async fn close(&mut self, last: Option<Bytes>, end: &End) {
        let linger = async {
            if let Some(bytes) = last {
                let mut chunks = Vec::with_capacity(2);
                if self.frame(bytes, &mut chunks).is_ok() {
                    let _ = self.write(chunks).await;
                }
            }
            let _ = self.send.finish();
            // The client closes once it has read the protocol `Close`;
            // closing first could make it drop stream data it has not read.
            let _ = self.session.closed().await;
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
        self.session.close(
            u32::from(end.code.to_u16()),
            end.reason_within(1000).as_bytes(),
        );
        // Let the close capsule go out before the connection is dropped.
        let _ = tokio::time::timeout(CLOSE_LINGER, self.session.closed()).await;
    }
}

fn session_error_end(e: &SessionError) -> End {
    match e {
        SessionError::WebTransportError(WebTransportError::Closed(code, reason)) => End::new(
            CloseCode::Normal,
            format!("client closed the session (code {code}: {reason})"),
        ),
        SessionError::ConnectionError(quinn::ConnectionError::TimedOut) => {
            End::new(CloseCode::IdleTimeout, "QUIC idle timeout")
        }
        SessionError::ConnectionError(quinn::ConnectionError::TransportError(t)) => End::new(
            CloseCode::ProtocolError,
            format!("QUIC transport error: {t}"),
        ),
        other => End::new(CloseCode::Normal, format!("connection lost: {other}")),
    }
}
