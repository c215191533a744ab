//! The QUIC listener (quinn): address validation, connection caps, TLS with
//! ALPN `tickwire/1`, then a session on the client's bidirectional stream.
//!
//! ```text
//!  client stream ──u32 LE length + message──▶ FrameDecoder (limit) ──▶ session
//!  client datagrams (inputs, acks) ─────────────────────────────────▶ session
//!  session ──reliable──▶ stream (length-prefixed, in order)
//!  session ──snapshot──▶ datagram when it fits the path, else the stream
//! ```
//!
//! A lost snapshot datagram never delays the next one; the client acks what it
//! applies, and deltas are built only against acked snapshots, so losing
//! datagrams is safe. Sessions end with a protocol `Close` on the stream and a
//! `CONNECTION_CLOSE` carrying the same code and reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quinn::crypto::rustls::{HandshakeData, QuicServerConfig};
use quinn::{
    ConnectionError, Endpoint, IdleTimeout, ReadError, RecvStream, SendDatagramError, SendStream,
    TransportConfig, VarInt, WriteError,
};
use tickwire_shared::CloseCode;
use tickwire_shared::framing::{FrameDecoder, FrameError, QUIC_ALPN as ALPN, frame_header};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{QuicConfig, RetryPolicy, ServerConfig};
use crate::game::Game;
use crate::lifecycle::ShutdownSignal;
use crate::metrics as m;
use crate::session::{self, Shared};
use crate::tls::{TlsError, TlsIdentity};
use crate::transport::caps::ConnectionLimits;
use crate::transport::{Connection, End, Incoming, webtransport};

/// How long a closing session waits for the client to read its last stream
/// bytes (the protocol `Close`) and close, before sending `CONNECTION_CLOSE`.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// The quinn server configuration for `config`, with `identity`'s certificate.
pub(crate) fn server_config(
    config: &ServerConfig,
    identity: &TlsIdentity,
) -> Result<quinn::ServerConfig, TlsError> {
    let webtransport = config.listener.quic.webtransport_path.is_some();
    let tls = if webtransport {
        identity.server_config(&[ALPN, webtransport::ALPN])?
    } else {
        identity.server_config(&[ALPN])?
    };
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config(
        &config.listener.quic,
        config.session.idle_timeout,
        webtransport,
    )));
    server
        .max_incoming(config.listener.max_connections.min(1 << 16))
        .incoming_buffer_size(config.listener.quic.incoming_buffer)
        .incoming_buffer_size_total(
            config
                .listener
                .quic
                .incoming_buffer
                .saturating_mul(256)
                .max(config.listener.quic.incoming_buffer),
        )
        // Per-IP caps are taken at accept time; do not let a connection move.
        .migration(false);
    Ok(server)
}

/// Streams a client may open: native clients use one bidirectional stream;
/// WebTransport (HTTP/3) also needs its CONNECT stream and three
/// unidirectional ones (control and the two QPACK streams). The transport
/// parameters are sent before the ALPN is known, so with WebTransport on a
/// native connection is offered the larger numbers too; it is cut back at
/// once, and streams it opens anyway are never read (bounded by the
/// receive windows).
const WEBTRANSPORT_STREAMS: (u32, u32) = (2, 3);

fn transport_config(quic: &QuicConfig, idle: Duration, webtransport: bool) -> TransportConfig {
    let (bidi, uni) = if webtransport {
        WEBTRANSPORT_STREAMS
    } else {
        (1, 0)
    };
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(bidi))
        .max_concurrent_uni_streams(VarInt::from_u32(uni))
        .stream_receive_window(VarInt::from_u32(quic.stream_receive_window))
        .receive_window(VarInt::from_u32(quic.receive_window))
        .send_window(quic.send_window)
        .datagram_receive_buffer_size(Some(quic.datagram_receive_buffer))
        .datagram_send_buffer_size(quic.datagram_send_buffer)
        .max_idle_timeout(IdleTimeout::try_from(idle + Duration::from_secs(5)).ok())
        .keep_alive_interval(None);
    t
}

