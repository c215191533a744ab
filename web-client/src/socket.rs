//! The browser's driver: opens a transport when the [`Connection`] says
//! so — WebTransport or WebSocket, as the [`Selector`] picks, falling back
//! from one to the other within the attempt — feeds it messages and closes,
//! sends what the session has to send, and hands every session event to
//! the game's [`SocketApp`]. What the protocol decides is decided by
//! `Connection` and which transport by [`crate::transport`]; this file only
//! moves events and bytes.
//!
//! ```no_run
//! use tickwire_shared::client::Event;
//! use tickwire_shared::{GameProtocol, Hello};
//! use tickwire_web::connection::Connection;
//! use tickwire_web::socket::{GameClient, SocketApp, now_ms};
//! use tickwire_web::transport::{TransportMode, TransportPolicy};
//! # #[derive(Debug)] struct Game;
//! # impl GameProtocol for Game {
//! #     const NAME: &'static str = "doc"; const VERSION: u32 = 1;
//! #     type Input = u8; type EntityState = u8; type Event = u8; type Message = ();
//! # }
//!
//! struct App {
//!     connection: Connection<Game>,
//! }
//! impl SocketApp for App {
//!     type Game = Game;
//!     fn connection(&mut self) -> &mut Connection<Game> {
//!         &mut self.connection
//!     }
//!     fn on_event(&mut self, _now_ms: f64, event: Event<Game>) {
//!         if let Event::Snapshot(_) = event { /* read self.connection's world */ }
//!     }
//! }
//!
//! let client = GameClient::new("wss://localhost:8443/ws", App { connection: Connection::new() });
//! // WebTransport first (found at https://localhost:8443/webtransport), WSS
//! // when it is missing, fails or takes over 2.5 s: the default.
//! client.set_policy(TransportPolicy { mode: TransportMode::Auto, ..TransportPolicy::default() });
//! client.start(Hello::new(Game::PROTOCOL_HASH));
//! // Then, from a timer or requestAnimationFrame:
//! client.tick(); // connects when due, fires the session's timers, delivers events
//! client.with(|app| app.connection.push_input(now_ms(), 7));
//! client.flush(); // sends the input
//! assert!(client.transport().is_some()); // the transport of this attempt
//! ```

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Math;
use tickwire_shared::client::{Channel, Event};
use tickwire_shared::{CloseCode, GameProtocol, Hello};
use wasm_bindgen::JsValue;

use crate::connection::{Connection, Status};
use crate::net;
use crate::transport::{
    Attempt, Selector, TransportKind, TransportPolicy, discovery_url, host_key,
};
use crate::websocket::WsTransport;
use crate::webtransport::{self, BrowserStore, WtTransport};

/// The game's side of a [`GameClient`]: it owns the [`Connection`] and
/// reacts to its events.
pub trait SocketApp: 'static {
    /// The game.
    type Game: GameProtocol;
    /// The connection the driver runs.
    fn connection(&mut self) -> &mut Connection<Self::Game>;
    /// One session event (welcome, snapshot applied, game events, RTT,
    /// closed), delivered right after the transport event that produced it.
    fn on_event(&mut self, now_ms: f64, event: Event<Self::Game>);

    /// Work to run once the driver has handled a transport event (open,
    /// message, close) and released the app, so that it may call back into
    /// the client: for example JavaScript listeners. Default: none.
    fn after_socket_event(&mut self) -> Option<Box<dyn FnOnce()>> {
        None
    }
}

