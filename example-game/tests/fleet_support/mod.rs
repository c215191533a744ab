//! The fleet harness of `tests/fleet.rs`: a `redis-server`, `arena-server`
//! nodes and in-process players, each process killed on drop (panics
//! included), and waits that poll with a deadline and say what they waited
//! for.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arena::Arena;
use tickwire_client::matchmake::{MatchmakeRequest, Ticket, matchmake};
use tickwire_client::{Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_server::directory::{
    Directory, NodeInfo, RedisDirectory, RedisDirectoryConfig, RoomInfo,
};
use tokio::time::Instant;

/// Snapshots per second the nodes send (tick rate 60, every third tick).
pub const SNAPSHOT_RATE: u32 = 20;
/// The longest a player on a node that keeps running may go without a
/// snapshot while another node dies, Redis restarts or a node drains: 20
/// snapshot intervals (1 s at 20/s). It is loose because the test shares
/// two cores with three debug-built servers and 200 debug-built clients;
/// a node whose players were cut off (or a stopped process) shows gaps of
/// seconds.
pub const GAP_BOUND: Duration = Duration::from_millis(20 * 1000 / SNAPSHOT_RATE as u64);
/// How long 200 players may take to get in.
pub const FILL_DEADLINE: Duration = Duration::from_secs(90);
/// How long the players of a dead or drained node may take to get back in.
pub const REJOIN_DEADLINE: Duration = Duration::from_secs(30);
/// Starting a process (and Redis answering).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Lines of a process's output kept for diagnostics and `wait_line`.
const MAX_LINES: usize = 50_000;
const SECRET: &str = "fleet-test-secret-0123456789abcdef";

/// Polls `check` every 50 ms until it is `Ok`, for at most `within`;
/// returns how long it took. Panics with `what` and the last `Err` if the
/// deadline passes.
pub async fn wait_for<F, Fut, T>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let end = start + within;
    loop {
        let last = match check().await {
            Ok(_) => return start.elapsed(),
            Err(e) => e,
        };
        if Instant::now() >= end {
            panic!("timed out after {within:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// A child process, killed (SIGKILL) and reaped on drop; its stdout and
/// stderr lines are kept.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for stream in [out, err] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                    if l.len() >= MAX_LINES {
                        l.drain(..MAX_LINES / 2);
                    }
                    l.push(line);
                }
            });
        }
        Self {
            name: name.to_owned(),
            child: Some(child),
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether a line containing `needle` was printed.
    pub fn printed(&self, needle: &str) -> bool {
        let l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l.iter().any(|line| line.contains(needle))
    }

    pub fn tail(&self, n: usize) -> String {
        let l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l[l.len().saturating_sub(n)..].join("\n")
    }

    /// The exit status, if it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (with `kill`: no libc, unsafe is forbidden).
    pub fn sigterm(&self) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}: {sent}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[path = "../../../server/tests/support/redis_server.rs"]
mod redis_server;
use redis_server::{redis_binary, redis_command, redis_dir};