/// Whether to answer a connection attempt with a Retry (RFC 9000 §8.1.2)
/// instead of accepting it: under `policy`, with `handshaking` handshakes in
/// progress, for a client whose address is not `validated` yet (its Initial
/// carried no valid token) and that `may_retry` (it has not been retried).
///
/// Without a Retry, quinn-proto 0.11 (0.11.19) can send an unvalidated peer
/// more than the 3× anti-amplification limit (RFC 9000 §8.1): it lets a
/// full-size datagram go out whenever any budget is left (quinn-rs/quinn#1148,
/// for #1082), and its loss probes are padded Initials. So a 1,200-byte
/// Initial that is never acknowledged gets the first flight (1,200 bytes plus
/// a few hundred, with a certificate of a few SANs more than ours) and two
/// 1,200-byte probes about 1 s later: 3,822 bytes (3.19×) in the conformance
/// report. A Retry keeps the server within the limit whatever quinn does: it
/// is one small stateless packet, and the client's second Initial proves its
/// address. Hence the default [`RetryPolicy::Always`], at the cost of one
/// round trip on every connect; see `quic/amplification_tests.rs` and
/// docs/PROTOCOL.md §2.2.
fn should_retry(policy: RetryPolicy, handshaking: usize, validated: bool, may_retry: bool) -> bool {
    let wanted = match policy {
        RetryPolicy::Never => false,
        RetryPolicy::Always => true,
        RetryPolicy::UnderLoad { handshakes } => handshaking >= handshakes,
    };
    wanted && !validated && may_retry
}

/// Counts handshakes in progress; decrements when dropped.
struct Handshaking(Arc<AtomicUsize>);

impl Handshaking {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts QUIC connections until `shutdown` turns true, waits for the
/// sessions (bounded by the shutdown timeout), then closes the endpoint.
pub(crate) async fn accept_loop<G: Game>(
    endpoint: Endpoint,
    webtransport: Option<Arc<webtransport::Endpoint>>,
    limits: Arc<ConnectionLimits>,
    shared: Arc<Shared<G>>,
    mut shutdown: ShutdownSignal,
) {
    let handshaking = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let peer = incoming.remote_address();
                if should_retry(
                    shared.config.listener.quic.retry,
                    handshaking.load(Ordering::Relaxed),
                    incoming.remote_address_validated(),
                    incoming.may_retry(),
                ) {
                    tracing::debug!(%peer, "QUIC: asking the client to validate its address");
                    if let Err(e) = incoming.retry() {
                        tracing::debug!(%peer, error = %e, "QUIC retry failed");
                    }
                    continue;
                }
                let slot = match limits.acquire(peer.ip()) {
                    Ok(s) => s,
                    Err(which) => {
                        tracing::warn!(%peer, which, "QUIC connection refused");
                        incoming.refuse();
                        continue;
                    }
                };
                let guard = Handshaking::start(&handshaking);
                let shared = Arc::clone(&shared);
                let webtransport = webtransport.clone();
                tasks.spawn(async move {
                    connection(incoming, peer, guard, shared, webtransport.as_deref()).await;
                    drop(slot);
                });
            }
        }
    }
    let deadline = Instant::now() + shared.config.lifecycle.shutdown_timeout;
    while !tasks.is_empty() {
        if tokio::time::timeout_at(deadline, tasks.join_next())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = tasks.len(),
                "shutdown timeout; aborting QUIC sessions"
            );
            tasks.abort_all();
            break;
        }
    }
    endpoint.close(
        VarInt::from_u32(u32::from(CloseCode::ServerShutdown.to_u16())),
        b"server shutting down",
    );
    // Let the endpoint send the CONNECTION_CLOSE frames it owes.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

