//! The browser's WebSocket driver: owns the socket and its handlers, opens
//! it when the [`Connection`] says so, feeds it frames and closes, sends
//! what the session has to send, and hands every session event to the
//! game's [`SocketApp`]. Everything it decides is decided by `Connection`;
//! this file only moves events and bytes.
//!
//! ```no_run
//! use tickwire_shared::client::Event;
//! use tickwire_shared::{GameProtocol, Hello};
//! use tickwire_web::connection::Connection;
//! use tickwire_web::socket::{SocketApp, WebSocketClient, now_ms};
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
//! let client = WebSocketClient::new("wss://localhost:8443/ws", App { connection: Connection::new() });
//! client.start(Hello::new(Game::PROTOCOL_HASH));
//! // Then, from a timer or requestAnimationFrame:
//! client.tick(); // connects when due, fires the session's timers, delivers events
//! client.with(|app| app.connection.push_input(now_ms(), 7));
//! client.flush(); // sends the input
//! ```

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Math, Uint8Array};
use tickwire_shared::client::Event;
use tickwire_shared::{GameProtocol, Hello};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::connection::Connection;
use crate::net;

/// The game's side of a [`WebSocketClient`]: it owns the [`Connection`] and
/// reacts to its events.
pub trait SocketApp: 'static {
    /// The game.
    type Game: GameProtocol;
    /// The connection the driver runs.
    fn connection(&mut self) -> &mut Connection<Self::Game>;
    /// One session event (welcome, snapshot applied, game events, RTT,
    /// closed), delivered right after the socket call that produced it.
    fn on_event(&mut self, now_ms: f64, event: Event<Self::Game>);

    /// Work to run once the driver has handled a socket event (open,
    /// message, close) and released the app, so that it may call back into
    /// the client: for example JavaScript listeners. Default: none.
    fn after_socket_event(&mut self) -> Option<Box<dyn FnOnce()>> {
        None
    }
}

type Handler<T> = Closure<dyn FnMut(T)>;

/// One WebSocket and the handlers that keep it alive.
struct Socket {
    ws: WebSocket,
    _on_open: Handler<web_sys::Event>,
    _on_message: Handler<MessageEvent>,
    _on_close: Handler<CloseEvent>,
}

struct Inner<A: SocketApp> {
    app: A,
    url: String,
    socket: Option<Socket>,
    /// Bumped for every socket: events of an older socket are ignored.
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

/// A game's connection over a browser WebSocket. Cloning gives another
/// handle on the same client.
pub struct WebSocketClient<A: SocketApp> {
    inner: Rc<RefCell<Inner<A>>>,
}

impl<A: SocketApp> Clone for WebSocketClient<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: SocketApp> WebSocketClient<A> {
    /// A client that will connect to `url` (`ws://…/ws` or `wss://…/ws`)
    /// once its connection is started.
    pub fn new(url: impl Into<String>, app: A) -> Self {
        let inner = Rc::new_cyclic(|this| {
            RefCell::new(Inner {
                app,
                url: url.into(),
                socket: None,
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

    /// Changes the server for the next socket.
    pub fn set_url(&self, url: impl Into<String>) {
        self.inner.borrow_mut().url = url.into();
    }

    /// (Re)starts the connection with `hello` (see
    /// [`Connection::start`]): closes the current socket and connects.
    pub fn start(&self, hello: Hello) {
        self.restart(|app| app.connection().start(now_ms(), hello));
    }

    /// Closes the current socket, lets `start` (re)start the connection
    /// (the game's own way of calling [`Connection::start`]), and connects.
    pub fn restart(&self, start: impl FnOnce(&mut A)) {
        let mut d = self.inner.borrow_mut();
        d.drop_socket(1000, "restarting");
        start(&mut d.app);
        d.tick();
    }

    /// Leaves: sends `Leave`, closes the socket, stops reconnecting.
    pub fn leave(&self) {
        let mut d = self.inner.borrow_mut();
        let now = now_ms();
        d.app.connection().leave(now);
        d.drain(now);
        d.flush();
        d.drop_socket(1000, "left the game");
    }

    /// Opens a socket when one is due, fires the session's timers and
    /// delivers the resulting events, then sends. Call it from a timer and
    /// from `requestAnimationFrame`.
    pub fn tick(&self) {
        self.inner.borrow_mut().tick();
    }

    /// Sends what the session has to send (after pushing inputs), and
    /// closes the socket if the session ended.
    pub fn flush(&self) {
        self.inner.borrow_mut().flush();
    }
}

impl<A: SocketApp> Inner<A> {
    fn tick(&mut self) {
        let now = now_ms();
        self.maybe_connect(now);
        self.app.connection().on_timer(now);
        self.drain(now);
        self.flush();
    }

    fn drain(&mut self, now: f64) {
        while let Some(event) = self.app.connection().poll_event(now) {
            self.app.on_event(now, event);
        }
    }

    fn drop_socket(&mut self, code: u16, reason: &str) {
        if let Some(s) = self.socket.take() {
            // Events of this socket no longer match the generation.
            self.generation = self.generation.wrapping_add(1);
            let _ = s.ws.close_with_code_and_reason(code, reason);
        }
    }

    fn maybe_connect(&mut self, now: f64) {
        if !self.app.connection().connect_due(now) {
            return;
        }
        self.drop_socket(1000, "reconnecting");
        self.app.connection().connecting(now);
        match self.open_socket() {
            Ok(socket) => self.socket = Some(socket),
            Err(_) => {
                self.app
                    .connection()
                    .on_close(now, net::LOST, "", Math::random());
                self.drain(now);
            }
        }
    }

    fn open_socket(&mut self) -> Result<Socket, JsValue> {
        let ws = WebSocket::new(&self.url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;

        let weak = self.this.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            with_current(&weak, generation, |d| {
                d.app.connection().on_open(now_ms());
                d.flush();
            });
        });
        let weak = self.this.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            with_current(&weak, generation, |d| d.on_socket_message(&e));
        });
        let weak = self.this.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            with_current(&weak, generation, |d| {
                d.socket = None;
                let now = now_ms();
                d.app
                    .connection()
                    .on_close(now, e.code(), &e.reason(), Math::random());
                d.drain(now);
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    fn on_socket_message(&mut self, e: &MessageEvent) {
        let now = now_ms();
        let close = match e.data().dyn_into::<ArrayBuffer>() {
            Ok(buf) => {
                let bytes = Uint8Array::new(&buf).to_vec();
                self.app.connection().on_message(now, &bytes);
                None
            }
            Err(_) => Some(self.app.connection().on_text_message()),
        };
        self.drain(now);
        self.flush();
        if let Some((code, reason)) = close {
            self.close_socket(code, &reason);
        }
    }

    /// Closes the socket but keeps its handlers: its close event ends the
    /// connection in `Connection::on_close`.
    fn close_socket(&self, code: u16, reason: &str) {
        let (code, reason) = Connection::<A::Game>::ws_close_args(code, reason);
        if let Some(s) = &self.socket {
            let _ = s.ws.close_with_code_and_reason(code, &reason);
        }
    }

    fn flush(&mut self) {
        let now = now_ms();
        if let Some(socket) = &self.socket
            && socket.ws.ready_state() == WebSocket::OPEN
        {
            while let Some(bytes) = self.app.connection().poll_transmit(now) {
                if socket.ws.send_with_u8_array(bytes).is_err() {
                    break;
                }
            }
        }
        if let Some((code, reason)) = self.app.connection().poll_close() {
            self.close_socket(code, &reason);
        }
    }
}

/// Runs `f` on the driver if it still exists and `generation` is the
/// current socket's.
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