/// A `redis-server` of our own on a free loopback port, saving nothing
/// (`--save '' --appendonly no`, in a temp dir): a restart comes back
/// empty, as a Redis without persistence does.
pub struct Redis {
    proc: Option<Proc>,
    binary: PathBuf,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Redis {
    async fn start(tag: &str) -> Option<Self> {
        let binary = redis_binary("the fleet test")?;
        let dir = redis_dir(tag);
        let mut redis = Self {
            proc: None,
            binary,
            addr: free_port(),
            dir,
        };
        redis.launch().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Starts the server on `self.addr` and waits until it answers PING.
    pub async fn launch(&mut self) {
        let mut cmd = redis_command(&self.binary, self.addr.port(), &self.dir);
        self.proc = Some(Proc::spawn("redis-server", &mut cmd));
        let addr = self.addr;
        wait_for(
            "redis-server to answer PING",
            START_DEADLINE,
            || async move {
                match command(addr, &["PING"]) {
                    Ok(r) if r.contains("PONG") => Ok(()),
                    Ok(r) => Err(r),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// `INFO commandstats` as `command → calls`.
    pub fn commandstats(&self) -> BTreeMap<String, u64> {
        let info = command(self.addr, &["INFO", "commandstats"]).expect("INFO commandstats");
        info.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("cmdstat_")?;
                let (name, stats) = rest.split_once(':')?;
                let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.trim().parse().ok()?))
            })
            // The harness's own reset.
            .filter(|(name, _)| !name.starts_with("config"))
            .collect()
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset_stats(&self) {
        command(self.addr, &["CONFIG", "RESETSTAT"]).expect("CONFIG RESETSTAT");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One Redis command over a fresh connection (RESP), for the harness only:
/// the reply as text (a simple string, or a bulk string's bytes).
fn command(addr: SocketAddr, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut first = String::new();
    r.read_line(&mut first)?;
    if let Some(len) = first.strip_prefix('$') {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| std::io::Error::other(first.clone()))?;
        let mut body = vec![0; len + 2];
        r.read_exact(&mut body)?;
        body.truncate(len);
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(first)
}

/// How the fleet runs.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub nodes: usize,
    pub heartbeat: Duration,
    pub ttl: Duration,
    pub drain_grace: Duration,
    pub room_capacity: usize,
    /// `RUST_LOG` of the nodes.
    pub log: &'static str,
}

impl FleetOptions {
    /// For the failure test: a short TTL so that a dead node leaves soon.
    pub fn test() -> Self {
        Self {
            nodes: 3,
            heartbeat: Duration::from_millis(500),
            ttl: Duration::from_secs(3),
            drain_grace: Duration::from_secs(3),
            room_capacity: 16,
            log: "info",
        }
    }

    /// The defaults of `arena-server` (heartbeat 2 s, TTL 10 s).
    pub fn defaults() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            ttl: Duration::from_secs(10),
            drain_grace: Duration::from_secs(25),
            log: "warn,tickwire_server::lifecycle=info,tickwire_server::directory=info",
            ..Self::test()
        }
    }
}

/// A node: its process and its ports.
pub struct Node {
    pub id: String,
    pub port: u16,
    pub proc: Proc,
}

/// Redis and the `arena-server` nodes, all killed on drop.
pub struct Fleet {
    pub options: FleetOptions,
    pub room_capacity: usize,
    // Declared before `redis` so that the nodes die first.
    pub nodes: Vec<Node>,
    pub redis: Redis,
    directory: RedisDirectory,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("--- last lines of {} ---\n{}", n.id, n.proc.tail(25));
            }
        }
    }
}

/// A matchmake that did not give a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status (0: no answer).
    pub status: u16,
    pub error: String,
    pub message: String,
}

fn refused(e: ClientError) -> Refused {
    match e {
        ClientError::Matchmake {
            status,
            error,
            message,
            ..
        } => Refused {
            status,
            error,
            message,
        },
        other => Refused {
            status: 0,
            error: "transport".into(),
            message: other.to_string(),
        },
    }
}

impl Fleet {
    /// Starts Redis and the nodes and waits until every node is ready and
    /// in the directory. `None`: skipped (no redis-server, not required).
    pub async fn start(options: FleetOptions) -> Option<Self> {
        let redis = Redis::start("fleet").await?;
        let mut nodes = Vec::new();
        for k in 0..options.nodes {
            let id = format!("node-{k}");
            let port = free_port().port();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_arena-server"));
            cmd.args(["--addr", &format!("127.0.0.1:{port}"), "--no-quic"])
                .args(["--redis-url", &redis.url(), "--node-id", &id])
                .args(["--public-wss-url", &format!("wss://127.0.0.1:{port}/ws")])
                .args([
                    "--heartbeat-interval",
                    &format!("{}ms", options.heartbeat.as_millis()),
                ])
                .args(["--directory-ttl", &format!("{}ms", options.ttl.as_millis())])
                .args([
                    "--drain-grace",
                    &format!("{}ms", options.drain_grace.as_millis()),
                ])
                .args(["--max-players-per-room", &options.room_capacity.to_string()])
                .args(["--snapshot-rate", &SNAPSHOT_RATE.to_string(), "--bots", "0"])
                .args(["--max-connections-per-ip", "10000"])
                .env("TICKWIRE_FLEET_SECRET", SECRET)
                .env("RUST_LOG", options.log)
                .env("NO_COLOR", "1");
            nodes.push(Node {
                proc: Proc::spawn(&id, &mut cmd),
                id,
                port,
            });
        }
        let mut config = RedisDirectoryConfig::new(redis.url());
        config.response_timeout = Duration::from_millis(500);
        config.connection_timeout = Duration::from_millis(500);
        let directory = RedisDirectory::connect(&config).expect("the test's directory reader");
        let fleet = Self {
            room_capacity: options.room_capacity,
            options,
            nodes,
            redis,
            directory,
        };
        let want: Vec<String> = fleet.nodes.iter().map(|n| n.id.clone()).collect();
        wait_for(
            "every node ready and in the directory",
            START_DEADLINE,
            || async {
                let nodes = fleet.directory.nodes().await.map_err(|e| e.to_string())?;
                let ready: Vec<String> = nodes
                    .iter()
                    .filter(|n| n.state == tickwire_server::NodeState::Ready)
                    .map(|n| n.id.clone())
                    .collect();
                if ready == want {
                    Ok(())
                } else {
                    Err(format!("ready: {ready:?}"))
                }
            },
        )
        .await;
        Some(fleet)
    }