async fn connection<G: Game>(
    incoming: quinn::Incoming,
    peer: SocketAddr,
    handshaking: Handshaking,
    shared: Arc<Shared<G>>,
    webtransport: Option<&webtransport::Endpoint>,
) {
    let deadline = Instant::now() + shared.config.listener.handshake_timeout;
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "QUIC accept failed");
            return;
        }
    };
    let conn = match tokio::time::timeout_at(deadline, connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "QUIC handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "QUIC handshake timed out");
            m::disconnect(CloseCode::HandshakeTimeout);
            return;
        }
    };
    drop(handshaking);
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol);
    if let Some(endpoint) = webtransport
        && alpn.as_deref() == Some(webtransport::ALPN)
    {
        webtransport::serve(conn, peer, endpoint, shared, deadline).await;
        return;
    }
    if alpn.as_deref() != Some(ALPN) {
        // rustls refuses a mismatched ALPN offer; a client that offered none
        // gets here.
        let end = End::new(CloseCode::ProtocolError, "ALPN tickwire/1 required");
        conn.close(code_of(&end), end.reason.as_bytes());
        m::disconnect(end.code);
        return;
    }
    // The transport parameters may have offered WebTransport's streams.
    conn.set_max_concurrent_bi_streams(VarInt::from_u32(1));
    conn.set_max_concurrent_uni_streams(VarInt::from_u32(0));
    let (send, recv) = match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "QUIC: no stream opened");
            return;
        }
        Err(_) => {
            let end = End::new(
                CloseCode::HandshakeTimeout,
                "handshake not completed in time",
            );
            conn.close(code_of(&end), end.reason.as_bytes());
            m::disconnect(end.code);
            return;
        }
    };
    let quic = QuicConnection {
        frames: FrameDecoder::new(shared.config.limits.max_client_message_bytes),
        max_outgoing: shared.config.limits.max_server_message_bytes,
        conn,
        send,
        recv,
    };
    session::run(quic, shared, peer, Default::default(), deadline).await;
}

fn code_of(end: &End) -> VarInt {
    VarInt::from_u32(u32::from(end.code.to_u16()))
}

/// A session's QUIC connection: its one bidirectional stream plus datagrams.
pub(crate) struct QuicConnection {
    conn: quinn::Connection,
    send: SendStream,
    recv: RecvStream,
    frames: FrameDecoder,
    max_outgoing: usize,
}

/// Appends `message` to `chunks` as one stream frame (u32 LE length, then
/// the message), refusing messages over `max_outgoing`.
pub(super) fn push_frame(
    message: Bytes,
    max_outgoing: usize,
    chunks: &mut Vec<Bytes>,
) -> Result<(), End> {
    let header = frame_header(message.len(), max_outgoing)
        .map_err(|e| End::new(CloseCode::InternalError, e.to_string()))?;
    chunks.push(Bytes::copy_from_slice(&header));
    chunks.push(message);
    Ok(())
}

/// Feeds a chunk of the client's stream to `frames`: the message it
/// completes, if any.
pub(super) fn push_chunk(frames: &mut FrameDecoder, chunk: &[u8]) -> Result<Option<Incoming>, End> {
    match frames.push(chunk) {
        Ok(message) => Ok(message.map(|m| Incoming::Message {
            bytes: m.into(),
            unreliable: false,
        })),
        Err(e @ FrameError::MessageTooLong { .. }) => {
            Err(End::new(CloseCode::MessageTooBig, e.to_string()))
        }
        Err(e) => Err(End::new(CloseCode::InternalError, e.to_string())),
    }
}

/// The stream chunks for one send: `reliable` framed in order, then
/// `snapshot` framed too unless it fits `max_datagram` and `send_datagram`
/// took it (`Ok(None)`; `Ok(Some(snapshot))` hands it back for the stream).
pub(super) fn stream_chunks(
    reliable: Vec<Bytes>,
    snapshot: Option<Bytes>,
    max_datagram: Option<usize>,
    max_outgoing: usize,
    send_datagram: impl FnOnce(Bytes) -> Result<Option<Bytes>, End>,
) -> Result<Vec<Bytes>, End> {
    let mut chunks = Vec::with_capacity(2 * reliable.len() + 2);
    for message in reliable {
        push_frame(message, max_outgoing, &mut chunks)?;
    }
    if let Some(snapshot) = snapshot {
        let on_stream = if max_datagram.is_some_and(|max| snapshot.len() <= max) {
            send_datagram(snapshot)?
        } else {
            Some(snapshot)
        };
        if let Some(snapshot) = on_stream {
            push_frame(snapshot, max_outgoing, &mut chunks)?;
        }
    }
    Ok(chunks)
}

