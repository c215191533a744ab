//! The WSS listener: TCP accept with connection caps, TLS (or explicit plain
//! mode), HTTP on the same origin, WebSocket upgrade, then a session.
//!
//! TLS accept must finish within [`crate::ListenerConfig::handshake_timeout`],
//! and so must the protocol handshake after the upgrade (neither tokio-rustls
//! nor tungstenite has a timeout of its own). Plain HTTP use of a connection
//! is bounded to three times that.
//!
//! A connection over a cap ([`crate::ListenerConfig::max_connections`],
//! [`crate::ListenerConfig::max_connections_per_ip`]) still gets TLS and an HTTP
//! `503` with `Retry-After`, within the handshake timeout, so that a client
//! can tell "full" from "down"; at most
//! [`crate::ListenerConfig::max_refused_in_flight`] such answers are in
//! progress at once, and connections beyond that are dropped at accept,
//! before any TLS work.
//!
//! A close frame from the client is answered with a close frame (tungstenite
//! queues the echo when it reads the client's frame, and
//! `WsConnection::close` flushes it).
//!
//! After its close frame, the server half-closes the connection and discards
//! what the client still sends, for a bounded time
//! ([`crate::SessionConfig::close_linger`]), so that unread bytes do not turn
//! the close into a TCP reset that destroys the close frame on its way.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tickwire_shared::CloseCode;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConfig;
use crate::game::Game;
use crate::http::{self, HttpContext, HttpOutcome};
use crate::lifecycle::ShutdownSignal;
use crate::metrics as m;
use crate::session::{self, Shared};
use crate::transport::caps::ConnectionLimits;
use crate::transport::{Connection, End, Incoming};

/// Accepts connections until `shutdown` turns true, then waits for the
/// sessions (bounded by the shutdown timeout) and returns.
pub(crate) async fn accept_loop<G: Game>(
    listener: TcpListener,
    limits: Arc<ConnectionLimits>,
    tls: Option<TlsAcceptor>,
    http: Arc<HttpContext>,
    shared: Arc<Shared<G>>,
    mut shutdown: ShutdownSignal,
) {
    let mut tasks = JoinSet::new();
    let refusals = Arc::new(Semaphore::new(shared.config.listener.max_refused_in_flight));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match limits.acquire(peer.ip()) {
                    Ok(s) => s,
                    Err(which) => {
                        let (tls, config) = (tls.clone(), &shared.config);
                        refuse_or_drop(&mut tasks, &refusals, tcp, peer, which, tls, config);
                        continue;
                    }
                };
                let tls = tls.clone();
                let http = Arc::clone(&http);
                let shared = Arc::clone(&shared);
                tasks.spawn(async move {
                    connection(tcp, peer, tls, http, shared).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + shared.config.lifecycle.shutdown_timeout;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    remaining = tasks.len(),
                    "shutdown timeout; aborting sessions"
                );
                tasks.abort_all();
                break;
            }
        }
    }
}

async fn connection<G: Game>(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    http: Arc<HttpContext>,
    shared: Arc<Shared<G>>,
) {
    let _ = tcp.set_nodelay(true);
    if let Some(bytes) = shared.config.listener.tcp_send_buffer
        && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes)
    {
        tracing::debug!(%peer, error = %e, "cannot set the send buffer size");
    }
    let deadline = Instant::now() + shared.config.listener.handshake_timeout;
    match tls {
        Some(acceptor) => {
            let stream = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    m::disconnect(tickwire_shared::CloseCode::HandshakeTimeout);
                    return;
                }
            };
            serve(stream, peer, http, shared).await;
        }
        None => serve(tcp, peer, http, shared).await,
    }
}

/// A connection over a cap: answered (see [`refuse`]) by a task while a
/// refusal permit is free; otherwise dropped at once, before TLS.
fn refuse_or_drop(
    tasks: &mut JoinSet<()>,
    refusals: &Arc<Semaphore>,
    tcp: TcpStream,
    peer: SocketAddr,
    which: &'static str,
    tls: Option<TlsAcceptor>,
    config: &Arc<ServerConfig>,
) {
    let Ok(permit) = Arc::clone(refusals).try_acquire_owned() else {
        tracing::warn!(%peer, which, "connection refused; too many refusals in progress");
        return;
    };
    tracing::info!(%peer, which, "connection over a cap; answering 503");
    let config = Arc::clone(config);
    tasks.spawn(async move {
        refuse(tcp, peer, tls, &config).await;
        drop(permit);
    });
}

/// Answers a connection over a cap: TLS, then `503` with `Retry-After` to
/// every request, all within the handshake timeout.
async fn refuse(tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>, config: &ServerConfig) {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now() + config.listener.handshake_timeout;
    let retry_after = http::SERVER_FULL_RETRY_AFTER_SECS;
    let answered = match tls {
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                tokio::time::timeout_at(deadline, http::serve_unavailable(stream, retry_after))
                    .await
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake of a refused connection failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake of a refused connection timed out");
                return;
            }
        },
        None => tokio::time::timeout_at(deadline, http::serve_unavailable(tcp, retry_after)).await,
    };
    match answered {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "refused connection failed"),
        Err(_) => tracing::debug!(%peer, "refused connection timed out"),
    }
}

