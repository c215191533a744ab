//! The node's lifecycle: **starting → ready → draining → stopped**, the
//! hooks a fleet manager (Agones, Kubernetes, systemd) plugs into, and the
//! supervisor task that moves a running server through the states.
//!
//! ```text
//!  Server::start ─▶ Starting ── listeners up ──▶ Ready ── drain() / SIGTERM ──▶ Draining ─┐
//!                   /readyz 503                  /readyz 200   hooks: ready, allocated,    │ /readyz 503
//!                                                              health every interval       │ new hellos: Reject ShuttingDown
//!                                                                                          │ rooms run on; an empty room closes
//!   Stopped ◀── sessions closed (1001 + reason), listeners closed ◀── no rooms left, or ───┘
//!   hooks: shutdown                                                   drain_grace over
//! ```
//!
//! `/healthz` (liveness) answers `200 ok` in every state in which the node
//! serves HTTP; `/readyz` (readiness) answers `200 ready` only in
//! [`NodeState::Ready`], and `503` with the state's name otherwise. See
//! [`crate::http`].
//!
//! The supervisor is the only task that calls [`LifecycleHooks`]; rooms and
//! sessions never do, so a slow hook cannot delay a tick or a join.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics as m;
use crate::rooms::RoomsControl;

/// Where a node is in its life. States only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum NodeState {
    /// Binding listeners; not ready for players yet.
    Starting,
    /// Taking new players and rooms.
    Ready,
    /// Leaving the service: no new players or rooms; running rooms finish,
    /// up to [`crate::LifecycleConfig::drain_grace`].
    Draining,
    /// Every session and listener is closed.
    Stopped,
}

impl NodeState {
    /// The lower-case name (`starting`, `ready`, `draining`, `stopped`), as
    /// `/readyz` reports it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::Stopped => "stopped",
        }
    }

    /// The state named `s` ([`NodeState::as_str`]).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "starting" => Some(Self::Starting),
            "ready" => Some(Self::Ready),
            "draining" => Some(Self::Draining),
            "stopped" => Some(Self::Stopped),
            _ => None,
        }
    }

    /// The value of the `tickwire_node_state` gauge: 0 starting, 1 ready,
    /// 2 draining, 3 stopped.
    #[must_use]
    pub fn as_gauge(self) -> f64 {
        match self {
            Self::Starting => 0.0,
            Self::Ready => 1.0,
            Self::Draining => 2.0,
            Self::Stopped => 3.0,
        }
    }
}

impl core::fmt::Display for NodeState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shared, cheap-to-clone view of a node's [`NodeState`], which can be
/// awaited.
///
/// ```
/// use tickwire_server::lifecycle::{NodeState, NodeStatus};
/// let status = NodeStatus::new();
/// assert_eq!(status.get(), NodeState::Starting);
/// ```
#[derive(Debug, Clone)]
pub struct NodeStatus {
    tx: Arc<watch::Sender<NodeState>>,
}

impl Default for NodeStatus {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeStatus {
    /// A status in [`NodeState::Starting`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(NodeState::Starting)),
        }
    }

    /// A status that is [`NodeState::Ready`] for good: what an
    /// [`crate::http::HttpContext`] that is not part of a server reports.
    #[must_use]
    pub fn always_ready() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(NodeState::Ready)),
        }
    }

    /// The state now.
    #[must_use]
    pub fn get(&self) -> NodeState {
        *self.tx.borrow()
    }

    /// Moves to `next` if it is later than the state now; returns whether it
    /// moved.
    pub(crate) fn advance(&self, next: NodeState) -> bool {
        let moved = self.tx.send_if_modified(|now| {
            if next > *now {
                *now = next;
                true
            } else {
                false
            }
        });
        if moved {
            m::node_state(next.as_gauge());
            tracing::info!(state = %next, "node state");
        }
        moved
    }

    /// Every change of state, from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<NodeState> {
        self.tx.subscribe()
    }

    /// Waits until the state is `state` or later.
    pub async fn reached(&self, state: NodeState) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|now| *now >= state).await;
    }
}

