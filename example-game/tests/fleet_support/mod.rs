//! The fleet harness of `tests/fleet.rs`: a `redis-server`, `arena-server`
//! nodes and in-process players, each process killed on drop (panics
//! included), and waits that poll with a deadline and say what they waited
//! for.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
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
use tickwire_shared::CloseCode;
use tokio::sync::{Semaphore, watch};
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

/// A connection that ended under a player.
#[derive(Debug, Clone)]
pub struct Loss {
    pub node: String,
    pub room: String,
    /// The close code, when the session reported one.
    pub code: Option<CloseCode>,
    pub what: String,
}

/// What one player saw.
#[derive(Debug, Clone, Default)]
pub struct BotView {
    pub node: Option<String>,
    pub room: Option<String>,
    pub connected: bool,
    pub connects: u32,
    /// When the current (or last) connection got its welcome.
    pub connected_at: Option<Instant>,
    pub snapshots: u64,
    pub last_snapshot: Option<Instant>,
    /// The longest time between two snapshots since the last
    /// [`Bots::reset_gaps`], on one connection.
    pub max_gap: Duration,
    pub losses: Vec<Loss>,
    /// Failed matchmakes or connects (retried), and the last one.
    pub failures: u32,
    pub last_failure: Option<String>,
    /// Matchmake request sent → first snapshot, per connection.
    pub join_latency: Vec<Duration>,
}

/// In-process players (`tickwire-client`, idle: they apply and acknowledge
/// snapshots and answer pings) that matchmake, play, and matchmake again
/// whenever their connection ends, until stopped.
pub struct Bots {
    states: Vec<Arc<Mutex<BotView>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Bots {
    /// `n` players; player i starts at i × 20 ms, at most 8 matchmake and
    /// connect at once. `urls`: matchmakers, tried in order.
    pub fn spawn(n: usize, urls: Vec<String>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let urls = Arc::new(urls);
        let connecting = Arc::new(Semaphore::new(8));
        let start = Instant::now();
        let mut states = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let state = Arc::new(Mutex::new(BotView::default()));
            states.push(Arc::clone(&state));
            tasks.push(tokio::spawn(run_bot(
                i,
                Arc::clone(&urls),
                state,
                stopped.clone(),
                Arc::clone(&connecting),
                start + Duration::from_millis(20 * i as u64),
            )));
        }
        Self {
            states,
            stop,
            tasks,
        }
    }

