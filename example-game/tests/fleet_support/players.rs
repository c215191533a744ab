//! The players of the fleet test: in-process `tickwire-client`s that
//! matchmake, play and matchmake again, what each of them saw, and the
//! checks made from that.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arena::Arena;
use tickwire_client::matchmake::{MatchmakeRequest, Ticket, matchmake};
use tickwire_client::{Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_shared::CloseCode;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::{Fleet, GAP_BOUND, wait_for};

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

    /// `Ok` once every player is connected and has had a snapshot.
    pub fn all_in(&self) -> Result<(), String> {
        let v = self.view();
        let ready = v.iter().filter(|b| b.connected && b.snapshots > 0).count();
        if ready == v.len() {
            Ok(())
        } else {
            Err(format!("{ready}/{} in; {}", v.len(), self.summary()))
        }
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