impl QuicConnection {
    /// Appends `message` to `chunks` as one frame.
    fn frame(&self, message: Bytes, chunks: &mut Vec<Bytes>) -> Result<(), End> {
        push_frame(message, self.max_outgoing, chunks)
    }

    async fn write(&mut self, mut chunks: Vec<Bytes>) -> Result<(), End> {
        self.send
            .write_all_chunks(&mut chunks)
            .await
            .map_err(|e| write_error_end(&e))
    }
}

impl Connection for QuicConnection {
    const NAME: &'static str = "quic";
    const DATAGRAMS: bool = true;

    fn max_datagram_size(&self) -> Option<usize> {
        self.conn.max_datagram_size()
    }

    async fn recv(&mut self) -> Result<Incoming, End> {
        loop {
            // Both branches are cancel-safe: a datagram or a chunk is taken
            // only when its future completes; a partial frame stays in
            // `self.frames`.
            tokio::select! {
                datagram = self.conn.read_datagram() => {
                    return match datagram {
                        Ok(bytes) => Ok(Incoming::Message { bytes, unreliable: true }),
                        Err(e) => Err(connection_error_end(&e)),
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
                        Err(e) => return Err(read_error_end(&e)),
                    }
                }
            }
        }
    }

    async fn send(&mut self, reliable: Vec<Bytes>, snapshot: Option<Bytes>) -> Result<(), End> {
        let conn = &self.conn;
        let chunks = stream_chunks(
            reliable,
            snapshot,
            self.max_datagram_size(),
            self.max_outgoing,
            |snapshot| match conn.send_datagram(snapshot.clone()) {
                Ok(()) => Ok(None),
                Err(SendDatagramError::ConnectionLost(e)) => Err(connection_error_end(&e)),
                // The path shrank, or the peer has no datagrams.
                Err(_) => Ok(Some(snapshot)),
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
            // A client closes the connection once it has read the protocol
            // `Close` (or a `Reject`). Closing first would make it drop
            // stream data it has received but not read yet, so wait for that
            // (or the linger time).
            let _ = self.conn.closed().await;
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
        self.conn
            .close(code_of(end), end.reason_within(1000).as_bytes());
    }
}

fn connection_error_end(e: &ConnectionError) -> End {
    match e {
        ConnectionError::ApplicationClosed(close) => End::new(
            CloseCode::Normal,
            format!("client closed the connection (code {})", close.error_code),
        ),
        ConnectionError::TransportError(t) => End::new(
            CloseCode::ProtocolError,
            format!("QUIC transport error: {t}"),
        ),
        ConnectionError::TimedOut => End::new(CloseCode::IdleTimeout, "QUIC idle timeout"),
        other => End::new(CloseCode::Normal, format!("connection lost: {other}")),
    }
}

fn read_error_end(e: &ReadError) -> End {
    match e {
        ReadError::ConnectionLost(c) => connection_error_end(c),
        ReadError::Reset(code) => End::new(
            CloseCode::Normal,
            format!("client reset its stream (code {code})"),
        ),
        other => End::new(CloseCode::Normal, format!("stream ended: {other}")),
    }
}

fn write_error_end(e: &WriteError) -> End {
    match e {
        WriteError::ConnectionLost(c) => connection_error_end(c),
        WriteError::Stopped(code) => End::new(
            CloseCode::Normal,
            format!("client stopped reading (code {code})"),
        ),
        other => End::new(CloseCode::Normal, format!("stream ended: {other}")),
    }
}

#[cfg(test)]
mod amplification_tests;
