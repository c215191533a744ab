//! `replication-load floor --model tasks|pass`: the floor's exchange (a
//! message to each connection per round, a 6-byte ack back) written on
//! tokio instead of blocking sockets, to price the IO design apart from
//! everything a server does besides IO.
//!
//! - **`tasks`**: one task per connection, woken once per round to write
//!   its message and again when its ack arrives, as the server's sessions
//!   are (a task per connection, woken by the room's notify and by the
//!   reactor).
//! - **`pass`**: one task writes every connection's message in turn, then
//!   reads every ack, once per round: the design where the room writes the
//!   frames itself and reads inputs at tick time.
//!
//! Both run on a current-thread runtime. The server, pinned to one CPU,
//! runs tokio's multi-thread runtime with one worker (one per CPU it may
//! use); the server itself measured the same on either within the VM's
//! spread (BENCHMARKS.md, "current-thread runtime … tried and dropped").
//! Both use tokio-rustls over `tokio::net::TcpStream`, as the server does. Neither
//! has WebSocket framing, a room or a protocol: the difference between
//! them and `blocking` is what the runtime and the IO model cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::floor::Counters;

/// A connection's stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Which async design to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AsyncModel {
    /// A task per connection.
    Tasks,
    /// One task for every connection.
    Pass,
}

/// What to run: `conns` connections accepted on `listener`, `rounds`
/// rounds of `size` bytes at one per `period`.
pub(crate) struct Plan {
    pub(crate) listener: std::net::TcpListener,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) rounds: u32,
    pub(crate) period: Duration,
    pub(crate) ack: bool,
}

/// Accepts the connections, then runs the rounds. Returns `counters` read
/// before the first round and after the last, before the connections
/// close (the peer exits at their end).
pub(crate) fn run(
    model: AsyncModel,
    plan: Plan,
    counters: &dyn Fn() -> Result<Counters>,
) -> Result<(Counters, Counters)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    rt.block_on(async move {
        let streams = accept_all(&plan).await?;
        let start = counters()?;
        let streams = match model {
            AsyncModel::Tasks => tasks(streams, &plan).await?,
            AsyncModel::Pass => pass(streams, &plan).await?,
        };
        let end = counters()?;
        drop(streams);
        Ok((start, end))
    })
}

async fn accept_all(plan: &Plan) -> Result<Vec<Box<dyn Stream>>> {
    let listener = plan.listener.try_clone()?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let acceptor = plan.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let mut streams: Vec<Box<dyn Stream>> = Vec::with_capacity(plan.conns);
    for _ in 0..plan.conns {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        match &acceptor {
            Some(a) => streams.push(Box::new(a.accept(tcp).await?)),
            None => streams.push(Box::new(tcp)),
        }
    }
    Ok(streams)
}

/// A task per connection, woken by a notify per round (the room's push
/// into a session's outbox) and by the reactor for its ack.
async fn tasks(streams: Vec<Box<dyn Stream>>, plan: &Plan) -> Result<Vec<Box<dyn Stream>>> {
    let due = Arc::new(AtomicU32::new(0));
    let mut wakes = Vec::with_capacity(streams.len());
    let mut handles = Vec::with_capacity(streams.len());
    for mut s in streams {
        let wake = Arc::new(Notify::new());
        wakes.push(wake.clone());
        let due = due.clone();
        let (size, rounds, ack) = (plan.size, plan.rounds, plan.ack);
        handles.push(tokio::spawn(async move {
            let msg = vec![0x5a_u8; size];
            let mut buf = [0u8; 6];
            let mut done = 0;
            while done < rounds {
                if due.load(Ordering::Acquire) <= done {
                    wake.notified().await;
                    continue;
                }
                s.write_all(&msg).await?;
                s.flush().await?;
                if ack {
                    s.read_exact(&mut buf).await?;
                }
                done += 1;
            }
            anyhow::Ok(s)
        }));
    }
    let t0 = Instant::now();
    for n in 0..plan.rounds {
        tokio::time::sleep_until(t0 + plan.period * n).await;
        due.store(n + 1, Ordering::Release);
        for w in &wakes {
            w.notify_one();
        }
    }
    let mut streams = Vec::with_capacity(handles.len());
    for h in handles {
        streams.push(h.await??);
    }
    Ok(streams)
}

/// One task writes every message of a round, then reads every ack.
async fn pass(mut streams: Vec<Box<dyn Stream>>, plan: &Plan) -> Result<Vec<Box<dyn Stream>>> {
    let msg = vec![0x5a_u8; plan.size];
    let mut buf = [0u8; 6];
    let t0 = Instant::now();
    for n in 0..plan.rounds {
        tokio::time::sleep_until(t0 + plan.period * n).await;
        for s in &mut streams {
            s.write_all(&msg).await?;
            s.flush().await?;
        }
        if plan.ack {
            for s in &mut streams {
                s.read_exact(&mut buf).await?;
            }
        }
    }
    Ok(streams)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant as StdInstant;

    use super::*;

    /// Each model writes every message of every round to every connection
    /// and reads every ack: a peer counts what arrives, over TLS and not.
    #[test]
    fn every_model_writes_every_message_and_reads_every_ack() {
        let id = tickwire_server::tls::TlsIdentity::self_signed(&["localhost"]).unwrap();
        let cert = id.leaf().clone();
        for model in [AsyncModel::Tasks, AsyncModel::Pass] {
            for tls in [false, true] {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let (conns, size, rounds) = (3, 5_000, 4);
                let cert = cert.clone();
                let peer = std::thread::spawn(move || {
                    let cfg = tickwire_server::tls::client_config_trusting(&cert, &[]).unwrap();
                    let mut streams: Vec<Box<dyn ReadWrite>> = (0..conns)
                        .map(|_| {
                            let tcp = std::net::TcpStream::connect(addr).unwrap();
                            // A missing message fails the test instead of
                            // hanging it.
                            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                            if !tls {
                                return Box::new(tcp) as Box<dyn ReadWrite>;
                            }
                            let name = rustls_pki_types::ServerName::try_from("localhost")
                                .unwrap()
                                .to_owned();
                            let mut c = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
                            // Handshake before the next connect: the
                            // writer accepts and handshakes in turn.
                            let mut tcp = tcp;
                            while c.is_handshaking() {
                                c.complete_io(&mut tcp).unwrap();
                            }
                            Box::new(rustls::StreamOwned::new(c, tcp))
                        })
                        .collect();
                    let mut buf = vec![0u8; size];
                    let mut got = 0;
                    for _ in 0..rounds {
                        for s in &mut streams {
                            s.read_exact(&mut buf).unwrap();
                            assert!(buf.iter().all(|&b| b == 0x5a));
                            got += 1;
                            s.write_all(b"ack!\n\n").unwrap();
                            s.flush().unwrap();
                        }
                    }
                    got
                });
                let plan = Plan {
                    listener,
                    tls: tls.then(|| id.server_config(&[]).unwrap()),
                    conns,
                    size,
                    rounds,
                    period: Duration::from_millis(2),
                    ack: true,
                };
                let counters = || Ok((0.0, 0.0, StdInstant::now()));
                let (start, end) = run(model, plan, &counters).unwrap();
                assert!(end.2 >= start.2);
                assert_eq!(
                    peer.join().unwrap(),
                    conns * rounds as usize,
                    "{model:?}, tls {tls}"
                );
            }
        }
    }

    trait ReadWrite: Read + Write + Send {}
    impl<T: Read + Write + Send> ReadWrite for T {}
}
