//! Which transport carries the next connection attempt, without the
//! browser: WebTransport first (QUIC datagrams: a lost snapshot costs one
//! snapshot, not a stalled stream), WebSocket when WebTransport is missing,
//! fails, or has not connected within a deadline; and a memory of failures,
//! so that later attempts go straight to the WebSocket instead of paying
//! the deadline again.
//!
//! The driver ([`crate::socket::GameClient`]) asks [`Selector::choose`]
//! at each attempt, starts an [`Attempt`], and reports what happened:
//!
//! ```text
//!  attempt due ─▶ choose(wall_now, supported) ─▶ WebTransport ─┬▶ welcomed ─▶ webtransport_worked()
//!                                                              ├▶ failed / Attempt::expired
//!                                                              │    ─▶ webtransport_failed(wall_now)
//!                                                              │       ─▶ fallback() = WebSocket, same attempt
//!                                               WebSocket ─────┴▶ as before: the connection's own backoff
//! ```
//!
//! ```
//! use tickwire_web::transport::{
//!     MemoryStore, Selector, TransportKind, TransportMode, TransportPolicy,
//! };
//!
//! let policy = TransportPolicy::default(); // auto, 2.5 s deadline, 10 min memory
//! let mut s = Selector::new(policy, "game.example:443", MemoryStore::default());
//! assert_eq!(s.choose(0.0, true), TransportKind::WebTransport);
//! // It did not connect in time: remember that, and fall back at once.
//! s.webtransport_failed(2_500.0);
//! assert_eq!(s.fallback(), Some(TransportKind::WebSocket));
//! // Later attempts skip WebTransport until the failure is forgotten.
//! assert_eq!(s.choose(60_000.0, true), TransportKind::WebSocket);
//! assert_eq!(s.choose(2_500.0 + 600_000.0, true), TransportKind::WebTransport);
//! // Forced by the page: no WebTransport, no fallback.
//! let ws = TransportPolicy { mode: TransportMode::WebSocket, ..TransportPolicy::default() };
//! let mut s = Selector::new(ws, "game.example:443", MemoryStore::default());
//! assert_eq!(s.choose(0.0, true), TransportKind::WebSocket);
//! ```

/// A transport a browser can reach a tickwire server with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// WSS: one ordered, reliable byte stream (TCP).
    WebSocket,
    /// WebTransport over HTTP/3: a reliable stream for the protocol's
    /// reliable messages, datagrams for snapshots, inputs and acks.
    WebTransport,
}

impl TransportKind {
    /// `"websocket"` or `"webtransport"`: the name the JS API reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::WebTransport => "webtransport",
        }
    }
}

/// Which transports the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportMode {
    /// WebTransport when the browser has it and it has not failed recently,
    /// falling back to WebSocket. The default.
    #[default]
    Auto,
    /// WebSocket only.
    WebSocket,
    /// WebTransport only: no fallback (a browser without it cannot
    /// connect). For tests and measurements.
    WebTransport,
}

/// A transport mode name that is not one of `auto`, `websocket`,
/// `webtransport`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport \"{0}\": expected \"auto\", \"websocket\" or \"webtransport\"")]
pub struct UnknownTransport(pub String);

impl std::str::FromStr for TransportMode {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "websocket" => Ok(Self::WebSocket),
            "webtransport" => Ok(Self::WebTransport),
            other => Err(UnknownTransport(other.to_owned())),
        }
    }
}

/// The transport choice and its timings, with documented defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransportPolicy {
    /// Which transports to use. Default: [`TransportMode::Auto`].
    pub mode: TransportMode,
    /// How long a WebTransport attempt may take, from its start (discovery
    /// included) to the server's welcome, before the client gives up on it
    /// and connects over WebSocket. Default: 2,500 ms
    /// ([`DEFAULT_DEADLINE_MS`]). Only in [`TransportMode::Auto`].
    pub deadline_ms: f64,
    /// How long a WebTransport failure is remembered: attempts in that time
    /// use WebSocket directly. Default: 600,000 ms (10 minutes,
    /// [`DEFAULT_REMEMBER_MS`]).
    pub remember_failure_ms: f64,
}

/// [`TransportPolicy::deadline_ms`]'s default.
pub const DEFAULT_DEADLINE_MS: f64 = 2_500.0;
/// [`TransportPolicy::remember_failure_ms`]'s default.
pub const DEFAULT_REMEMBER_MS: f64 = 600_000.0;