async fn serve<G: Game, IO>(
    io: IO,
    peer: SocketAddr,
    http: Arc<HttpContext>,
    shared: Arc<Shared<G>>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Plain HTTP (the page, healthz) may use the connection for a while;
    // bound it so idle connections do not pile up. The protocol handshake
    // gets its own timeout from the upgrade on.
    let http_budget = shared.config.listener.handshake_timeout * 3;
    match tokio::time::timeout(http_budget, http::serve(io, http)).await {
        Ok(Ok(HttpOutcome::WebSocket(ws, info))) => {
            let deadline = Instant::now() + shared.config.listener.handshake_timeout;
            session::run(WsConnection::new(*ws), shared, peer, info, deadline).await;
        }
        Ok(Ok(HttpOutcome::Closed)) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTP connection error"),
        Err(_) => tracing::debug!(%peer, "HTTP connection idle too long"),
    }
}

/// The WebSocket close code for a message or close reason that is not UTF-8
/// (RFC 6455 §7.4.1). It is not a tickwire close code: it travels in the
/// close frame only.
const INVALID_PAYLOAD: CloseCode = CloseCode::Other(1007);

/// How the connection is to be closed, from what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The server closes: the protocol `Close`, then the close frame.
    ByServer,
    /// The client sent a close frame; tungstenite queued the answer (the
    /// same code and reason, an empty close for an empty one, 1002 for a
    /// code that must not be sent). No data may follow a received close.
    Echo,
    /// The client's close frame (or a text message) was not UTF-8: answer
    /// with a close frame only.
    FrameOnly,
}

/// A session's upgraded WebSocket: one tickwire message per binary message.
pub(crate) struct WsConnection<S> {
    ws: WebSocketStream<S>,
    closing: Closing,
}

impl<S> WsConnection<S> {
    pub(crate) fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            closing: Closing::ByServer,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection for WsConnection<S> {
    const NAME: &'static str = "wss";
    const DATAGRAMS: bool = false;

    fn max_datagram_size(&self) -> Option<usize> {
        None
    }

    async fn recv(&mut self) -> Result<Incoming, End> {
        match self.ws.next().await {
            None => Err(End::new(CloseCode::Normal, "connection closed")),
            Some(Err(e)) => {
                let end = ws_error_end(&e);
                if end.code == INVALID_PAYLOAD {
                    self.closing = Closing::FrameOnly;
                }
                Err(end)
            }
            Some(Ok(Message::Binary(bytes))) => Ok(Incoming::Message {
                bytes,
                unreliable: false,
            }),
            Some(Ok(Message::Text(_))) => Err(End::new(
                CloseCode::UnsupportedData,
                "text frames are not supported; send binary",
            )),
            Some(Ok(Message::Close(frame))) => {
                self.closing = Closing::Echo;
                let code = frame.map_or(0, |f| u16::from(f.code));
                Err(End::new(
                    CloseCode::Normal,
                    format!("client closed the connection (code {code})"),
                ))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                Ok(Incoming::Control)
            }
        }
    }

    async fn send(&mut self, reliable: Vec<Bytes>, snapshot: Option<Bytes>) -> Result<(), End> {
        let write = async {
            for b in reliable.into_iter().chain(snapshot) {
                self.ws.feed(Message::Binary(b)).await?;
            }
            self.ws.flush().await
        };
        write.await.map_err(|e| ws_error_end(&e))
    }

    async fn close(&mut self, last: Option<Bytes>, end: &End) {
        match self.closing {
            Closing::Echo => {
                // Flushes the queued answer to the client's close frame.
                let _ = SinkExt::close(&mut self.ws).await;
                return;
            }
            Closing::FrameOnly => {}
            Closing::ByServer => {
                if let Some(bytes) = last
                    && self.ws.feed(Message::Binary(bytes)).await.is_err()
                {
                    return;
                }
            }
        }
        let frame = CloseFrame {
            code: WsCloseCode::from(end.code.to_u16()),
            // A close frame's reason is at most 123 bytes.
            reason: end.reason_within(123).into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }

    async fn linger(&mut self, max_bytes: u64) {
        // Half-close (TLS close_notify, then TCP FIN), then read and drop
        // what the client still sends until it closes too. Closing a socket
        // with unread bytes sends a reset instead of a FIN, and the reset
        // throws away what is still queued to send (the close frame, behind
        // a snapshot or pongs the client has not made room for); some peers
        // also throw away what they received but did not read yet.
        let io = self.ws.get_mut();
        if io.shutdown().await.is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut left = max_bytes;
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n as u64),
            }
        }
    }
}

fn ws_error_end(e: &tokio_tungstenite::tungstenite::Error) -> End {
    use tokio_tungstenite::tungstenite::Error as E;
    use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
    match e {
        E::Capacity(CapacityError::MessageTooLong { size, max_size }) => End::new(
            CloseCode::MessageTooBig,
            format!("message of {size} bytes exceeds the limit of {max_size}"),
        ),
        E::Capacity(c) => End::new(CloseCode::MessageTooBig, c.to_string()),
        // The transport ended cleanly (TCP FIN, or TLS close_notify) without a
        // WebSocket close: a lost connection, as when a proxy in front drops
        // it or a client process exits, not a protocol violation. It must stay
        // resumable like any other dropped connection.
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::new(
            CloseCode::Normal,
            "connection lost without a closing handshake",
        ),
        E::Protocol(p) => End::new(
            CloseCode::ProtocolError,
            format!("websocket protocol error: {p}"),
        ),
        E::Utf8(e) => End::new(INVALID_PAYLOAD, format!("invalid UTF-8: {e}")),
        E::ConnectionClosed | E::AlreadyClosed => End::new(CloseCode::Normal, "connection closed"),
        other => End::new(CloseCode::Normal, format!("connection lost: {other}")),
    }
}
