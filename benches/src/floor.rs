//! `replication-load floor`: what one snapshot exchange costs this machine's
//! kernel (and rustls) with no framework at all.
//!
//! This process plays the server with plain blocking sockets: at 60 Hz it
//! writes one `--size`-byte message to each of `--conns` loopback
//! connections, then reads a 6-byte ack from each. A peer process (pinned
//! with `--peer-cpus`) reads each message and writes the ack. The figure is
//! this process's CPU time per message: the lower bound for a server's
//! "CPU per client per snapshot" on this machine, with and without TLS.
//! The peer's CPU time per message is printed too: the lower bound for a
//! client (or one of `arena-bots`) per snapshot, one read and one small
//! write, with nothing decoded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tickwire_server::tls::{TlsIdentity, client_config_trusting};

use crate::{floor_async, procfs};

/// `replication-load floor`.
#[derive(Args, Debug)]
pub(crate) struct FloorArgs {
    /// Connections (clients).
    #[arg(long, default_value_t = 100)]
    conns: usize,
    /// Message size in bytes (one snapshot).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Rounds per second (the tick rate).
    #[arg(long, default_value_t = 60)]
    rate: u32,
    /// Seal the messages with TLS (rustls, like the server).
    #[arg(long)]
    tls: bool,
    /// CPU list for the peer process (`taskset -c`).
    #[arg(long)]
    peer_cpus: Option<String>,
    /// The peer does not ack: measure the writes alone.
    #[arg(long)]
    no_ack: bool,
    /// How this process does its IO: `blocking` (the floor), `tasks` (tokio,
    /// a task per connection, as the server's sessions) or `pass` (tokio,
    /// one task writes every connection then reads every ack); see
    /// `floor_async`.
    #[arg(long, value_enum, default_value_t = Model::Blocking)]
    model: Model,
    /// The peer works this long (a busy loop) on each message before it
    /// acks, as a client decodes a snapshot before its next input: acks
    /// then arrive spread over the round instead of in one burst.
    #[arg(long, default_value_t = 0)]
    peer_work_us: u64,
}

/// `floor --model`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Model {
    /// Plain blocking sockets.
    Blocking,
    /// tokio: a task per connection.
    Tasks,
    /// tokio: one task writes and reads every connection in turn.
    Pass,
}

/// `replication-load floor-peer` (started by `floor`).
#[derive(Args, Debug)]
pub(crate) struct PeerArgs {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    conns: usize,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    no_ack: bool,
    #[arg(long, default_value_t = 0)]
    work_us: u64,
}

trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

