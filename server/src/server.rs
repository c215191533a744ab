//! The server: binds, runs rooms and sessions, shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::auth::Authenticator;
use crate::config::{ConfigError, ServerConfig, TlsMode};
use crate::console::Console;
use crate::directory::publisher::Publisher;
use crate::directory::{Directory, MemoryDirectory, NodeInfo};
use crate::game::Game;
use crate::http::{HttpContext, HttpError, OriginPolicy, StaticFiles, websocket_config};
use crate::lifecycle::{
    LifecycleHooks, LoggingHooks, NodeState, NodeStatus, StopRequest, Supervisor,
};
use crate::matchmaking::{MatchmakeAuth, Matchmaker, MatchmakerConfig, PassThroughAuth};
use crate::room_config::{RoomConfig, RoomConfigHook, RoomSpec};
use crate::rooms::{ConsoleControl, Rooms, RoomsControl};
use crate::session::Shared;
use crate::stats::{ServerStats, StatsCollector};
use crate::tls::{TlsError, TlsIdentity};
use crate::transport::caps::ConnectionLimits;
use crate::transport::webtransport;
use crate::transport::{quic, wss};
use crate::webtransport::Discovery;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates could not be loaded or made.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The static directory could not be loaded.
    #[error("static files: {0}")]
    Static(#[from] HttpError),
    /// A listener (TCP, or UDP for QUIC) could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics exporter could not start.
    #[error("metrics exporter: {0}")]
    Metrics(String),
}

/// The WebSocket limits of a session. Incoming messages are capped by
/// [`crate::ListenerConfig::max_ws_message_bytes`], but outgoing ones (a full snapshot
/// of a large world) may be as large as clients accept,
/// [`tickwire_shared::Limits::max_server_message_bytes`]: tungstenite refuses
/// to queue a frame that does not fit its write buffer cap (`WriteBufferFull`,
/// which would end the session), so the cap must hold the largest outgoing
/// message. The buffer only grows that far while such a message is written.
fn ws_config(config: &ServerConfig) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    let incoming = websocket_config(config.listener.max_ws_message_bytes);
    // Room for two maximal outgoing frames (14 bytes of header each) beyond
    // the write buffer target, as `websocket_config` allows for incoming ones.
    let outgoing = incoming.write_buffer_size.saturating_add(
        config
            .limits
            .max_server_message_bytes
            .saturating_add(14)
            .saturating_mul(2),
    );
    incoming.max_write_buffer_size(outgoing.max(incoming.max_write_buffer_size))
}

/// A game server, not yet listening.
pub struct Server<G: Game> {
    config: ServerConfig,
    factory: Box<dyn Fn(&str) -> G + Send + Sync>,
    hooks: Arc<dyn LifecycleHooks>,
    directory: Arc<dyn Directory>,
    matchmake_auth: Arc<dyn MatchmakeAuth>,
    /// Files served from memory where the static directory has none.
    fallback_files: Vec<(String, bytes::Bytes)>,
    auth: Option<Arc<dyn Authenticator<G::User>>>,
    room_config: Option<Arc<RoomConfigHook>>,
}

impl<G: Game> Server<G> {
    /// A server whose rooms each run a game made by `factory(room_name)`.
    pub fn new(config: ServerConfig, factory: impl Fn(&str) -> G + Send + Sync + 'static) -> Self {
        Self {
            config,
            factory: Box::new(factory),
            hooks: Arc::new(LoggingHooks),
            directory: Arc::new(MemoryDirectory::new()),
            matchmake_auth: Arc::new(PassThroughAuth),
            fallback_files: Vec::new(),
            auth: None,
            room_config: None,
        }
    }

