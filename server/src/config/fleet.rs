//! How a node presents itself to the fleet: [`FleetConfig`].

use std::time::Duration;

use crate::matchmaking::FleetSecret;

/// How a node registers itself and its rooms in the room directory
/// ([`crate::directory`]; in memory unless the server is given another
/// with [`crate::Server::with_directory`]). A task of its own does it,
/// never a room's tick.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::config::FleetConfig;
/// let fleet = FleetConfig::default().with_node_id("eu-1").with_mode("ffa");
/// assert_eq!(fleet.ttl, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetConfig {
    /// This node's id, unique in the fleet (a pod or host name). Default
    /// `node`.
    pub node_id: String,
    /// The WebSocket URL clients should use to reach this node (behind a
    /// proxy, the proxy's). Default: `wss://localhost:PORT/ws` (or `ws://`
    /// in plain mode) from the bound address.
    pub public_wss_url: Option<String>,
    /// The QUIC URL clients should use. Default: `quic://localhost:PORT`
    /// when QUIC is on.
    pub public_quic_url: Option<String>,
    /// The game mode this node's rooms are registered with. Default empty.
    pub mode: String,
    /// How often the node refreshes its entry and its rooms'. Default 2 s.
    pub heartbeat_interval: Duration,
    /// How long an entry lives without a refresh: a node that dies leaves
    /// the directory (with its rooms) within this. More than
    /// `heartbeat_interval`. Default 10 s.
    pub ttl: Duration,
    /// The fleet's shared secret, which signs and checks seat tokens
    /// ([`crate::matchmaking`]). With it, the node answers `POST /matchmake`
    /// and checks the seat token of every hello that has one. Without it
    /// (the default), matchmaking is off (`/matchmake` answers `404`) and
    /// a hello with a seat token is rejected (`SeatTokenInvalid`). Never
    /// logged.
    pub secret: Option<FleetSecret>,
    /// Admit only hellos with a valid seat token (`SeatTokenRequired`
    /// otherwise): players must come through `POST /matchmake`. Needs
    /// [`FleetConfig::secret`]. Default false.
    pub require_seat_token: bool,
    /// How long a seat token is accepted after the matchmaker issued it
    /// (the nodes' clocks must agree to well within it). Default 30 s.
    pub seat_ttl: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            node_id: "node".to_owned(),
            public_wss_url: None,
            public_quic_url: None,
            mode: String::new(),
            heartbeat_interval: Duration::from_secs(2),
            ttl: Duration::from_secs(10),
            secret: None,
            require_seat_token: false,
            seat_ttl: Duration::from_secs(30),
        }
    }
}

impl FleetConfig {
    /// Sets [`FleetConfig::node_id`].
    #[must_use]
    pub fn with_node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = id.into();
        self
    }

    /// Sets [`FleetConfig::mode`].
    #[must_use]
    pub fn with_mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = mode.into();
        self
    }

    /// Sets [`FleetConfig::secret`] (matchmaking on).
    #[must_use]
    pub fn with_secret(mut self, secret: FleetSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Sets [`FleetConfig::require_seat_token`].
    #[must_use]
    pub fn with_require_seat_token(mut self, on: bool) -> Self {
        self.require_seat_token = on;
        self
    }

    /// Sets [`FleetConfig::seat_ttl`].
    #[must_use]
    pub fn with_seat_ttl(mut self, ttl: Duration) -> Self {
        self.seat_ttl = ttl;
        self
    }

    /// Sets [`FleetConfig::heartbeat_interval`] and [`FleetConfig::ttl`].
    #[must_use]
    pub fn with_heartbeat(mut self, interval: Duration, ttl: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.ttl = ttl;
        self
    }
}