/// What a transport tells the driver.
pub(crate) enum Incoming<'a> {
    /// Open: the hello can go out.
    Open,
    /// One whole message.
    Message(&'a [u8], Channel),
    /// The server broke the framing (a text frame, an oversized stream
    /// frame): close with this code and reason.
    Violation(CloseCode, &'a str),
    /// The transport closed (or never opened).
    Closed {
        /// Its close code ([`net::LOST`] without one).
        code: u16,
        /// Its reason.
        reason: &'a str,
    },
}

/// Where a transport's events go (the driver, for one generation).
pub(crate) type Sink = Rc<dyn Fn(Incoming<'_>)>;

/// The open transport.
enum Live {
    Ws(WsTransport),
    Wt(WtTransport),
}

impl Live {
    fn is_open(&self) -> bool {
        match self {
            Self::Ws(t) => t.is_open(),
            Self::Wt(t) => t.is_open(),
        }
    }

    fn send(&mut self, bytes: &[u8], channel: Channel) -> bool {
        match self {
            Self::Ws(t) => t.send(bytes),
            Self::Wt(t) => t.send(bytes, channel),
        }
    }

    fn close(&self, code: u16, reason: &str, quiet: bool) {
        match self {
            Self::Ws(t) => t.close(code, reason, quiet),
            Self::Wt(t) => t.close(code, reason, quiet),
        }
    }
}

struct Inner<A: SocketApp> {
    app: A,
    url: String,
    selector: Selector<BrowserStore>,
    live: Option<Live>,
    attempt: Option<Attempt>,
    /// Bumped for every transport: events of an older one are ignored.
    generation: u32,
    this: Weak<RefCell<Inner<A>>>,
}

/// `performance.now()` in milliseconds (0 where unavailable).
#[must_use]
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Wall time (`Date.now()`): what remembered failures are stored in.
fn wall_ms() -> f64 {
    js_sys::Date::now()
}

/// `ws://` or `wss://` (matching the page) + the page's host + `/ws`: the
/// endpoint of the server that served the page.
///
/// # Errors
/// Outside a window (a worker), or when the location cannot be read.
pub fn default_url() -> Result<String, JsValue> {
    let location = web_sys::window().ok_or("no window")?.location();
    let scheme = if location.protocol()? == "https:" {
        "wss:"
    } else {
        "ws:"
    };
    Ok(format!("{scheme}//{}/ws", location.host()?))
}

/// A game's connection from a browser, over WebTransport or WebSocket.
/// Cloning gives another handle on the same client.
pub struct GameClient<A: SocketApp> {
    inner: Rc<RefCell<Inner<A>>>,
}

impl<A: SocketApp> Clone for GameClient<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: SocketApp> GameClient<A> {
    /// A client for the server whose WebSocket endpoint is `url`
    /// (`ws://…/ws` or `wss://…/ws`; its WebTransport session is announced
    /// on the same origin, see [`crate::transport::discovery_url`]), with
    /// the default [`TransportPolicy`]; nothing happens before its
    /// connection is started.
    pub fn new(url: impl Into<String>, app: A) -> Self {
        let url = url.into();
        let selector = Selector::new(
            TransportPolicy::default(),
            host_key(&url),
            BrowserStore::default(),
        );
        let inner = Rc::new_cyclic(|this| {
            RefCell::new(Inner {
                app,
                url,
                selector,
                live: None,
                attempt: None,
                generation: 0,
                this: this.clone(),
            })
        });
        Self { inner }
    }

    /// Runs `f` on the game's side. Do not call it from inside `f` or from
    /// [`SocketApp::on_event`] (the app is borrowed there).
    pub fn with<R>(&self, f: impl FnOnce(&mut A) -> R) -> R {
        f(&mut self.inner.borrow_mut().app)
    }

    /// Changes the server for the next attempt.
    pub fn set_url(&self, url: impl Into<String>) {
        let mut d = self.inner.borrow_mut();
        d.url = url.into();
        let key = host_key(&d.url);
        d.selector.set_key(key);
    }

    /// Changes the transport policy for the next attempt.
    pub fn set_policy(&self, policy: TransportPolicy) {
        self.inner.borrow_mut().selector.set_policy(policy);
    }

    /// The transport of the current (or, while waiting, the last) attempt.
    #[must_use]
    pub fn transport(&self) -> Option<TransportKind> {
        self.inner.borrow_mut().app.connection().transport()
    }

    /// (Re)starts the connection with `hello` (see
    /// [`Connection::start`]): closes the current transport and connects.
    pub fn start(&self, hello: Hello) {
        self.restart(|app| app.connection().start(now_ms(), hello));
    }

    /// Closes the current transport, lets `start` (re)start the connection
    /// (the game's own way of calling [`Connection::start`]), and connects.
    pub fn restart(&self, start: impl FnOnce(&mut A)) {
        let mut d = self.inner.borrow_mut();
        d.drop_live(1000, "restarting");
        start(&mut d.app);
        d.tick();
    }

    /// Leaves: sends `Leave`, closes the transport, stops reconnecting.
    pub fn leave(&self) {
        let mut d = self.inner.borrow_mut();
        let now = now_ms();
        d.app.connection().leave(now);
        d.drain(now);
        d.flush();
        d.drop_live(1000, "left the game");
    }

    /// Drops the transport as a network loss would (the connection waits
    /// and then resumes its session, as after any loss). With
    /// `webtransport_failed`, WebTransport is first remembered as failed
    /// for this server, so the resumed session uses WebSocket. For tests
    /// and for a page that knows the network changed.
    pub fn interrupt(&self, webtransport_failed: bool) {
        let mut d = self.inner.borrow_mut();
        let now = now_ms();
        if webtransport_failed {
            d.selector.webtransport_failed(wall_ms());
        }
        if d.live.is_some() {
            d.drop_live(1001, "interrupted");
            d.app
                .connection()
                .on_close(now, net::LOST, "interrupted", Math::random());
            d.drain(now);
        }
    }

    /// Opens a transport when one is due, falls back from a WebTransport
    /// attempt past its deadline, fires the session's timers and delivers
    /// the resulting events, then sends. Call it from a timer and from
    /// `requestAnimationFrame`.
    pub fn tick(&self) {
        self.inner.borrow_mut().tick();
    }

    /// Sends what the session has to send (after pushing inputs), and
    /// closes the transport if the session ended.
    pub fn flush(&self) {
        self.inner.borrow_mut().flush();
    }
}

impl<A: SocketApp> Inner<A> {
    fn tick(&mut self) {
        let now = now_ms();
        self.maybe_connect(now);
        if self.attempt.is_some_and(|a| a.expired(now)) {
            self.webtransport_failed(now, "no welcome within the deadline");
        }
        self.app.connection().on_timer(now);
        self.drain(now);
        self.flush();
    }

    fn drain(&mut self, now: f64) {
        while let Some(event) = self.app.connection().poll_event(now) {
            self.app.on_event(now, event);
        }
        // Welcomed: this attempt's transport works.
        if let Some(a) = &mut self.attempt
            && a.deadline_ms.is_some()
            && self.app.connection().status() == &Status::Connected
        {
            a.welcomed();
            if a.kind == TransportKind::WebTransport {
                self.selector.webtransport_worked();
            }
        }
    }

    /// Closes the current transport; none of its events reach the
    /// connection any more.
    fn drop_live(&mut self, code: u16, reason: &str) {
        self.attempt = None;
        if let Some(live) = self.live.take() {
            self.generation = self.generation.wrapping_add(1);
            live.close(code, reason, true);
        }
    }

    fn maybe_connect(&mut self, now: f64) {
        if !self.app.connection().connect_due(now) {
            return;
        }
        self.drop_live(1000, "reconnecting");
        self.app.connection().connecting(now);
        let kind = self.selector.choose(wall_ms(), webtransport::supported());
        self.open(kind, now);
    }

    /// Opens `kind` for the attempt the connection is making.
    fn open(&mut self, kind: TransportKind, now: f64) {
        self.generation = self.generation.wrapping_add(1);
        let sink = self.sink(self.generation);
        self.app.connection().set_transport(kind);
        self.attempt = Some(Attempt::new(kind, now, self.selector.policy()));
        let live = match kind {
            TransportKind::WebSocket => WsTransport::open(&self.url, &sink).map(Live::Ws),
            TransportKind::WebTransport => match discovery_url(&self.url) {
                Some(discovery) => {
                    let limits = self
                        .app
                        .connection()
                        .net()
                        .map(|n| n.session().config().limits.clone())
                        .unwrap_or_default();
                    Ok(Live::Wt(WtTransport::open(
                        &discovery,
                        limits.max_server_message_bytes,
                        limits.max_client_message_bytes,
                        &sink,
                    )))
                }
                None => Err(JsValue::from_str("no WebTransport for this URL")),
            },
        };
        match live {
            Ok(live) => self.live = Some(live),
            Err(e) => {
                let reason = e.as_string().unwrap_or_else(|| "cannot open".to_owned());
                self.closed(now, net::LOST, &reason);
            }
        }
    }

    /// A sink for the transport of `generation`.
    fn sink(&self, generation: u32) -> Sink {
        let weak = self.this.clone();
        Rc::new(move |incoming: Incoming<'_>| {
            with_current(&weak, generation, |d| d.on_incoming(incoming));
        })
    }

    fn on_incoming(&mut self, incoming: Incoming<'_>) {
        let now = now_ms();
        match incoming {
            Incoming::Open => self.app.connection().on_open(now),
            Incoming::Message(bytes, channel) => {
                self.app.connection().on_received(now, bytes, channel);
            }
            Incoming::Violation(code, reason) => {
                let (code, reason) = self.app.connection().on_violation(code, reason);
                self.drain(now);
                if let Some(live) = &self.live {
                    live.close(code, &reason, false);
                }
                return;
            }
            Incoming::Closed { code, reason } => {
                self.live = None;
                self.closed(now, code, reason);
                return;
            }
        }
        self.drain(now);
        self.flush();
    }

    /// The transport closed (or never opened). A WebTransport attempt that
    /// was not welcomed, and whose session the server did not end (a
    /// reject), fell short: the selector decides on a fallback.
    fn closed(&mut self, now: f64, code: u16, reason: &str) {
        let session_ended = self
            .app
            .connection()
            .net()
            .is_some_and(|n| n.session().is_closed());
        if self.attempt.is_some_and(|a| a.falls_back(session_ended)) {
            self.webtransport_failed(now, reason);
            return;
        }
        self.attempt = None;
        self.app
            .connection()
            .on_close(now, code, reason, Math::random());
        self.drain(now);
    }

    /// WebTransport did not make it: remember that, then retry this attempt
    /// at once on the fallback transport, or end it as a lost connection
    /// (the connection's backoff applies).
    fn webtransport_failed(&mut self, now: f64, reason: &str) {
        self.selector.webtransport_failed(wall_ms());
        let fallback = self.selector.fallback();
        let next = fallback.map_or("", |_| "; using WebSocket");
        web_sys::console::warn_1(&JsValue::from_str(&format!(
            "tickwire: WebTransport failed ({reason}){next}"
        )));
        self.drop_live(1000, "falling back");
        match fallback {
            Some(kind) => {
                self.app.connection().connecting(now);
                self.open(kind, now);
            }
            None => {
                self.app
                    .connection()
                    .on_close(now, net::LOST, reason, Math::random());
                self.drain(now);
            }
        }
    }

    fn flush(&mut self) {
        let now = now_ms();
        if let Some(live) = &mut self.live
            && live.is_open()
        {
            while let Some((bytes, channel)) = self.app.connection().poll_transmit_on(now) {
                if !live.send(bytes, channel) {
                    break;
                }
            }
        }
        if let Some((code, reason)) = self.app.connection().poll_close()
            && let Some(live) = &self.live
        {
            // Its close event ends the connection in `Connection::on_close`.
            live.close(code, &reason, false);
        }
    }
}

/// Runs `f` on the driver if it still exists and `generation` is the
/// current transport's.
fn with_current<A: SocketApp>(
    weak: &Weak<RefCell<Inner<A>>>,
    generation: u32,
    f: impl FnOnce(&mut Inner<A>),
) {
    let Some(d) = weak.upgrade() else { return };
    let after = match d.try_borrow_mut() {
        Ok(mut d) if d.generation == generation => {
            f(&mut d);
            d.app.after_socket_event()
        }
        _ => None,
    };
    // The driver is released: `after` may call into the client.
    if let Some(after) = after {
        after();
    }
}