    /// Gives each room its own [`RoomConfig`]: `hook(room, default)` says
    /// what room `room` (its name and game mode, see [`RoomSpec`]) runs
    /// with, `default` being [`ServerConfig::room`]. The room then ticks at
    /// its own rate, sends snapshots at its own interval, admits at most its
    /// own `max_clients`, and applies its own limits (input and message
    /// rates, queues, pacing, byte budget, resume grace). Default: every
    /// room runs with [`ServerConfig::room`].
    ///
    /// The hook runs when a room is about to open (possibly more than once
    /// for one room, and on a joining client's task under the room
    /// registry's lock): keep it a quick, pure function of its arguments,
    /// such as a table lookup. Its result is checked with
    /// [`RoomConfig::validate`]: an invalid config does not open the room;
    /// the join that would have opened it is rejected with `InvalidRoom`,
    /// the [`crate::RoomConfigError`] is logged (and counted in
    /// `tickwire_room_configs_refused_total`), and the server and its other
    /// rooms go on.
    ///
    /// Like Colyseus's `gameServer.define("duel", DuelRoom, options)`, by
    /// mode (set by the seat token of [`crate::matchmaking`], else the
    /// node's [`crate::FleetConfig::mode`]) or by room name:
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use tickwire_server::{Game, RoomConfig, RoomSpec, Server, ServerConfig};
    /// # fn f<G: Game>(factory: impl Fn(&str) -> G + Send + Sync + 'static) {
    /// let server = Server::new(ServerConfig::default(), factory).with_room_config(
    ///     |room: &RoomSpec<'_>, default: &RoomConfig| match room.mode {
    ///         "duel" => default.clone().with_max_clients(2).with_tick_rate(60),
    ///         "lobby" => default.clone().with_max_clients(200).with_tick_rate(10),
    ///         _ if room.name.starts_with("turn-") => default
    ///             .clone()
    ///             .with_tick_rate(5)
    ///             .with_resume_grace(Duration::from_secs(300)),
    ///         _ => default.clone(),
    ///     },
    /// );
    /// # }
    /// ```
    #[must_use]
    pub fn with_room_config(
        mut self,
        hook: impl Fn(&RoomSpec<'_>, &RoomConfig) -> RoomConfig + Send + Sync + 'static,
    ) -> Self {
        self.room_config = Some(Arc::new(hook));
        self
    }

    /// Serves `body` at `url_path` (such as `/index.html`, which also
    /// answers `/`) unless [`crate::ListenerConfig::static_dir`] has a file there: a
    /// page embedded in the binary, for example one that says how to build
    /// the web client, so that the URL a server prints never answers 404.
    /// The content type comes from the extension.
    ///
    /// ```no_run
    /// # use tickwire_server::{Server, ServerConfig};
    /// # fn demo<G: tickwire_server::Game>(server: Server<G>) -> Server<G> {
    /// server.with_fallback_file("/index.html", "<!doctype html><p>Run <code>make web</code> first.</p>")
    /// # }
    /// ```
    #[must_use]
    pub fn with_fallback_file(mut self, url_path: &str, body: impl Into<bytes::Bytes>) -> Self {
        self.fallback_files.push((url_path.to_owned(), body.into()));
        self
    }

    /// Sets the hook that admits joining clients off the room tasks (see
    /// [`crate::auth`]): it may await, sees the request's context
    /// ([`crate::auth::AuthRequest`]: address, `Origin`, the hello's token and room…),
    /// and gets [`crate::SessionConfig::auth_timeout`] before the client is
    /// rejected with `AuthTimeout`. With it, [`Game::on_auth`] is not
    /// called. Default none: `on_auth` decides, on the room task.
    ///
    /// ```no_run
    /// # use tickwire_server::{AuthError, Game, Server, ServerConfig};
    /// use tickwire_server::auth::AuthRequest;
    /// # fn f<G: Game<User = String>>(factory: impl Fn(&str) -> G + Send + Sync + 'static) {
    /// let server = Server::new(ServerConfig::default(), factory).with_auth(|req: AuthRequest| async move {
    ///     match req.token.as_deref() {
    ///         Some(t) if t.starts_with("user-") => Ok(t.to_owned()),
    ///         _ => Err(AuthError::failed("unknown user")),
    ///     }
    /// });
    /// # }
    /// ```
    #[must_use]
    pub fn with_auth(mut self, auth: impl Authenticator<G::User>) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Sets the hook that authenticates `POST /matchmake` requests (see
    /// [`crate::matchmaking`]; matchmaking needs
    /// [`crate::config::FleetConfig::secret`]). Default
    /// [`PassThroughAuth`]: the request's `auth` is the identity, and the
    /// game's `on_auth` on the node that admits the player sees it.
    #[must_use]
    pub fn with_matchmake_auth(mut self, auth: impl MatchmakeAuth) -> Self {
        self.matchmake_auth = Arc::new(auth);
        self
    }

    /// Sets the room directory the node registers itself and its rooms in
    /// (see [`crate::config::FleetConfig`]). Default: a
    /// [`MemoryDirectory`] of its own.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use tickwire_server::{Game, Server, ServerConfig};
    /// use tickwire_server::directory::{RedisDirectory, RedisDirectoryConfig};
    /// # fn f<G: Game>(factory: impl Fn(&str) -> G + Send + Sync + 'static) -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = RedisDirectory::connect(&RedisDirectoryConfig::new("redis://127.0.0.1:6379"))?;
    /// let server = Server::new(ServerConfig::default(), factory).with_directory(Arc::new(redis));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = directory;
        self
    }

    /// Sets the [`LifecycleHooks`] (where a fleet manager's SDK calls go).
    /// Default [`LoggingHooks`].
    ///
    /// ```no_run
    /// # use tickwire_server::{Game, Server, ServerConfig};
    /// use tickwire_server::lifecycle::LifecycleHooks;
    /// struct Agones;
    /// impl LifecycleHooks for Agones {
    ///     fn ready(&self) { /* tokio::spawn(sdk.ready()) */ }
    ///     fn health(&self) { /* tokio::spawn(sdk.health()) */ }
    ///     fn shutdown(&self) { /* tokio::spawn(sdk.shutdown()) */ }
    /// }
    /// # fn f<G: Game>(factory: impl Fn(&str) -> G + Send + Sync + 'static) {
    /// let server = Server::new(ServerConfig::default(), factory).with_lifecycle_hooks(Agones);
    /// # }
    /// ```
    #[must_use]
    pub fn with_lifecycle_hooks(mut self, hooks: impl LifecycleHooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// Loads certificates and static files, binds, and starts serving.
    ///
    /// # Errors
    /// [`ServerError`] when anything needed to serve is missing.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let config = self.config;
        config.validate()?;
        let identity = match &config.listener.tls {
            TlsMode::Files { cert, key } => Some(TlsIdentity::from_pem_files(cert, key)?),
            TlsMode::SelfSigned => Some(TlsIdentity::self_signed(&[
                "localhost",
                "127.0.0.1",
                "::1",
            ])?),
            TlsMode::Plain => None,
        };
        let mut static_files = match &config.listener.static_dir {
            Some(dir) => StaticFiles::load(dir, config.listener.max_static_bytes)?,
            None => StaticFiles::empty(),
        };
        for (path, body) in &self.fallback_files {
            let url = if path.starts_with('/') {
                path.clone()
            } else {
                format!("/{path}")
            };
            if !static_files.contains(&url) {
                static_files.insert(&url, body.clone());
            }
        }
        let addr = config.listener.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        if let Some(addr) = config.listener.metrics_addr {
            crate::metrics::install(addr).map_err(|e| ServerError::Metrics(e.to_string()))?;
            tracing::info!(%addr, "metrics at http://{addr}/metrics");
        }
        let mut origin = OriginPolicy::for_server(
            local_addr,
            identity.is_some(),
            config.listener.extra_origins.clone(),
        );
        origin.allow_missing = config.listener.allow_missing_origin;
        let status = NodeStatus::new();
        let mut http = HttpContext::new(static_files, origin)
            .with_ws_path(config.listener.ws_path.clone())
            .with_ws_config(ws_config(&config))
            .with_status(status.clone());
        if let Some(secret) = &config.fleet.secret {
            let matchmaker = Matchmaker::new(
                Arc::clone(&self.directory),
                MatchmakerConfig {
                    secret: secret.clone(),
                    seat_ttl: config.fleet.seat_ttl,
                    directory_ttl: config.fleet.ttl,
                    room_capacity: u32::try_from(config.room.max_clients).unwrap_or(u32::MAX),
                    heartbeat_interval: config.fleet.heartbeat_interval,
                },
                self.matchmake_auth,
            );
            let matchmaker = match &self.room_config {
                None => matchmaker,
                Some(hook) => {
                    let (hook, default) = (Arc::clone(hook), config.room.clone());
                    matchmaker.with_capacity_of(Arc::new(move |name: &str, mode: &str| {
                        let room = hook(&RoomSpec::new(name, mode), &default);
                        room.validate().ok()?;
                        Some(u32::try_from(room.max_clients).unwrap_or(u32::MAX))
                    }))
                }
            };
            http = http.with_matchmaker(Arc::new(matchmaker));
            tracing::info!("matchmaking on: POST /matchmake");
        }
        let tls = match &identity {
            Some(id) => {
                tracing::info!(
                    sha256 = %id.sha256_fingerprint(),
                    spki_sha256_base64 = %id.spki_sha256_base64(),
                    "TLS certificate"
                );
                Some(TlsAcceptor::from(id.server_config(&[b"http/1.1"])?))
            }
            None => {
                tracing::warn!(
                    "plain ws:// mode: no TLS; run this only behind a TLS-terminating proxy"
                );
                None
            }
        };
        let quic_endpoint = match (config.listener.quic_addr, &identity) {
            (Some(addr), Some(id)) => {
                let server_config = quic::server_config(&config, id)?;
                let endpoint = quinn::Endpoint::server(server_config, addr)
                    .map_err(|source| ServerError::Bind { addr, source })?;
                let bound = endpoint
                    .local_addr()
                    .map_err(|source| ServerError::Bind { addr, source })?;
                tracing::info!(%bound, "listening on quic://{bound} (ALPN tickwire/1)");
                Some((endpoint, bound, id))
            }
            _ => None,
        };
        let webtransport = match (&quic_endpoint, &config.listener.quic.webtransport_path) {
            (Some((_, bound, id)), Some(path)) => {
                tracing::info!(%bound, "WebTransport at https://{bound}{path} (ALPN h3)");
                http = http.with_webtransport(Discovery {
                    port: bound.port(),
                    loopback: Some(bound.ip()).filter(|ip| ip.is_loopback()),
                    path: path.clone(),
                    certificate_hashes: id.webtransport_certificate_hashes(),
                });
                Some(Arc::new(webtransport::Endpoint {
                    path: path.clone(),
                    origin: http.origin.clone(),
                }))
            }
            _ => None,
        };
        let quic_endpoint = quic_endpoint.map(|(endpoint, bound, _)| (endpoint, bound));
        let config = Arc::new(config);
        let (shutdown_tx, shutdown_rx) = watch::channel(None);
        let stats = Arc::new(StatsCollector::new(std::time::Instant::now()));
        let rooms = Rooms::new(
            Arc::clone(&config),
            self.factory,
            Arc::clone(&stats),
            Arc::clone(&self.directory),
            self.auth,
            self.room_config,
        );
        let (stop, requests) = watch::channel(StopRequest::None);
        if let Some(token) = &config.admin_token {
            let stop = stop.clone();
            let console = Console::new(
                token.clone(),
                config.fleet.node_id.clone(),
                Arc::clone(&self.directory),
                Arc::clone(&rooms) as Arc<dyn ConsoleControl>,
                status.clone(),
                Box::new(move || request_stop(&stop, StopRequest::Drain)),
            );
            http = http.with_console(Arc::new(console));
            tracing::info!("fleet console on: /admin/ (admin token set)");
        }
        let http = Arc::new(http);
        let shared = Arc::new(Shared {
            config: Arc::clone(&config),
            rooms: Arc::clone(&rooms),
            next_client_id: AtomicU32::new(1),
            shutdown: shutdown_rx.clone(),
        });
        let limits = ConnectionLimits::new(
            config.listener.max_connections,
            config.listener.max_connections_per_ip,
        );
        let mut tasks = vec![tokio::spawn(wss::accept_loop(
            listener,
            Arc::clone(&limits),
            tls,
            http,
            Arc::clone(&shared),
            shutdown_rx.clone(),
        ))];
        let quic_addr = quic_endpoint.as_ref().map(|(_, a)| *a);
        if let Some((endpoint, _)) = quic_endpoint {
            tasks.push(tokio::spawn(quic::accept_loop(
                endpoint,
                webtransport,
                limits,
                shared,
                shutdown_rx,
            )));
        }
        let scheme = if identity.is_some() { "https" } else { "http" };
        tracing::info!(%local_addr, "listening on {scheme}://{local_addr}/");
        let rooms: Arc<dyn RoomsControl> = rooms;
        let publisher = Publisher {
            directory: self.directory,
            node: node_info(&config, local_addr, identity.is_some(), quic_addr),
            interval: config.fleet.heartbeat_interval,
            ttl: config.fleet.ttl,
            rooms: Arc::clone(&rooms),
            status: status.clone(),
        };
        let (stop_publisher, publisher_stopped) = watch::channel(false);
        let publisher = tokio::spawn(publisher.run(publisher_stopped));
        let supervisor = Supervisor {
            status: status.clone(),
            hooks: self.hooks,
            rooms: Arc::clone(&rooms),
            shutdown: shutdown_tx,
            tasks,
            drain_grace: config.lifecycle.drain_grace,
            health_interval: config.lifecycle.health_interval,
            publisher: Some((stop_publisher, publisher)),
        };
        let supervisor = tokio::spawn(supervisor.run(requests));
        Ok(RunningServer {
            local_addr,
            quic_addr,
            identity,
            status,
            stop,
            rooms,
            stats,
            supervisor,
        })
    }
}

/// Asks the supervisor for `request` unless a later one was asked already.
fn request_stop(stop: &watch::Sender<StopRequest>, request: StopRequest) {
    stop.send_if_modified(|now| {
        let later = request > *now;
        if later {
            *now = request;
        }
        later
    });
}

/// How this node describes itself in the directory: its id and public
/// addresses (configured, or made from the bound ones) and its capacity.
fn node_info(
    config: &ServerConfig,
    local: SocketAddr,
    tls: bool,
    quic: Option<SocketAddr>,
) -> NodeInfo {
    let fleet = &config.fleet;
    let scheme = if tls { "wss" } else { "ws" };
    let wss = fleet.public_wss_url.clone().unwrap_or_else(|| {
        format!(
            "{scheme}://localhost:{}{}",
            local.port(),
            config.listener.ws_path
        )
    });
    let mut node = NodeInfo::new(fleet.node_id.clone()).with_wss_url(wss);
    let quic_url = fleet
        .public_quic_url
        .clone()
        .or_else(|| quic.map(|q| format!("quic://localhost:{}", q.port())));
    if let Some(url) = quic_url {
        node = node.with_quic_url(url);
    }
    let capacity = config
        .listener
        .max_connections
        .min(config.max_rooms.saturating_mul(config.room.max_clients));
    node.with_capacity(u32::try_from(capacity).unwrap_or(u32::MAX))
}

/// A running server. Its life (see [`crate::lifecycle`]): it is
/// [`NodeState::Ready`] soon after [`Server::start`], [`NodeState::Draining`]
/// after [`RunningServer::drain`] (or SIGTERM in
/// [`RunningServer::run_until_signal`]), and [`NodeState::Stopped`] once its
/// rooms finished (or the drain grace ran out) and every session closed.
/// Dropping it stops the node at once.
pub struct RunningServer {
    local_addr: SocketAddr,
    quic_addr: Option<SocketAddr>,
    identity: Option<TlsIdentity>,
    status: NodeStatus,
    stop: watch::Sender<StopRequest>,
    rooms: Arc<dyn RoomsControl>,
    stats: Arc<StatsCollector>,
    supervisor: JoinHandle<()>,
}

impl RunningServer {
    /// The bound address (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound QUIC (UDP) address, when [`crate::ListenerConfig::quic_addr`] is set.
    #[must_use]
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic_addr
    }

