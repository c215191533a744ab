//! The WSS listener: TCP accept with connection caps, TLS (or explicit plain
//! mode), HTTP on the same origin, WebSocket upgrade, then a session.
//!
//! TLS accept must finish within [`crate::ServerConfig::handshake_timeout`],
//! and so must the protocol handshake after the upgrade (neither tokio-rustls
//! nor tungstenite has a timeout of its own). Plain HTTP use of a connection
//! is bounded to three times that.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::game::Game;
use crate::http::{self, HttpContext, HttpOutcome};
use crate::metrics as m;
use crate::session::{self, Shared};

/// Counts connections in total and per IP address.
#[derive(Debug, Default)]
pub(crate) struct ConnectionLimits {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_total: usize,
    max_per_ip: usize,
}

/// Releases a connection slot when dropped.
pub(crate) struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        m::connections(-1.0);
    }
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip: Mutex::new(HashMap::new()),
            max_total,
            max_per_ip,
        })
    }

    /// Takes a slot for `ip`, or says which cap refused it.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = map.values().sum();
        if total >= self.max_total {
            return Err("total connection cap");
        }
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err("per-IP connection cap");
        }
        *n += 1;
        m::connections(1.0);
        Ok(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// Accepts connections until `shutdown` turns true, then waits for the
/// sessions (bounded by the shutdown timeout) and returns.
pub(crate) async fn accept_loop<G: Game>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    http: Arc<HttpContext>,
    shared: Arc<Shared<G>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = ConnectionLimits::new(
        shared.config.max_connections,
        shared.config.max_connections_per_ip,
    );
    let mut tasks = JoinSet::new();
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
                        tracing::warn!(%peer, which, "connection refused");
                        drop(tcp);
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
    let deadline = Instant::now() + shared.config.shutdown_timeout;
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
    if let Some(bytes) = shared.config.tcp_send_buffer
        && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes)
    {
        tracing::debug!(%peer, error = %e, "cannot set the send buffer size");
    }
    let deadline = Instant::now() + shared.config.handshake_timeout;
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
    let http_budget = shared.config.handshake_timeout * 3;
    match tokio::time::timeout(http_budget, http::serve(io, http)).await {
        Ok(Ok(HttpOutcome::WebSocket(ws, _info))) => {
            let deadline = Instant::now() + shared.config.handshake_timeout;
            session::run(*ws, shared, peer, deadline).await;
        }
        Ok(Ok(HttpOutcome::Closed)) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTP connection error"),
        Err(_) => tracing::debug!(%peer, "HTTP connection idle too long"),
    }
}