/// Where a fleet manager's calls go: each method is called by the node's
/// supervisor task (never by a room or a session) at the matching moment.
/// Every method has a default that logs with `tracing`, so an
/// implementation overrides only what it needs.
///
/// With Agones, each method is the SDK call of the same name (`Ready()`,
/// `Allocate()`, `Health()`, `Shutdown()`); see `docs/DEPLOYMENT.md`. The
/// methods are synchronous and must return quickly: an implementation that
/// talks to a sidecar spawns the call (`tokio::spawn`) and returns.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tickwire_server::lifecycle::LifecycleHooks;
///
/// /// Counts health pings; logs the rest as the defaults do.
/// #[derive(Default)]
/// struct Pings(AtomicU32);
/// impl LifecycleHooks for Pings {
///     fn health(&self) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let hooks = Pings::default();
/// hooks.health();
/// hooks.ready(); // the default: a log line
/// assert_eq!(hooks.0.load(Ordering::Relaxed), 1);
/// ```
pub trait LifecycleHooks: Send + Sync + 'static {
    /// The listeners are up and the node takes players (Agones `Ready()`).
    fn ready(&self) {
        tracing::info!("lifecycle: ready");
    }

    /// The node went from no rooms to one, while ready: it is in use
    /// (Agones `Allocate()`, for a server that allocates itself).
    fn allocated(&self) {
        tracing::info!("lifecycle: allocated (first room opened)");
    }

    /// Called every [`crate::LifecycleConfig::health_interval`] while the node is
    /// ready or draining (Agones `Health()`). It comes from the supervisor
    /// task, so it stops when the runtime stops making progress.
    fn health(&self) {
        tracing::trace!("lifecycle: health");
    }

    /// The node started draining: it takes no new players or rooms.
    fn draining(&self) {
        tracing::info!("lifecycle: draining");
    }

    /// Every session and listener is closed; the process may exit (Agones
    /// `Shutdown()`).
    fn shutdown(&self) {
        tracing::info!("lifecycle: shutdown");
    }
}

/// The default [`LifecycleHooks`]: each event is a `tracing` line.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingHooks;

impl LifecycleHooks for LoggingHooks {}

/// What the server handle asks of the supervisor. Later requests win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StopRequest {
    /// Keep running.
    None,
    /// Drain, within the grace period.
    Drain,
    /// Close everything now.
    Now,
}

/// The shutdown signal the accept loops and sessions watch: `Some(reason)`
/// once sessions must close with `ServerShutdown` and that reason.
pub(crate) type ShutdownSignal = watch::Receiver<Option<Arc<str>>>;

/// The close reason of [`crate::RunningServer::shutdown`].
pub(crate) const SHUTDOWN_REASON: &str = "server shutting down";
/// The close reason when a drain's grace period ends with players left.
pub(crate) const DRAINED_REASON: &str =
    "server drained: grace period over; connect again to play elsewhere";

