//! The browser driver: owns the WebSocket, the canvas, the timers and the
//! input listeners, and feeds them to [`Client`]. Everything it decides is
//! decided by `Client`; this file only moves events and bytes.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use glam::Vec2;
use js_sys::{ArrayBuffer, Math, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    BinaryType, CloseEvent, Event, HtmlCanvasElement, KeyboardEvent, MessageEvent, MouseEvent,
    WebSocket, Window,
};

use crate::client::Client;
use crate::net;
use crate::render::Renderer;
use crate::ui::{self, Hud};

/// How often the HUD's slower parts (figures, scores, feed) refresh.
const HUD_REFRESH_MS: f64 = 250.0;
/// Room above a player's circle for its name and health bar, in CSS pixels.
const LABEL_CLEARANCE_PX: f32 = 24.0;
/// The background timer's period: keeps pings, inputs and reconnects going
/// while animation frames are throttled (a hidden tab).
const BACKGROUND_MS: i32 = 250;

type Handler<T> = Closure<dyn FnMut(T)>;

/// One WebSocket and the handlers that keep it alive.
struct Socket {
    ws: WebSocket,
    _on_open: Handler<Event>,
    _on_message: Handler<MessageEvent>,
    _on_close: Handler<CloseEvent>,
}

/// The running page.
pub(crate) struct Driver {
    window: Window,
    client: Client,
    renderer: Renderer,
    hud: Hud,
    url: String,
    socket: Option<Socket>,
    generation: u32,
    last_hud: f64,
    this: Weak<RefCell<Driver>>,
    listeners: Vec<Box<dyn std::any::Any>>,
}

/// `performance.now()` in milliseconds (0 where unavailable).
pub(crate) fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// `ws://` or `wss://` (matching the page) + this host + `/ws`.
fn default_url(window: &Window) -> Result<String, JsValue> {
    let location = window.location();
    let scheme = if location.protocol()? == "https:" {
        "wss:"
    } else {
        "ws:"
    };
    Ok(format!("{scheme}//{}/ws", location.host()?))
}

impl Driver {
    /// Sets up the page on `canvas_id` and starts the loops.
    pub(crate) fn start(
        canvas_id: &str,
        url: Option<String>,
    ) -> Result<Rc<RefCell<Self>>, JsValue> {
        let window = web_sys::window().ok_or("no window")?;
        let document = window.document().ok_or("no document")?;
        let canvas = document
            .get_element_by_id(canvas_id)
            .ok_or_else(|| JsValue::from_str(&format!("no element #{canvas_id}")))?
            .dyn_into::<HtmlCanvasElement>()?;
        let url = match url {
            Some(u) if !u.is_empty() => u,
            _ => default_url(&window)?,
        };
        let renderer = Renderer::new(canvas.clone())?;
        let driver = Rc::new_cyclic(|this| {
            RefCell::new(Self {
                window: window.clone(),
                client: Client::new(""),
                renderer,
                hud: Hud::new(document),
                url,
                socket: None,
                generation: 0,
                last_hud: f64::NEG_INFINITY,
                this: this.clone(),
                listeners: Vec::new(),
            })
        });
        Self::listen(&driver, &window, &canvas)?;
        Self::animate(&driver, &window)?;
        Ok(driver)
    }

