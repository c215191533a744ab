//! The page's driver: the canvas, the HUD, the animation frame and the input
//! listeners. The transport (WebTransport or WebSocket) is tickwire-web's
//! [`GameClient`], which runs the [`Client`] (the arena's `SocketApp`);
//! everything the game decides is decided by `Client`; this file only
//! moves events.

use std::cell::RefCell;
use std::rc::Rc;

use glam::Vec2;
use tickwire_web::socket::{self, GameClient, now_ms};
use tickwire_web::transport::TransportPolicy;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Event, HtmlCanvasElement, KeyboardEvent, MouseEvent, Window};

use crate::client::Client;
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

/// The running page.
pub(crate) struct Driver {
    window: Window,
    client: GameClient<Client>,
    renderer: Renderer,
    hud: Hud,
    last_hud: f64,
    listeners: Vec<Box<dyn std::any::Any>>,
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
            _ => socket::default_url()?,
        };
        let renderer = Renderer::new(canvas.clone())?;
        let driver = Rc::new(RefCell::new(Self {
            window: window.clone(),
            client: GameClient::new(url, Client::new("")),
            renderer,
            hud: Hud::new(document),
            last_hud: f64::NEG_INFINITY,
            listeners: Vec::new(),
        }));
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
                    && d.borrow().client.with(|c| c.input.key(&e.code(), down))
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
                d.borrow().client.with(|c| c.input.release_all());
            }
        });
        window.add_event_listener_with_callback("blur", blur.as_ref().unchecked_ref())?;
        listeners.push(Box::new(blur));

        let weak = Rc::downgrade(driver);
        let mouse = Closure::<dyn FnMut(MouseEvent)>::new(move |e: MouseEvent| {
            let Some(d) = weak.upgrade() else { return };
            d.borrow().client.with(|c| {
                let input = &mut c.input;
                input.pointer(Vec2::new(e.offset_x() as f32, e.offset_y() as f32));
                match e.type_().as_str() {
                    "mousedown" if e.button() == 0 => input.mouse_button(true),
                    "mouseup" if e.button() == 0 => input.mouse_button(false),
                    _ => {}
                }
            });
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
        self.client.set_url(url);
        self.client
            .restart(|c| c.play_seat(now_ms(), name, room, seat_token));
        self.on_background();
    }

    /// The transport policy for the next connection attempts.
    pub(crate) fn set_policy(&mut self, policy: TransportPolicy) {
        self.client.set_policy(policy);
    }

    /// Starts (or restarts) playing as `name`.
    pub(crate) fn play(&mut self, name: &str) {
        self.client.restart(|c| c.play(now_ms(), name));
        self.on_background();
    }

    /// Leaves the game and closes the socket.
    pub(crate) fn leave(&mut self) {
        self.client.leave();
    }

    /// The stats as JSON.
    pub(crate) fn stats_json(&mut self) -> String {
        self.client.with(|c| c.stats(now_ms()).to_json())
    }

    /// Connects when due, runs the due ticks (inputs, prediction), sends.
    fn step(&mut self, now: f64) {
        self.client.tick();
        self.client.with(|c| c.update(now));
        self.client.flush();
    }

    fn on_background(&mut self) {
        let now = now_ms();
        self.step(now);
        let banner = self.client.with(|c| c.banner(now));
        self.hud.set_banner(banner);
    }

    fn on_frame(&mut self) {
        let now = now_ms();
        self.step(now);
        let view = self.renderer.fit_to(&self.window);
        let (renderer, hud) = (&mut self.renderer, &mut self.hud);
        let refresh = now - self.last_hud >= HUD_REFRESH_MS;
        if refresh {
            self.last_hud = now;
        }
        self.client.with(|c| {
            let scene = c.frame(now, view);
            let _ = renderer.draw(scene);
            // The player's circle with its name and health bar above it.
            let me = scene.players.iter().find(|p| p.is_me).map(|p| {
                let s = scene.camera.to_screen(p.pos);
                let r = scene.player_radius * scene.camera.scale + LABEL_CLEARANCE_PX;
                ((f64::from(s.x), f64::from(s.y)), f64::from(r))
            });
            hud.keep_clear(me);
            hud.set_banner(c.banner(now));
            if refresh {
                let figures = c.figures(now);
                hud.set_net(&ui::net_overlay(&figures));
                let _ = hud.set_scores(&c.scoreboard());
                let _ = hud.set_feed(c.feed_lines(now));
            }
        });
    }
}