/// Drives a running server through its states. The only caller of the hooks.
pub(crate) struct Supervisor {
    pub(crate) status: NodeStatus,
    pub(crate) hooks: Arc<dyn LifecycleHooks>,
    pub(crate) rooms: Arc<dyn RoomsControl>,
    pub(crate) shutdown: watch::Sender<Option<Arc<str>>>,
    /// The accept loops; each ends once the shutdown signal is sent, after
    /// its sessions (bounded by the shutdown timeout).
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) drain_grace: Duration,
    pub(crate) health_interval: Duration,
    /// The directory publisher's stop switch and task: stopped (and the
    /// node removed from the directory) once the listeners are closed.
    pub(crate) publisher: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Supervisor {
    /// Runs until the node is stopped. `requests` comes from the server
    /// handle; if the handle is dropped, the node stops at once.
    pub(crate) async fn run(self, mut requests: watch::Receiver<StopRequest>) {
        let mut health = tokio::time::interval_at(
            Instant::now() + self.health_interval,
            self.health_interval.max(Duration::from_millis(10)),
        );
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rooms = self.rooms.room_count();
        self.status.advance(NodeState::Ready);
        self.hooks.ready();
        let mut allocated = false;
        let request = loop {
            let now = *requests.borrow_and_update();
            if now != StopRequest::None {
                break now;
            }
            if !allocated && *rooms.borrow_and_update() > 0 {
                allocated = true;
                self.hooks.allocated();
            }
            tokio::select! {
                _ = health.tick() => self.hooks.health(),
                changed = rooms.changed() => if changed.is_err() { break StopRequest::Now },
                changed = requests.changed() => if changed.is_err() { break StopRequest::Now },
            }
        };
        // Refuse new players before saying so: whoever sees `Draining` (a
        // test, a fleet manager, /readyz) must find joins already refused.
        self.rooms.drain();
        self.status.advance(NodeState::Draining);
        self.hooks.draining();
        let reason = if request == StopRequest::Drain {
            self.wait_for_rooms(&mut rooms, &mut requests, &mut health)
                .await
        } else {
            SHUTDOWN_REASON
        };
        self.rooms.shutdown(reason);
        self.shutdown.send_replace(Some(Arc::from(reason)));
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "accept loop failed");
            }
        }
        if let Some((stop, task)) = self.publisher {
            stop.send_replace(true);
            if let Err(e) = task.await {
                tracing::error!(error = %e, "directory publisher failed");
            }
        }
        self.hooks.shutdown();
        self.status.advance(NodeState::Stopped);
    }

    /// While draining: waits until no room is left, the grace period ends or
    /// an immediate stop is requested; returns the close reason for the
    /// sessions that remain.
    async fn wait_for_rooms(
        &self,
        rooms: &mut watch::Receiver<usize>,
        requests: &mut watch::Receiver<StopRequest>,
        health: &mut tokio::time::Interval,
    ) -> &'static str {
        let deadline = Instant::now() + self.drain_grace;
        tracing::info!(
            rooms = *rooms.borrow(),
            grace_s = self.drain_grace.as_secs_f64(),
            "draining: waiting for rooms to finish"
        );
        loop {
            if *rooms.borrow_and_update() == 0 {
                tracing::info!("drained: no rooms left");
                return SHUTDOWN_REASON;
            }
            if *requests.borrow_and_update() == StopRequest::Now {
                return SHUTDOWN_REASON;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    tracing::info!(rooms = *rooms.borrow(), "drain grace over; closing the rooms left");
                    return DRAINED_REASON;
                }
                _ = health.tick() => self.hooks.health(),
                changed = rooms.changed() => if changed.is_err() { return SHUTDOWN_REASON },
                changed = requests.changed() => if changed.is_err() { return SHUTDOWN_REASON },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_only_move_forward() {
        let s = NodeStatus::new();
        assert!(s.advance(NodeState::Ready));
        assert!(!s.advance(NodeState::Starting));
        assert!(!s.advance(NodeState::Ready));
        assert!(s.advance(NodeState::Stopped));
        assert!(!s.advance(NodeState::Draining));
        assert_eq!(s.get(), NodeState::Stopped);
    }

    #[test]
    fn names_and_gauge_values() {
        let all = [
            NodeState::Starting,
            NodeState::Ready,
            NodeState::Draining,
            NodeState::Stopped,
        ];
        let names: Vec<_> = all.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["starting", "ready", "draining", "stopped"]);
        for s in all {
            assert_eq!(NodeState::parse(s.as_str()), Some(s));
        }
        assert_eq!(NodeState::parse("Ready"), None);
        let gauges: Vec<_> = all.iter().map(|s| s.as_gauge()).collect();
        assert_eq!(gauges, [0.0, 1.0, 2.0, 3.0]);
    }

    /// Rooms that only count, and remember what the supervisor told them.
    struct FakeRooms {
        count: watch::Sender<usize>,
        drained: std::sync::atomic::AtomicBool,
        closed_with: std::sync::Mutex<Option<String>>,
    }

    impl RoomsControl for FakeRooms {
        fn drain(&self) {
            self.drained
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        fn shutdown(&self, reason: &str) {
            *self.closed_with.lock().unwrap() = Some(reason.to_owned());
        }
        fn open_rooms(&self) -> usize {
            *self.count.borrow()
        }
        fn room_count(&self) -> watch::Receiver<usize> {
            self.count.subscribe()
        }
        fn snapshot(&self) -> Vec<crate::rooms::OpenRoom> {
            Vec::new()
        }
    }

    /// Hooks that record their calls (health pings counted apart).
    #[derive(Default)]
    struct Recorder {
        calls: std::sync::Mutex<Vec<&'static str>>,
        pings: std::sync::atomic::AtomicU32,
    }

    impl LifecycleHooks for Recorder {
        fn ready(&self) {
            self.calls.lock().unwrap().push("ready");
        }
        fn allocated(&self) {
            self.calls.lock().unwrap().push("allocated");
        }
        fn health(&self) {
            self.pings
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn draining(&self) {
            self.calls.lock().unwrap().push("draining");
        }
        fn shutdown(&self) {
            self.calls.lock().unwrap().push("shutdown");
        }
    }

    struct Node {
        status: NodeStatus,
        rooms: Arc<FakeRooms>,
        hooks: Arc<Recorder>,
        stop: watch::Sender<StopRequest>,
        signal: ShutdownSignal,
        task: JoinHandle<()>,
    }

    /// A supervisor over fake rooms, with a 10 s grace and 1 s health pings.
    fn node() -> Node {
        let status = NodeStatus::new();
        let rooms = Arc::new(FakeRooms {
            count: watch::Sender::new(0),
            drained: std::sync::atomic::AtomicBool::new(false),
            closed_with: std::sync::Mutex::new(None),
        });
        let hooks = Arc::new(Recorder::default());
        let (shutdown, signal) = watch::channel(None);
        let (stop, requests) = watch::channel(StopRequest::None);
        let supervisor = Supervisor {
            status: status.clone(),
            hooks: Arc::clone(&hooks) as Arc<dyn LifecycleHooks>,
            rooms: Arc::clone(&rooms) as Arc<dyn RoomsControl>,
            shutdown,
            tasks: Vec::new(),
            drain_grace: Duration::from_secs(10),
            health_interval: Duration::from_secs(1),
            publisher: None,
        };
        let task = tokio::spawn(supervisor.run(requests));
        Node {
            status,
            rooms,
            hooks,
            stop,
            signal,
            task,
        }
    }

    impl Node {
        fn calls(&self) -> Vec<&'static str> {
            self.hooks.calls.lock().unwrap().clone()
        }
        fn pings(&self) -> u32 {
            self.hooks.pings.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn closed_with(&self) -> Option<String> {
            self.rooms.closed_with.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_waits_out_the_grace_then_closes_with_the_drained_reason() {
        let n = node();
        n.status.reached(NodeState::Ready).await;
        n.rooms.count.send_replace(2);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(n.calls(), ["ready", "allocated"]);
        assert_eq!(n.pings(), 3);
        let t0 = Instant::now();
        n.stop.send_replace(StopRequest::Drain);
        n.status.reached(NodeState::Draining).await;
        assert!(n.rooms.drained.load(std::sync::atomic::Ordering::Relaxed));
        // One room finishes; the other does not.
        n.rooms.count.send_replace(1);
        n.status.reached(NodeState::Stopped).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(10));
        assert_eq!(n.closed_with().as_deref(), Some(DRAINED_REASON));
        assert_eq!(n.signal.borrow().as_deref(), Some(DRAINED_REASON));
        assert_eq!(n.calls(), ["ready", "allocated", "draining", "shutdown"]);
        // Health pings go on while draining.
        assert_eq!(n.pings(), 3 + 10);
        n.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_ends_when_the_last_room_closes() {
        let n = node();
        n.rooms.count.send_replace(1);
        n.stop.send_replace(StopRequest::Drain);
        n.status.reached(NodeState::Draining).await;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(n.status.get(), NodeState::Draining);
        n.rooms.count.send_replace(0);
        n.status.reached(NodeState::Stopped).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(4));
        assert_eq!(n.closed_with().as_deref(), Some(SHUTDOWN_REASON));
        n.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stop_now_cuts_a_drain_short_and_a_dropped_handle_stops_the_node() {
        let n = node();
        n.rooms.count.send_replace(1);
        n.stop.send_replace(StopRequest::Drain);
        n.status.reached(NodeState::Draining).await;
        let t0 = Instant::now();
        n.stop.send_replace(StopRequest::Now);
        n.status.reached(NodeState::Stopped).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        assert_eq!(n.closed_with().as_deref(), Some(SHUTDOWN_REASON));

        let Node {
            status,
            hooks,
            stop,
            task,
            ..
        } = node();
        status.reached(NodeState::Ready).await;
        drop(stop);
        status.reached(NodeState::Stopped).await;
        assert_eq!(
            *hooks.calls.lock().unwrap(),
            ["ready", "draining", "shutdown"]
        );
        task.await.unwrap();
    }

    #[tokio::test]
    async fn reached_waits_for_a_later_state() {
        let s = NodeStatus::new();
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.reached(NodeState::Draining).await })
        };
        s.advance(NodeState::Ready);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        s.advance(NodeState::Stopped);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woke up")
            .expect("no panic");
    }
}