pub(crate) fn run(args: FloorArgs) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let dir = std::env::temp_dir().join(format!("tickwire-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let id = TlsIdentity::self_signed(&["localhost", "127.0.0.1"])?;
    let cert = dir.join("cert.pem");
    id.write_pem_files(&cert, &dir.join("key.pem"))?;
    let exe = std::env::current_exe()?;
    let mut cmd = match &args.peer_cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    cmd.arg("floor-peer")
        .arg(format!("--addr={addr}"))
        .arg(format!("--conns={}", args.conns))
        .arg(format!("--size={}", args.size))
        .stdin(Stdio::null());
    if args.tls {
        cmd.arg("--cert").arg(&cert);
    }
    if args.no_ack {
        cmd.arg("--no-ack");
    }
    cmd.arg(format!("--work-us={}", args.peer_work_us));
    let mut peer = cmd.spawn().context("starting the peer")?;
    let server_config = id.server_config(&[])?;
    let period = Duration::from_secs(1) / args.rate.max(1);
    let rounds = (args.duration * f64::from(args.rate)) as u32;
    let pid = std::process::id();
    let peer_pid = peer.id();
    let counters = || -> Result<Counters> {
        Ok((
            procfs::cpu_seconds(pid)?,
            procfs::cpu_seconds(peer_pid)?,
            Instant::now(),
        ))
    };
    let ((cpu0, peer_cpu0, t0), (cpu1, peer_cpu1, t1)) = match args.model {
        Model::Blocking => blocking(&args, &listener, server_config, rounds, period, &counters)?,
        Model::Tasks | Model::Pass => {
            let model = if args.model == Model::Tasks {
                floor_async::AsyncModel::Tasks
            } else {
                floor_async::AsyncModel::Pass
            };
            let plan = floor_async::Plan {
                listener,
                tls: args.tls.then_some(server_config),
                conns: args.conns,
                size: args.size,
                rounds,
                period,
                ack: !args.no_ack,
            };
            floor_async::run(model, plan, &counters)?
        }
    };
    let wall = (t1 - t0).as_secs_f64();
    let (cpu, peer_cpu) = (cpu1 - cpu0, peer_cpu1 - peer_cpu0);
    let _ = peer.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let msgs = f64::from(rounds) * args.conns as f64;
    println!(
        "floor: {} conns × {} B at {} Hz, tls={}, model={:?}: {:.2} µs CPU per message ({}), \
         {:.0} % CPU over {wall:.1} s",
        args.conns,
        args.size,
        args.rate,
        args.tls,
        args.model,
        cpu / msgs * 1e6,
        if args.no_ack {
            "write only"
        } else {
            "write + ack read"
        },
        cpu / wall * 100.0
    );
    println!(
        "floor peer (a client): {:.2} µs CPU per message ({}), {:.0} % CPU",
        peer_cpu / msgs * 1e6,
        if args.no_ack {
            "read only"
        } else {
            "read + ack write"
        },
        peer_cpu / wall * 100.0
    );
    Ok(())
}

/// CPU seconds of this process and of the peer, and when they were read.
pub(crate) type Counters = (f64, f64, Instant);

/// The floor itself: blocking sockets. Returns the counters read before
/// the first round and after the last, before the connections close (the
/// peer exits at their end).
fn blocking(
    args: &FloorArgs,
    listener: &TcpListener,
    server_config: std::sync::Arc<rustls::ServerConfig>,
    rounds: u32,
    period: Duration,
    counters: &dyn Fn() -> Result<Counters>,
) -> Result<(Counters, Counters)> {
    let mut conns: Vec<Box<dyn Conn>> = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        let (tcp, _) = listener.accept()?;
        tcp.set_nodelay(true)?;
        if args.tls {
            let mut tls = ServerConnection::new(server_config.clone())?;
            let mut tcp = tcp;
            while tls.is_handshaking() {
                tls.complete_io(&mut tcp)?;
            }
            conns.push(Box::new(StreamOwned::new(tls, tcp)));
        } else {
            conns.push(Box::new(tcp));
        }
    }
    let msg = vec![0x5a_u8; args.size];
    let mut ack = [0u8; 6];
    let start = counters()?;
    let t0 = start.2;
    for n in 0..rounds {
        let due = t0 + period * n;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for c in &mut conns {
            c.write_all(&msg)?;
            c.flush()?;
        }
        if !args.no_ack {
            for c in &mut conns {
                c.read_exact(&mut ack)?;
            }
        }
    }
    Ok((start, counters()?))
}

pub(crate) fn peer(args: PeerArgs) -> Result<()> {
    let client_config = match &args.cert {
        Some(p) => Some(client_config_trusting(
            &CertificateDer::from_pem_file(p)?,
            &[],
        )?),
        None => None,
    };
    let mut conns: Vec<Box<dyn Conn>> = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        let tcp = TcpStream::connect(args.addr)?;
        tcp.set_nodelay(true)?;
        match &client_config {
            Some(cfg) => {
                let name = ServerName::try_from("localhost")?.to_owned();
                let mut tls = ClientConnection::new(cfg.clone(), name)?;
                let mut tcp = tcp;
                while tls.is_handshaking() {
                    tls.complete_io(&mut tcp)?;
                }
                conns.push(Box::new(StreamOwned::new(tls, tcp)));
            }
            None => conns.push(Box::new(tcp)),
        }
    }
    let mut buf = vec![0u8; args.size];
    loop {
        for c in &mut conns {
            match c.read_exact(&mut buf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => bail!(e),
            }
            let done = Instant::now() + Duration::from_micros(args.work_us);
            while Instant::now() < done {
                std::hint::spin_loop();
            }
            if !args.no_ack {
                c.write_all(b"ack!\n\n")?;
                c.flush()?;
            }
        }
    }
}