    pub fn view(&self) -> Vec<BotView> {
        self.states
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    pub fn reset_gaps(&self) {
        for s in &self.states {
            s.lock().unwrap_or_else(|p| p.into_inner()).max_gap = Duration::ZERO;
        }
    }

    /// The players connected to node `id` now.
    pub fn on_node(&self, id: &str) -> BTreeSet<usize> {
        self.view()
            .iter()
            .enumerate()
            .filter(|(_, b)| b.connected && b.node.as_deref() == Some(id))
            .map(|(i, _)| i)
            .collect()
    }

    /// `Ok` once every player of `who` lost a connection to node `left`
    /// and is playing on another node (welcomed, and a snapshot since).
    pub fn moved_off(&self, who: &BTreeSet<usize>, left: &str) -> Result<(), String> {
        let v = self.view();
        let waiting: Vec<usize> = who
            .iter()
            .copied()
            .filter(|&i| {
                let b = &v[i];
                !(b.connected
                    && b.last_snapshot.is_some()
                    && b.node.as_deref() != Some(left)
                    && b.losses.last().is_some_and(|l| l.node == left))
            })
            .collect();
        match waiting.first() {
            None => Ok(()),
            Some(&i) => Err(format!(
                "{} of {} not yet moved off {left}, e.g. bot{i}: {:?}",
                waiting.len(),
                who.len(),
                v[i]
            )),
        }
    }

    /// Connected players per node, and failures, for messages.
    pub fn summary(&self) -> String {
        let view = self.view();
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for b in view.iter().filter(|b| b.connected) {
            *per.entry(b.node.clone().unwrap_or_default()).or_default() += 1;
        }
        let failures: u32 = view.iter().map(|b| b.failures).sum();
        let last = view.iter().rev().find_map(|b| b.last_failure.clone());
        format!("connected per node {per:?}; {failures} failed attempts, last: {last:?}")
    }

    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for Bots {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn matchmake_any(urls: &[String], i: usize) -> Result<Ticket, ClientError> {
    let request = MatchmakeRequest::mode("").with_auth(format!("bot{i}"));
    let mut last = None;
    for url in urls {
        match matchmake(url, &Trust::InsecureDevCertificate, &request).await {
            Ok(t) => return Ok(t),
            // The matchmaker answered: its answer stands.
            Err(e @ ClientError::Matchmake { .. }) => return Err(e),
            // Not reachable: the next one.
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(ClientError::Timeout("no matchmaker")))
}

async fn run_bot(
    i: usize,
    urls: Arc<Vec<String>>,
    state: Arc<Mutex<BotView>>,
    mut stop: watch::Receiver<bool>,
    connecting: Arc<Semaphore>,
    start_at: Instant,
) {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    tokio::time::sleep_until(start_at).await;
    let options =
        ConnectOptions::new(Trust::InsecureDevCertificate).with_auth_token(format!("bot{i}"));
    // A retry's pause: 100-280 ms, spread over the players.
    let pause = Duration::from_millis(100 + (i as u64 % 10) * 20);
    while !*stop.borrow() {
        let attempt = async {
            let Ok(_permit) = connecting.acquire().await else {
                return Err("closed".to_owned());
            };
            let t0 = Instant::now();
            let ticket = matchmake_any(&urls, i)
                .await
                .map_err(|e| format!("matchmake: {e}"))?;
            let client = Client::<Arena>::connect_ticket(&ticket, options.clone())
                .await
                .map_err(|e| format!("connect to {}: {e}", ticket.node))?;
            Ok((t0, ticket, client))
        };
        let (t0, ticket, mut client) = match attempt.await {
            Ok(c) => c,
            Err(e) => {
                {
                    let mut s = lock();
                    s.failures += 1;
                    s.last_failure = Some(e);
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let room = client.welcome().room.clone();
        {
            let mut s = lock();
            s.node = Some(ticket.node.clone());
            s.room = Some(room.clone());
            s.connected = true;
            s.connects += 1;
            s.connected_at = Some(Instant::now());
            s.last_snapshot = None;
        }
        let mut first = true;
        let loss = loop {
            let ev = tokio::select! {
                _ = stop.changed() => return,
                ev = client.next_event() => ev,
            };
            let (code, what) = match ev {
                Ok(ClientEvent::Snapshot(_)) => {
                    let now = Instant::now();
                    let mut s = lock();
                    s.snapshots += 1;
                    if let Some(prev) = s.last_snapshot {
                        s.max_gap = s.max_gap.max(now - prev);
                    }
                    s.last_snapshot = Some(now);
                    if first {
                        s.join_latency.push(now - t0);
                        first = false;
                    }
                    continue;
                }
                Ok(ClientEvent::Closed { code, reason }) => (Some(code), reason),
                Ok(_) => continue,
                Err(ClientError::Closed { code, reason }) => (Some(code), reason),
                Err(e) => (None, e.to_string()),
            };
            break Loss {
                node: ticket.node.clone(),
                room: room.clone(),
                code,
                what,
            };
        };
        let mut s = lock();
        s.connected = false;
        s.last_snapshot = None;
        s.losses.push(loss);
    }
}

/// Players per room, and the nodes they were welcomed on, of the connected
/// players.
pub fn rooms_of(view: &[BotView]) -> BTreeMap<String, (usize, BTreeSet<String>)> {
    let mut rooms: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for b in view.iter().filter(|b| b.connected) {
        let e = rooms.entry(b.room.clone().unwrap_or_default()).or_default();
        e.0 += 1;
        e.1.insert(b.node.clone().unwrap_or_default());
    }
    rooms
}

/// No room over capacity, and no room name held by two nodes (the players
/// of one room name were all welcomed by one node).
pub fn check_capacity(view: &[BotView], capacity: usize) {
    for (room, (players, nodes)) in rooms_of(view) {
        assert!(
            players <= capacity,
            "room {room} has {players} players, over its capacity {capacity}"
        );
        assert!(
            nodes.len() == 1,
            "room name {room} exists on several nodes: {nodes:?}"
        );
    }
}

/// The players not in `excluded` kept their connection, node and room
/// through `phase`, and saw no snapshot gap over [`GAP_BOUND`].
pub fn check_survivors(
    before: &[BotView],
    after: &[BotView],
    excluded: &BTreeSet<usize>,
    phase: &str,
) {
    let mut worst = (Duration::ZERO, 0);
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if excluded.contains(&i) {
            continue;
        }
        assert!(
            a.connected
                && a.losses.len() == b.losses.len()
                && a.connects == b.connects
                && a.node == b.node
                && a.room == b.room,
            "bot{i} (on {:?}) was disturbed by {phase}: before {b:?}, after {a:?}",
            b.node
        );
        assert!(
            a.snapshots > b.snapshots,
            "bot{i} got no snapshot during {phase}"
        );
        if a.max_gap > worst.0 {
            worst = (a.max_gap, i);
        }
    }
    assert!(
        worst.0 < GAP_BOUND,
        "bot{} (on {:?}) went {:?} without a snapshot during {phase} (bound {GAP_BOUND:?})",
        worst.1,
        after[worst.1].node,
        worst.0
    );
    eprintln!(
        "{phase}: the other players' longest snapshot gap was {:?} (bound {GAP_BOUND:?})",
        worst.0
    );
}

/// The directory lists exactly the `live` nodes; no room of a `dead` one;
/// every room's node is live; every room with players is registered, to
/// the node that welcomed them; no name twice.
pub async fn directory_matches(
    fleet: &Fleet,
    bots: &Bots,
    live: &[&str],
    dead: &[&str],
) -> Result<(), String> {
    let (nodes, rooms) = fleet.directory_listing().await?;
    let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    if ids != live {
        return Err(format!("nodes {ids:?}, want {live:?}"));
    }
    if let Some(r) = rooms
        .iter()
        .find(|r| dead.contains(&r.node.as_str()) || !live.contains(&r.node.as_str()))
    {
        return Err(format!("stale room {r:?}"));
    }
    let names: BTreeSet<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
    if names.len() != rooms.len() {
        return Err("a room name listed twice".into());
    }
    for (room, (_, held_by)) in rooms_of(&bots.view()) {
        match rooms.iter().find(|r| r.name == room) {
            Some(r) if held_by.contains(&r.node) => {}
            Some(r) => {
                return Err(format!(
                    "room {room} registered to {}, players on {held_by:?}",
                    r.node
                ));
            }
            None => {
                return Err(format!(
                    "room {room} (players on {held_by:?}) not registered"
                ));
            }
        }
    }
    Ok(())
}

/// [`directory_matches`] within two heartbeats and a second.
pub async fn check_directory_matches(fleet: &Fleet, bots: &Bots, live: &[&str], dead: &[&str]) {
    wait_for(
        &format!("the directory to list nodes {live:?} and their players' rooms"),
        fleet.options.heartbeat * 2 + Duration::from_secs(1),
        || directory_matches(fleet, bots, live, dead),
    )
    .await;
}

/// The `q` quantile of `v` (sorted in place).
pub fn quantile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let idx = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}
