//! The two transports behind one interface: WebSocket (`wss://`, `ws://`)
//! and QUIC (`quic://`, quinn).
//!
//! On QUIC every reliable message travels length-prefixed on one
//! bidirectional stream the client opens; `Inputs` and `Ack` go as datagrams
//! when they fit (inputs are resent until applied and acks are cumulative,
//! so losing one costs nothing), and the server sends snapshots as
//! datagrams. `docs/PROTOCOL.md` §2.2 has the rules.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf as _, Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{ConnectionError, RecvStream, SendStream, TransportConfig, VarInt};
use rustls::ClientConfig;
use tickwire_shared::Limits;
use tickwire_shared::framing::{FrameDecoder, QUIC_ALPN, frame_header};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use crate::connect::{Endpoint, Ws};
use crate::error::ClientError;

/// Close code reported when the connection ended without a close.
pub(crate) const ABNORMAL_CLOSURE: u16 = 1006;

/// A message waiting to be written.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) bytes: Bytes,
    /// May travel as a datagram (QUIC) and be lost.
    pub(crate) unreliable: bool,
}

/// What [`Transport::recv`] yields.
#[derive(Debug)]
pub(crate) enum Received {
    /// A tickwire message; `datagram`: it came as a QUIC datagram.
    Message { bytes: Bytes, datagram: bool },
    /// The server closed with this code and reason.
    Closed { code: u16, reason: String },
    /// The connection broke without a close.
    Lost(String),
    /// Transport-level traffic (a WebSocket ping); nothing to do.
    Nothing,
}

/// An open connection.
pub(crate) enum Transport {
    Ws(Box<Ws>),
    Quic(Box<QuicTransport>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ws(_) => "Transport::Ws",
            Self::Quic(_) => "Transport::Quic",
        })
    }
}

impl Transport {
    /// Receives the next thing from the server. Cancel-safe.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] when the server breaks the transport's rules
    /// (a text message, a frame over the limit).
    pub(crate) async fn recv(&mut self) -> Result<Received, ClientError> {
        match self {
            Self::Ws(ws) => Ok(match ws.next().await {
                None => Received::Lost("connection lost".into()),
                Some(Err(e)) => Received::Lost(format!("connection lost: {e}")),
                Some(Ok(Message::Binary(bytes))) => Received::Message {
                    bytes,
                    datagram: false,
                },
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(CloseFrame { code, reason }) => Received::Closed {
                        code: u16::from(code),
                        reason: reason.to_string(),
                    },
                    None => Received::Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                },
                Some(Ok(Message::Text(_))) => {
                    return Err(ClientError::Protocol(
                        "the server sent a text message".into(),
                    ));
                }
                Some(Ok(_)) => Received::Nothing,
            }),
            Self::Quic(q) => q.recv().await,
        }
    }

    /// Writes the queue. Cancel-safe: a message leaves `queue` only once the
    /// transport has taken all of it.
    ///
    /// # Errors
    /// [`ClientError::Connection`] when the write fails.
    pub(crate) async fn flush(
        &mut self,
        queue: &mut VecDeque<Outgoing>,
    ) -> Result<(), ClientError> {
        match self {
            Self::Ws(ws) => {
                let res = async {
                    while !queue.is_empty() {
                        std::future::poll_fn(|cx| ws.poll_ready_unpin(cx)).await?;
                        if let Some(m) = queue.pop_front() {
                            ws.start_send_unpin(Message::Binary(m.bytes))?;
                        }
                    }
                    std::future::poll_fn(|cx| ws.poll_flush_unpin(cx)).await
                }
                .await;
                res.map_err(|e| ClientError::Connection(e.to_string()))
            }
            Self::Quic(q) => q.flush(queue).await,
        }
    }

    /// Closes with `code` and `reason` (best effort; bound it in time).
    pub(crate) async fn close(&mut self, code: u16, reason: &str) {
        match self {
            Self::Ws(ws) => {
                let _ = Ws::close(
                    ws,
                    Some(CloseFrame {
                        code: WsCloseCode::from(code),
                        reason: reason.to_owned().into(),
                    }),
                )
                .await;
            }
            Self::Quic(q) => q
                .conn
                .close(VarInt::from_u32(u32::from(code)), reason.as_bytes()),
        }
    }

    /// Whether the client closes the connection itself once it has read the
    /// server's protocol `Close` (QUIC: the server waits for that before its
    /// `CONNECTION_CLOSE`, so that no unread stream data is lost). On WSS the
    /// server's close frame follows and is answered instead.
    pub(crate) fn closes_on_close_message(&self) -> bool {
        matches!(self, Self::Quic(_))
    }

    /// Answers the server's close (WebSocket) once the session has ended.
    pub(crate) async fn finish_close(&mut self) {
        if let Self::Ws(ws) = self {
            let _ = Ws::close(ws, None).await;
        }
    }
}