impl Default for TransportPolicy {
    fn default() -> Self {
        Self {
            mode: TransportMode::Auto,
            deadline_ms: DEFAULT_DEADLINE_MS,
            remember_failure_ms: DEFAULT_REMEMBER_MS,
        }
    }
}

/// Where failures are remembered: a key (the server's host) to the wall
/// time (`Date.now()`, ms since the epoch) until which WebTransport is
/// skipped. The browser keeps it in `localStorage` when it can, so the
/// memory outlives the page; [`MemoryStore`] otherwise.
pub trait FailureStore {
    /// The remembered time for `key`, if any.
    fn get(&self, key: &str) -> Option<f64>;
    /// Remembers `until` for `key` (`None` forgets).
    fn set(&mut self, key: &str, until: Option<f64>);
}

/// A [`FailureStore`] in memory: the fallback when `localStorage` is not
/// available (a worker, a privacy mode), and the tests'. A page talks to
/// a server or a few, so a list (no hasher in the wasm bundle).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Vec<(String, f64)>);

impl FailureStore for MemoryStore {
    fn get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, t)| *t)
    }

    fn set(&mut self, key: &str, until: Option<f64>) {
        self.0.retain(|(k, _)| k != key);
        if let Some(t) = until {
            self.0.push((key.to_owned(), t));
        }
    }
}

/// The transport choice for one server; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Selector<S> {
    policy: TransportPolicy,
    key: String,
    store: S,
}

impl<S: FailureStore> Selector<S> {
    /// A selector for the server keyed `key` (its `host:port`).
    pub fn new(policy: TransportPolicy, key: impl Into<String>, store: S) -> Self {
        Self {
            policy,
            key: key.into(),
            store,
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &TransportPolicy {
        &self.policy
    }

    /// Changes the policy (from the next attempt on).
    pub fn set_policy(&mut self, policy: TransportPolicy) {
        self.policy = policy;
    }

    /// Changes the server (a matchmaker's node); its failures are its own.
    pub fn set_key(&mut self, key: impl Into<String>) {
        self.key = key.into();
    }

    /// The transport for an attempt starting at wall time `wall_now_ms`;
    /// `supported` says whether the browser has `WebTransport`.
    pub fn choose(&mut self, wall_now_ms: f64, supported: bool) -> TransportKind {
        let mode = self.policy.mode;
        match mode {
            TransportMode::WebSocket => TransportKind::WebSocket,
            TransportMode::WebTransport => TransportKind::WebTransport,
            TransportMode::Auto if supported && !self.remembers_failure(wall_now_ms) => {
                TransportKind::WebTransport
            }
            TransportMode::Auto => TransportKind::WebSocket,
        }
    }

    /// True while a WebTransport failure is remembered (its time has not
    /// passed). A stored time that is not finite, or further ahead than
    /// the policy's memory (a clock that went back, a bad value), is
    /// forgotten.
    pub fn remembers_failure(&mut self, wall_now_ms: f64) -> bool {
        let Some(until) = self.store.get(&self.key) else {
            return false;
        };
        let sane = until.is_finite() && until <= wall_now_ms + self.policy.remember_failure_ms;
        if sane && wall_now_ms < until {
            return true;
        }
        self.store.set(&self.key, None);
        false
    }

    /// WebTransport failed (did not open, closed before the welcome, or
    /// missed the deadline) at `wall_now_ms`: remembered for
    /// [`TransportPolicy::remember_failure_ms`].
    pub fn webtransport_failed(&mut self, wall_now_ms: f64) {
        let until = wall_now_ms + self.policy.remember_failure_ms.max(0.0);
        if until.is_finite() && self.policy.remember_failure_ms > 0.0 {
            self.store.set(&self.key, Some(until));
        }
    }

    /// A WebTransport session was welcomed: any remembered failure is
    /// forgotten.
    pub fn webtransport_worked(&mut self) {
        if self.store.get(&self.key).is_some() {
            self.store.set(&self.key, None);
        }
    }

    /// The transport to retry a failed WebTransport attempt with, at once
    /// and within the same attempt: WebSocket in [`TransportMode::Auto`],
    /// none otherwise (the connection's backoff then applies).
    #[must_use]
    pub fn fallback(&self) -> Option<TransportKind> {
        (self.policy.mode == TransportMode::Auto).then_some(TransportKind::WebSocket)
    }
}

/// One connection attempt on one transport (browser `performance.now()`
/// milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// The transport.
    pub kind: TransportKind,
    /// When it started.
    pub started_ms: f64,
    /// When it must have been welcomed, if it has a deadline.
    pub deadline_ms: Option<f64>,
}

impl Attempt {
    /// An attempt on `kind` starting at `now_ms`: a WebTransport attempt
    /// that may fall back gets `policy`'s deadline.
    #[must_use]
    pub fn new(kind: TransportKind, now_ms: f64, policy: &TransportPolicy) -> Self {
        let deadline_ms = (kind == TransportKind::WebTransport
            && policy.mode == TransportMode::Auto)
            .then(|| now_ms + policy.deadline_ms.max(0.0));
        Self {
            kind,
            started_ms: now_ms,
            deadline_ms,
        }
    }