    /// The TLS identity, unless in plain mode.
    #[must_use]
    pub fn tls_identity(&self) -> Option<&TlsIdentity> {
        self.identity.as_ref()
    }

    /// The URL of the page (`https://…/` or `http://…/`).
    #[must_use]
    pub fn page_url(&self) -> String {
        let scheme = if self.identity.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// Number of open rooms.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.rooms.open_rooms()
    }

    /// The node's state now.
    #[must_use]
    pub fn state(&self) -> NodeState {
        self.status.get()
    }

    /// The node's state, shared: it can be awaited
    /// ([`NodeStatus::reached`]) after the handle is gone.
    #[must_use]
    pub fn status(&self) -> NodeStatus {
        self.status.clone()
    }

    /// Starts draining and returns at once: new hellos (other than resumes
    /// of sessions in running rooms) are rejected with `ShuttingDown`,
    /// `/readyz` answers `503`, an empty room closes at once, and when no
    /// room is left, or after [`crate::LifecycleConfig::drain_grace`], the remaining
    /// sessions are closed with `ServerShutdown` (1001) and a reason, and the
    /// node stops. Calling it again does nothing. Wait for the end with
    /// [`RunningServer::stopped`].
    ///
    /// ```no_run
    /// # async fn f(server: tickwire_server::RunningServer) {
    /// server.drain();
    /// server.stopped().await;
    /// # }
    /// ```
    pub fn drain(&self) {
        self.request(StopRequest::Drain);
    }