    pub fn node(&self, id: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("a node of the fleet")
    }

    fn node_mut(&mut self, id: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("a node of the fleet")
    }

    pub fn https(&self, id: &str) -> String {
        format!("https://127.0.0.1:{}", self.node(id).port)
    }

    pub fn matchmake_urls(&self, ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| self.https(id)).collect()
    }

    /// kill -9.
    pub fn kill_node(&mut self, id: &str) {
        self.node_mut(id).proc.kill();
    }

    pub fn sigterm(&self, id: &str) {
        self.node(id).proc.sigterm();
    }

    /// Panics unless every node of `ids` is still running.
    pub fn assert_running(&mut self, ids: &[&str]) {
        for id in ids {
            let node = self.node_mut(id);
            if let Some(status) = node.proc.exited() {
                panic!("{id} exited ({status}):\n{}", node.proc.tail(40));
            }
        }
    }

    /// Waits until node `id` exits.
    pub async fn wait_exit(&mut self, id: &str, within: Duration) -> ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.node_mut(id).proc.exited() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "{id} still running {within:?} later:\n{}",
                self.node(id).proc.tail(20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `id` printed a line with `needle`.
    pub async fn wait_line(&self, id: &str, needle: &str, within: Duration) -> Duration {
        let node = self.node(id);
        wait_for(&format!("{id} to print {needle:?}"), within, || async {
            if node.proc.printed(needle) {
                Ok(())
            } else {
                Err(node.proc.tail(3))
            }
        })
        .await
    }

    pub async fn directory_listing(&self) -> Result<(Vec<NodeInfo>, Vec<RoomInfo>), String> {
        let nodes = self.directory.nodes().await.map_err(|e| e.to_string())?;
        let rooms = self.directory.rooms().await.map_err(|e| e.to_string())?;
        Ok((nodes, rooms))
    }

    /// One `POST /matchmake {"mode": ""}` to node `id`.
    pub async fn matchmake_once(&self, id: &str) -> Result<Ticket, Refused> {
        self.matchmake_with(id, MatchmakeRequest::mode("")).await
    }

    /// One `POST /matchmake` of `request` to node `id`.
    pub async fn matchmake_with(
        &self,
        id: &str,
        request: MatchmakeRequest,
    ) -> Result<Ticket, Refused> {
        let request = request.with_auth("probe");
        matchmake(&self.https(id), &Trust::InsecureDevCertificate, &request)
            .await
            .map_err(refused)
    }

    /// Matchmakes through node `id`, connects, waits for one snapshot and
    /// leaves; returns the time from the matchmake request to the snapshot.
    pub async fn join_once(&self, id: &str) -> Result<Duration, String> {
        self.join_timed(id).await.map(|t| t[2])
    }

    /// [`Fleet::join_once`], returning the times from the matchmake
    /// request to its answer, to the welcome, and to the first snapshot.
    pub async fn join_timed(&self, id: &str) -> Result<[Duration; 3], String> {
        let t0 = Instant::now();
        let ticket = self
            .matchmake_once(id)
            .await
            .map_err(|e| format!("matchmake: {e:?}"))?;
        let matchmade = t0.elapsed();
        let options = ConnectOptions::new(Trust::InsecureDevCertificate);
        let mut client = Client::<Arena>::connect_ticket(&ticket, options)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let welcomed = t0.elapsed();
        let first = async {
            loop {
                match client.next_event().await {
                    Ok(ClientEvent::Snapshot(_)) => return Ok(()),
                    Ok(ClientEvent::Closed { code, reason }) => {
                        return Err(format!("closed: {code}: {reason}"));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), first)
            .await
            .map_err(|_| "no snapshot within 5 s".to_owned())??;
        let took = t0.elapsed();
        let _ = tokio::time::timeout(Duration::from_secs(2), client.leave()).await;
        Ok([matchmade, welcomed, took])
    }
}

mod players;
pub use players::*;