    /// True when the deadline passed without a welcome.
    #[must_use]
    pub fn expired(&self, now_ms: f64) -> bool {
        self.deadline_ms.is_some_and(|d| now_ms >= d)
    }

    /// The welcome arrived: no deadline any more.
    pub fn welcomed(&mut self) {
        self.deadline_ms = None;
    }

    /// Whether this attempt's transport closing (or failing to open) is a
    /// WebTransport failure to fall back from, rather than an ending for
    /// the connection: a WebTransport attempt that may fall back and was
    /// not welcomed, unless the server ended the session itself
    /// (`session_ended`: a reject, a protocol close), which says the
    /// transport works.
    #[must_use]
    pub fn falls_back(&self, session_ended: bool) -> bool {
        self.kind == TransportKind::WebTransport && self.deadline_ms.is_some() && !session_ended
    }
}

/// Where WebTransport is announced for the server whose WebSocket endpoint
/// is `ws_url`: the same origin's `/webtransport` (`wss://h/ws` gives
/// `https://h/webtransport`, `ws://` gives `http://`). `None` for a URL
/// that is not `ws://` or `wss://`.
#[must_use]
pub fn discovery_url(ws_url: &str) -> Option<String> {
    let (scheme, rest) = ws_url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "wss" => "https",
        "ws" => "http",
        _ => return None,
    };
    let host = host_of(rest)?;
    Some(format!("{scheme}://{host}/webtransport"))
}

/// The `host[:port]` of `ws_url`, lowercased: the key failures are
/// remembered under. The whole URL when it has no `scheme://`.
#[must_use]
pub fn host_key(ws_url: &str) -> String {
    ws_url
        .split_once("://")
        .and_then(|(_, rest)| host_of(rest))
        .unwrap_or(ws_url)
        .to_ascii_lowercase()
}