    fn listen(
        driver: &Rc<RefCell<Self>>,
        window: &Window,
        canvas: &HtmlCanvasElement,
    ) -> Result<(), JsValue> {
        let mut listeners: Vec<Box<dyn std::any::Any>> = Vec::new();
        let weak = Rc::downgrade(driver);
        let key = move |down: bool| {
            let weak = weak.clone();
            Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
                let typing = e
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                    .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA"));
                if typing || e.ctrl_key() || e.meta_key() || e.alt_key() {
                    return;
                }
                if let Some(d) = weak.upgrade()
                    && d.borrow_mut().client.input.key(&e.code(), down)
                {
                    e.prevent_default();
                }
            })
        };
        let down = key(true);
        let up = key(false);
        window.add_event_listener_with_callback("keydown", down.as_ref().unchecked_ref())?;
        window.add_event_listener_with_callback("keyup", up.as_ref().unchecked_ref())?;
        listeners.push(Box::new(down));
        listeners.push(Box::new(up));

        let weak = Rc::downgrade(driver);
        let blur = Closure::<dyn FnMut(Event)>::new(move |_| {
            if let Some(d) = weak.upgrade() {
                d.borrow_mut().client.input.release_all();
            }
        });
        window.add_event_listener_with_callback("blur", blur.as_ref().unchecked_ref())?;
        listeners.push(Box::new(blur));

        let weak = Rc::downgrade(driver);
        let mouse = Closure::<dyn FnMut(MouseEvent)>::new(move |e: MouseEvent| {
            let Some(d) = weak.upgrade() else { return };
            let mut d = d.borrow_mut();
            let input = &mut d.client.input;
            input.pointer(Vec2::new(e.offset_x() as f32, e.offset_y() as f32));
            match e.type_().as_str() {
                "mousedown" if e.button() == 0 => input.mouse_button(true),
                "mouseup" if e.button() == 0 => input.mouse_button(false),
                _ => {}
            }
        });
        for kind in ["mousemove", "mousedown", "mouseup"] {
            canvas.add_event_listener_with_callback(kind, mouse.as_ref().unchecked_ref())?;
        }
        listeners.push(Box::new(mouse));

        let no_menu = Closure::<dyn FnMut(Event)>::new(|e: Event| e.prevent_default());
        canvas.add_event_listener_with_callback("contextmenu", no_menu.as_ref().unchecked_ref())?;
        listeners.push(Box::new(no_menu));

        let weak = Rc::downgrade(driver);
        let leave = Closure::<dyn FnMut(Event)>::new(move |_| {
            if let Some(d) = weak.upgrade() {
                d.borrow_mut().leave();
            }
        });
        window.add_event_listener_with_callback("pagehide", leave.as_ref().unchecked_ref())?;
        listeners.push(Box::new(leave));

        driver.borrow_mut().listeners = listeners;
        Ok(())
    }

    fn animate(driver: &Rc<RefCell<Self>>, window: &Window) -> Result<(), JsValue> {
        // requestAnimationFrame re-arms itself from inside its closure.
        let frame: Rc<RefCell<Option<Handler<f64>>>> = Rc::new(RefCell::new(None));
        let again = frame.clone();
        let weak = Rc::downgrade(driver);
        let win = window.clone();
        *frame.borrow_mut() = Some(Closure::new(move |_: f64| {
            let Some(d) = weak.upgrade() else { return };
            d.borrow_mut().on_frame();
            if let Some(f) = again.borrow().as_ref() {
                let _ = win.request_animation_frame(f.as_ref().unchecked_ref());
            }
        }));
        if let Some(f) = frame.borrow().as_ref() {
            window.request_animation_frame(f.as_ref().unchecked_ref())?;
        }
        let weak = Rc::downgrade(driver);
        let background = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = weak.upgrade() {
                d.borrow_mut().on_background();
            }
        });
        window.set_interval_with_callback_and_timeout_and_arguments_0(
            background.as_ref().unchecked_ref(),
            BACKGROUND_MS,
        )?;
        let mut d = driver.borrow_mut();
        d.listeners.push(Box::new(frame));
        d.listeners.push(Box::new(background));
        Ok(())
    }

    /// Starts (or restarts) playing as `name` on the node at `url` with a
    /// matchmaker's seat.
    pub(crate) fn play_seat(&mut self, name: &str, url: &str, room: &str, seat_token: &str) {
        self.drop_socket(1000, "restarting");
        url.clone_into(&mut self.url);
        self.client.play_seat(now_ms(), name, room, seat_token);
        self.on_background();
    }

    /// Starts (or restarts) playing as `name`.
    pub(crate) fn play(&mut self, name: &str) {
        self.drop_socket(1000, "restarting");
        self.client.play(now_ms(), name);
        self.on_background();
    }

    /// Leaves the game and closes the socket.
    pub(crate) fn leave(&mut self) {
        self.client.leave(now_ms());
        self.flush();
        self.drop_socket(1000, "left the game");
    }

    /// The stats as JSON.
    pub(crate) fn stats_json(&mut self) -> String {
        self.client.stats(now_ms()).to_json()
    }

    fn drop_socket(&mut self, code: u16, reason: &str) {
        if let Some(s) = self.socket.take() {
            // Events of this socket no longer match the generation.
            self.generation = self.generation.wrapping_add(1);
            let _ = s.ws.close_with_code_and_reason(code, reason);
        }
    }

    fn on_background(&mut self) {
        let now = now_ms();
        self.maybe_connect(now);
        self.client.update(now);
        self.flush();
        self.hud.set_banner(self.client.banner(now));
    }

    fn on_frame(&mut self) {
        let now = now_ms();
        self.maybe_connect(now);
        self.client.update(now);
        self.flush();
        let view = self.renderer.fit_to(&self.window);
        let scene = self.client.frame(now, view);
        let _ = self.renderer.draw(scene);
        // The player's circle with its name and health bar above it.
        let me = scene.players.iter().find(|p| p.is_me).map(|p| {
            let c = scene.camera.to_screen(p.pos);
            let r = scene.player_radius * scene.camera.scale + LABEL_CLEARANCE_PX;
            ((f64::from(c.x), f64::from(c.y)), f64::from(r))
        });
        self.hud.keep_clear(me);
        self.hud.set_banner(self.client.banner(now));
        if now - self.last_hud >= HUD_REFRESH_MS {
            self.last_hud = now;
            let figures = self.client.figures(now);
            self.hud.set_net(&ui::net_overlay(&figures));
            let _ = self.hud.set_scores(&self.client.scoreboard());
            let _ = self.hud.set_feed(self.client.feed_lines(now));
        }
    }

    fn maybe_connect(&mut self, now: f64) {
        if !self.client.connect_due(now) {
            return;
        }
        self.drop_socket(1000, "reconnecting");
        self.client.connecting(now);
        match self.open_socket() {
            Ok(socket) => self.socket = Some(socket),
            Err(_) => self.client.on_close(now, net::LOST, "", Math::random()),
        }
    }

    fn open_socket(&mut self) -> Result<Socket, JsValue> {
        let ws = WebSocket::new(&self.url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;

        let weak = self.this.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| {
            with_current(&weak, generation, |d| {
                d.client.on_open(now_ms());
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
                d.client
                    .on_close(now_ms(), e.code(), &e.reason(), Math::random());
                d.hud.set_banner(d.client.banner(now_ms()));
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
        let data = e.data();
        let close = match data.dyn_into::<ArrayBuffer>() {
            Ok(buf) => {
                let bytes = Uint8Array::new(&buf).to_vec();
                self.client.on_message(now, &bytes)
            }
            Err(_) => Some(self.client.on_text_message()),
        };
        self.flush();
        if let Some((code, reason)) = close {
            self.close_socket(code, &reason);
        }
    }

    /// Closes the socket but keeps its handlers: its close event ends the
    /// connection in `Client::on_close`.
    fn close_socket(&self, code: u16, reason: &str) {
        let (code, reason) = Client::ws_close_args(code, reason);
        if let Some(s) = &self.socket {
            let _ = s.ws.close_with_code_and_reason(code, &reason);
        }
    }

    /// Sends what the session has to send, then closes the socket if the
    /// session ended.
    fn flush(&mut self) {
        let now = now_ms();
        if let Some(socket) = &self.socket
            && socket.ws.ready_state() == WebSocket::OPEN
        {
            while let Some(bytes) = self.client.poll_transmit(now) {
                if socket.ws.send_with_u8_array(bytes).is_err() {
                    break;
                }
            }
        }
        if let Some((code, reason)) = self.client.poll_close() {
            self.close_socket(code, &reason);
        }
    }
}

/// Runs `f` on the driver if it still exists and `generation` is the
/// current socket's.
fn with_current(weak: &Weak<RefCell<Driver>>, generation: u32, f: impl FnOnce(&mut Driver)) {
    if let Some(d) = weak.upgrade()
        && let Ok(mut d) = d.try_borrow_mut()
        && d.generation == generation
    {
        f(&mut d);
    }
}