/// A QUIC connection with its reliable stream.
pub(crate) struct QuicTransport {
    /// Keeps the UDP socket and its driver alive.
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: SendStream,
    recv: RecvStream,
    frames: FrameDecoder,
    /// Framed bytes taken from the queue but not yet written.
    pending: BytesMut,
    /// The server finished its stream: only datagrams and the close remain.
    stream_done: bool,
    max_outgoing: usize,
}

/// Connects over QUIC and opens the reliable stream.
pub(crate) async fn open_quic(
    endpoint: &Endpoint,
    tls: &Arc<ClientConfig>,
    limits: &Limits,
) -> Result<QuicTransport, ClientError> {
    let conn_err = |e: &dyn std::fmt::Display| ClientError::Connection(e.to_string());
    let addr: SocketAddr = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| conn_err(&e))?
        .next()
        .ok_or_else(|| ClientError::Connection(format!("{} has no address", endpoint.host)))?;
    let mut crypto = (**tls).clone();
    crypto.alpn_protocols = vec![QUIC_ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(crypto).map_err(|e| ClientError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = TransportConfig::default();
    // The server opens no streams.
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if addr.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let quic = quinn::Endpoint::client(bind).map_err(|e| conn_err(&e))?;
    let conn = quic
        .connect_with(config, addr, &endpoint.host)
        .map_err(|e| conn_err(&e))?
        .await
        .map_err(|e| match e {
            ConnectionError::TransportError(t) => ClientError::Tls(t.to_string()),
            other => conn_err(&other),
        })?;
    let (send, recv) = conn.open_bi().await.map_err(|e| conn_err(&e))?;
    Ok(QuicTransport {
        _endpoint: quic,
        conn,
        send,
        recv,
        frames: FrameDecoder::new(limits.max_server_message_bytes),
        pending: BytesMut::new(),
        stream_done: false,
        max_outgoing: limits.max_client_message_bytes,
    })
}

impl QuicTransport {
    async fn recv(&mut self) -> Result<Received, ClientError> {
        loop {
            tokio::select! {
                datagram = self.conn.read_datagram() => {
                    return Ok(match datagram {
                        Ok(bytes) => Received::Message { bytes, datagram: true },
                        Err(e) => connection_end(e),
                    });
                }
                chunk = self.recv.read_chunk(self.frames.wanted(), true), if !self.stream_done => {
                    match chunk {
                        Ok(Some(chunk)) => {
                            let frame = self
                                .frames
                                .push(&chunk.bytes)
                                .map_err(|e| ClientError::Protocol(e.to_string()))?;
                            if let Some(message) = frame {
                                return Ok(Received::Message {
                                    bytes: message.into(),
                                    datagram: false,
                                });
                            }
                        }
                        // The server finished its stream; its close follows.
                        Ok(None) => self.stream_done = true,
                        Err(quinn::ReadError::ConnectionLost(e)) => return Ok(connection_end(e)),
                        Err(e) => return Ok(Received::Lost(format!("stream ended: {e}"))),
                    }
                }
            }
        }
    }

    async fn flush(&mut self, queue: &mut VecDeque<Outgoing>) -> Result<(), ClientError> {
        let lost = |e: &dyn std::fmt::Display| ClientError::Connection(e.to_string());
        while let Some(m) = queue.pop_front() {
            let datagram = m.unreliable
                && self
                    .conn
                    .max_datagram_size()
                    .is_some_and(|max| m.bytes.len() <= max);
            if datagram {
                match self.conn.send_datagram(m.bytes.clone()) {
                    Ok(()) => continue,
                    Err(quinn::SendDatagramError::ConnectionLost(e)) => return Err(lost(&e)),
                    Err(_) => {}
                }
            }
            let header = frame_header(m.bytes.len(), self.max_outgoing)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            self.pending.extend_from_slice(&header);
            self.pending.extend_from_slice(&m.bytes);
        }
        while !self.pending.is_empty() {
            // `write` takes what it reports and nothing on cancel.
            let n = self.send.write(&self.pending).await.map_err(|e| lost(&e))?;
            self.pending.advance(n);
        }
        Ok(())
    }
}

fn connection_end(e: ConnectionError) -> Received {
    match e {
        ConnectionError::ApplicationClosed(close) => Received::Closed {
            code: u16::try_from(close.error_code.into_inner()).unwrap_or(ABNORMAL_CLOSURE),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        other => Received::Lost(format!("connection lost: {other}")),
    }
}