/// The authority of a URL's rest after `scheme://`, without user info.
fn host_of(rest: &str) -> Option<&str> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> Selector<MemoryStore> {
        Selector::new(TransportPolicy::default(), "h:1", MemoryStore::default())
    }

    #[test]
    fn auto_prefers_webtransport_only_where_the_browser_has_it() {
        let mut s = auto();
        assert_eq!(s.choose(0.0, true), TransportKind::WebTransport);
        assert_eq!(s.choose(0.0, false), TransportKind::WebSocket);
        assert_eq!(s.fallback(), Some(TransportKind::WebSocket));
    }

    #[test]
    fn a_failure_is_remembered_for_the_policy_time_then_forgotten() {
        let mut s = auto();
        s.webtransport_failed(1_000.0);
        assert_eq!(s.choose(1_001.0, true), TransportKind::WebSocket);
        assert_eq!(
            s.choose(1_000.0 + DEFAULT_REMEMBER_MS - 1.0, true),
            TransportKind::WebSocket
        );
        assert_eq!(
            s.choose(1_000.0 + DEFAULT_REMEMBER_MS, true),
            TransportKind::WebTransport
        );
        // Forgotten, not just expired.
        assert_eq!(s.store.get("h:1"), None);
    }

    #[test]
    fn a_welcome_forgets_a_failure_and_failures_are_per_server() {
        let mut s = auto();
        s.webtransport_failed(0.0);
        s.set_key("other:1");
        assert_eq!(s.choose(1.0, true), TransportKind::WebTransport);
        s.set_key("h:1");
        assert_eq!(s.choose(1.0, true), TransportKind::WebSocket);
        s.webtransport_worked();
        assert_eq!(s.choose(2.0, true), TransportKind::WebTransport);
    }

    #[test]
    fn stored_times_that_make_no_sense_are_forgotten() {
        for bad in [f64::NAN, f64::INFINITY, 1e300] {
            let mut store = MemoryStore::default();
            store.set("h:1", Some(bad));
            let mut s = Selector::new(TransportPolicy::default(), "h:1", store);
            assert_eq!(s.choose(0.0, true), TransportKind::WebTransport, "{bad}");
            assert_eq!(s.store.get("h:1"), None);
        }
        // A zero memory remembers nothing.
        let policy = TransportPolicy {
            remember_failure_ms: 0.0,
            ..TransportPolicy::default()
        };
        let mut s = Selector::new(policy, "h:1", MemoryStore::default());
        s.webtransport_failed(0.0);
        assert_eq!(s.choose(0.0, true), TransportKind::WebTransport);
    }

    #[test]
    fn forced_modes_ignore_support_and_memory_and_never_fall_back() {
        for (mode, kind) in [
            (TransportMode::WebSocket, TransportKind::WebSocket),
            (TransportMode::WebTransport, TransportKind::WebTransport),
        ] {
            let policy = TransportPolicy {
                mode,
                ..TransportPolicy::default()
            };
            let mut s = Selector::new(policy, "h:1", MemoryStore::default());
            s.webtransport_failed(0.0);
            assert_eq!(s.choose(1.0, false), kind);
            assert_eq!(s.fallback(), None);
            assert_eq!(Attempt::new(kind, 0.0, &policy).deadline_ms, None);
        }
    }

    #[test]
    fn only_an_auto_webtransport_attempt_has_a_deadline() {
        let policy = TransportPolicy::default();
        let mut a = Attempt::new(TransportKind::WebTransport, 100.0, &policy);
        assert!(!a.expired(100.0 + DEFAULT_DEADLINE_MS - 1.0));
        assert!(a.expired(100.0 + DEFAULT_DEADLINE_MS));
        a.welcomed();
        assert!(!a.expired(1e12));
        let ws = Attempt::new(TransportKind::WebSocket, 100.0, &policy);
        assert!(!ws.expired(1e12));
    }

    #[test]
    fn only_an_unwelcomed_webtransport_attempt_that_the_server_did_not_end_falls_back() {
        let policy = TransportPolicy::default();
        let mut wt = Attempt::new(TransportKind::WebTransport, 0.0, &policy);
        assert!(wt.falls_back(false));
        assert!(
            !wt.falls_back(true),
            "a reject over WebTransport is an answer"
        );
        wt.welcomed();
        assert!(!wt.falls_back(false), "a loss after the welcome is a loss");
        let ws = Attempt::new(TransportKind::WebSocket, 0.0, &policy);
        assert!(!ws.falls_back(false));
        let forced = TransportPolicy {
            mode: TransportMode::WebTransport,
            ..policy
        };
        assert!(!Attempt::new(TransportKind::WebTransport, 0.0, &forced).falls_back(false));
    }

    #[test]
    fn modes_parse_from_their_names() {
        assert_eq!("auto".parse(), Ok(TransportMode::Auto));
        assert_eq!("websocket".parse(), Ok(TransportMode::WebSocket));
        assert_eq!("webtransport".parse(), Ok(TransportMode::WebTransport));
        assert_eq!(
            "quic".parse::<TransportMode>(),
            Err(UnknownTransport("quic".into()))
        );
        for kind in [TransportKind::WebSocket, TransportKind::WebTransport] {
            assert_eq!(kind.name().parse::<TransportMode>().map(|_| ()), Ok(()));
        }
    }

    #[test]
    fn discovery_is_on_the_websocket_endpoints_origin() {
        for (ws, want) in [
            (
                "wss://localhost:8443/ws",
                Some("https://localhost:8443/webtransport"),
            ),
            (
                "ws://127.0.0.1:8080/ws?x=1",
                Some("http://127.0.0.1:8080/webtransport"),
            ),
            (
                "WSS://u:p@Game.Example/ws",
                Some("https://Game.Example/webtransport"),
            ),
            ("https://h/ws", None),
            ("wss:///ws", None),
            ("nonsense", None),
        ] {
            assert_eq!(discovery_url(ws).as_deref(), want, "{ws}");
        }
        assert_eq!(host_key("wss://Game.Example:443/ws"), "game.example:443");
        assert_eq!(host_key("nonsense"), "nonsense");
    }
}