    /// Waits until the node is [`NodeState::Stopped`].
    pub async fn stopped(&self) {
        self.status.reached(NodeState::Stopped).await;
    }

    fn request(&self, request: StopRequest) {
        request_stop(&self.stop, request);
    }

    /// What happened since the previous call (or since the start): tick
    /// durations of every room, overruns, snapshots and bytes queued, and
    /// the sessions connected now. Starts a new window; see [`crate::stats`].
    ///
    /// ```no_run
    /// # async fn f(server: tickwire_server::RunningServer) {
    /// let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    /// loop {
    ///     every.tick().await;
    ///     let s = server.take_stats();
    ///     println!("{} ticks, p99 {:?}, {} snapshots", s.ticks(), s.tick_quantile(0.99), s.sent.snapshots);
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn take_stats(&self) -> ServerStats {
        self.stats.take(std::time::Instant::now())
    }

    /// Stops accepting, closes every session with "server shutting down"
    /// (without waiting for rooms to finish, even while draining), and waits
    /// (at most [`crate::LifecycleConfig::shutdown_timeout`]) for them.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.request(StopRequest::Now);
        if let Err(e) = self.supervisor.await {
            tracing::error!(error = %e, "lifecycle supervisor failed");
        }
    }

    /// Runs until Ctrl-C or SIGTERM, then drains (see
    /// [`RunningServer::drain`]) and returns once the node stopped. A second
    /// signal while draining shuts down at once.
    pub async fn run_until_signal(self) {
        let mut signals = Signals::new();
        signals.recv().await;
        tracing::info!("signal: draining (a second signal stops at once)");
        self.drain();
        tokio::select! {
            () = self.stopped() => {}
            () = signals.recv() => tracing::info!("second signal: stopping now"),
        }
        self.shutdown().await;
    }
}

/// Waits for Ctrl-C or SIGTERM (Ctrl-C only where there is no SIGTERM), for
/// programs that do other work while the server runs and then call
/// [`RunningServer::shutdown`]. It listens from its first poll on; to catch
/// a signal that comes earlier, create [`Signals`] first.
pub async fn wait_for_signal() {
    Signals::new().recv().await;
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from creation on: a signal that
/// arrives before [`Signals::recv`] is awaited is kept, not lost, and does
/// not kill the process. Create it first thing in `main`.
///
/// ```no_run
/// # async fn f(server: tickwire_server::RunningServer) {
/// let mut signals = tickwire_server::Signals::new();
/// signals.recv().await; // the first: drain
/// server.drain();
/// tokio::select! {
///     () = server.stopped() => {}
///     () = signals.recv() => {} // the second: stop at once
/// }
/// server.shutdown().await;
/// # }
/// ```
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    listeners: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

impl Signals {
    /// Starts listening (within a tokio runtime).
    #[must_use]
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Self {
                    listeners: Some((int, term)),
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGINT/SIGTERM; Ctrl-C only");
                    Self { listeners: None }
                }
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if let Some((int, term)) = &mut self.listeners {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
