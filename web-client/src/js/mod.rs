//! The JavaScript/TypeScript API: [`JsClient`], a game's connection driven
//! from JavaScript, with entity states, events and changes as plain
//! objects (serde-wasm-bindgen), and [`export_js_api!`](crate::export_js_api),
//! which a game's own `cdylib` crate invokes to export it as the JS class
//! `TickwireClient` with typings (wasm-bindgen cannot export a generic type,
//! so the class is generated in the game's crate, for the game's types).
//!
//! What a page sees (the `.d.ts` that wasm-bindgen writes next to the JS):
//!
//! ```ts
//! const client = new TickwireClient("wss://game.example/ws"); // default: this page's host
//! client.onStatus((s) => console.log(s.status, s.reason));
//! client.onSnapshot((c) => {                                  // ids only
//!   for (const id of c.added) draw(id, client.entity(id));      // states on demand
//!   for (const id of c.changed) draw(id, client.entity(id));
//!   for (const id of c.removed) erase(id);
//! });
//! client.onEvent((e) => console.log(e));                       // the game's events
//! client.connect({ auth: "ada" });                            // room?, seatToken?
//! client.sendInput({ buttons: 1, aim: 0 });                   // one tick of TickwireInput
//! client.entities();                                          // TickwireEntity<TickwireState>[]
//! client.stats();                                             // rttMs, snapshotsPerSec, bytesInPerSec…
//! client.close();
//! ```
//!
//! `TickwireInput`, `TickwireState` and `TickwireEvent` are aliases of the
//! game's own TypeScript types, named in the macro call (derive them with
//! `tsify`; the arena does, behind its `js` feature).
//!
//! Callbacks run right after the socket event that produced them, once the
//! client has handled it (or, for a status change that a method such as
//! `connect` caused, from a microtask after that method returns), so a
//! callback may call any method of the client.
//!
//! **What a snapshot costs JavaScript.** `onSnapshot` hands over the ids
//! that the snapshot added, changed and removed (three arrays), not
//! the states: building a plain object per changed state costs about 1 µs
//! each in Chromium, and a page often needs only some of them (those on
//! screen, its own player). A state becomes an object when the page asks
//! for it (`entity(id)`, `entities()`), once per version: the client keeps
//! the object it built until a snapshot changes or removes that entity, so
//! a render loop that reads every entity every frame builds only the
//! states that changed since the frame before. The same object comes back
//! until then: treat it as read-only. `entity(id)` reads the newest applied
//! snapshot, which in an `onSnapshot` callback is the one of `changes.tick`
//! unless another snapshot was applied before the callback ran.
//!
//! **Messages.** A game whose `GameProtocol::Message` is not `()` names
//! its TypeScript message type in the macro call (`message = Order`); the
//! class then has `sendMessage(message: TickwireMessage): void`, which
//! queues one reliable game message ([`JsClient::send_message`]) and throws
//! an `Error` whose `code` says why it refused: `"NotConnected"`,
//! `"TooLarge"`, `"QueueFull"`, `"Invalid"` (not of the game's type) or
//! `"Encode"`. Without `message = …` the class has no `sendMessage` (the
//! arena's case: its `Message` is `()`).
//!
//! ```ts
//! try { client.sendMessage({ symbol: "TICK", side: "Buy", qty: 10 }); }
//! catch (e) { if (e.code === "NotConnected") showOffline(); else throw e; }
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use rustc_hash::FxHashMap;
use serde::Serialize;
use tickwire_shared::client::{Changes, ClientWorld, Event, SendMessageError};
use tickwire_shared::{GameProtocol, Hello, NetId};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::connection::Connection;
use crate::socket::{self, GameClient, SocketApp, now_ms};
use crate::stats::NetStats;

mod shapes;
pub use shapes::TS_COMMON;
use shapes::{ConnectOptions, StatusView, status_view};

/// How often the session's timers (pings, timeouts, reconnects) run while
/// connected, in milliseconds.
pub const TIMER_MS: i32 = 50;

/// Plain objects: structs as objects, maps as objects, `u64` as numbers
/// where they fit (ids and ticks are `u32`).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value.serialize(&serializer).map_err(JsValue::from)
}

/// Entity states as plain objects, built in one go: serialized to JSON in
/// wasm, then one `JSON.parse`. Building the objects field by field from
/// wasm ([`to_js`]) crosses into JavaScript once per field, which made the
/// JS API cost about 3 µs per changed entity. The objects are the same for
/// states made of numbers, strings, booleans, sequences, maps with string or
/// integer keys and structs; `None` and a non-finite float become `null`
/// (JSON has no `undefined`, `NaN` or infinities).
fn states_to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    JSON_SCRATCH.with_borrow_mut(|text| {
        text.clear();
        serde_json::to_writer(&mut *text, value).map_err(|e| JsValue::from_str(&e.to_string()))?;
        Ok(tickwire_parse_json(text))
    })
}

thread_local! {
    /// The JSON text of [`states_to_js`], reused.
    static JSON_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
const decoder = new TextDecoder('utf-8', { fatal: true });
export function tickwire_parse_json(bytes) {
  return JSON.parse(decoder.decode(bytes));
}
export function tickwire_changes(tick, ids, added, changed) {
  const a = [], c = [], r = [];
  const n = ids.length, ac = added + changed;
  for (let i = 0; i < added; i++) a.push(ids[i]);
  for (let i = added; i < ac; i++) c.push(ids[i]);
  for (let i = ac; i < n; i++) r.push(ids[i]);
  return { tick, added: a, changed: c, removed: r };
}
"#)]
extern "C" {
    /// `JSON.parse` of UTF-8 JSON text in wasm memory (a view; no copy
    /// into a Rust `String` handed over separately).
    fn tickwire_parse_json(bytes: &[u8]) -> JsValue;

    /// Builds the `onSnapshot` object from a view of `ids` in wasm memory
    /// (added, then changed, then removed): one call into JavaScript. Plain
    /// arrays, not typed arrays: a typed array's own buffer costs about
    /// 1 µs more per snapshot in Chromium, and arrays spread and map as a
    /// page expects.
    fn tickwire_changes(tick: u32, ids: &[u32], added: u32, changed: u32) -> JsValue;
}

/// What the newest applied snapshot changed, as the object `onSnapshot`
/// receives: `{tick, added, changed, removed}`, each list an array
/// of ids (numbers, sorted, as [`Changes`] holds them).
/// No state is converted: the page reads those it needs through
/// [`JsStates`]. This is the JS API's cost per snapshot over the Rust path
/// (`arena-web`'s `bench_js_api` times it); `scratch` is reused between
/// calls.
#[must_use]
pub fn changes_to_js(changes: &Changes, tick: u32, scratch: &mut Vec<u32>) -> JsValue {
    scratch.clear();
    for list in [&changes.added, &changes.changed, &changes.removed] {
        scratch.extend(list.iter().map(|id| id.0));
    }
    // Lengths fit: a world holds at most `u32::MAX` ids.
    let len = |list: &Vec<NetId>| u32::try_from(list.len()).unwrap_or(u32::MAX);
    tickwire_changes(tick, scratch, len(&changes.added), len(&changes.changed))
}

/// Entity states as JavaScript objects, each built once per version of the
/// entity: an object stays cached until a snapshot adds, changes or removes
/// its entity ([`JsStates::forget`]), so reading an unchanged entity again
/// costs one lookup. Objects are built through JSON (see `states_to_js`).
#[derive(Debug, Default)]
pub struct JsStates {
    objects: FxHashMap<u32, JsValue>,
}

impl JsStates {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the objects of the entities that `changes` (one applied
    /// snapshot) added, changed or removed. Call it after every applied
    /// snapshot; cost in proportion to what changed.
    pub fn forget(&mut self, changes: &Changes) {
        if self.objects.is_empty() {
            return;
        }
        for id in changes
            .added
            .iter()
            .chain(&changes.changed)
            .chain(&changes.removed)
        {
            self.objects.remove(&id.0);
        }
    }

    /// Drops every object (a new session's world).
    pub fn clear(&mut self) {
        self.objects.clear();
    }

    /// Objects held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when no object is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The state of entity `id` in `world` as an object, or `undefined`.
    ///
    /// # Errors
    /// When the state cannot be converted (a bug in the game's `Serialize`).
    pub fn entity<S: Serialize + Clone + PartialEq>(
        &mut self,
        world: &ClientWorld<S>,
        id: u32,
    ) -> Result<JsValue, JsValue> {
        let Some(state) = world.get(NetId(id)) else {
            self.objects.remove(&id);
            return Ok(JsValue::UNDEFINED);
        };
        if let Some(object) = self.objects.get(&id) {
            return Ok(object.clone());
        }
        let object = states_to_js(state)?;
        self.objects.insert(id, object.clone());
        Ok(object)
    }

    /// The states of `ids` in `world`, in that order (`undefined` for an id
    /// not in the world); those not cached yet are built together, with one
    /// `JSON.parse` (cheaper per state than one parse each).
    ///
    /// # Errors
    /// When a state cannot be converted.
    pub fn states<S: Serialize + Clone + PartialEq>(
        &mut self,
        world: &ClientWorld<S>,
        ids: &[u32],
    ) -> Result<JsValue, JsValue> {
        let found: Vec<(u32, Option<&S>)> =
            ids.iter().map(|&id| (id, world.get(NetId(id)))).collect();
        let out = Array::new_with_length(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        for ((_, state), i) in self.build(found)?.into_iter().zip(0u32..) {
            out.set(i, state);
        }
        Ok(out.into())
    }

    /// Every entity of `world` as `{id, state}` objects sorted by id; the
    /// states not cached yet are built together, with one `JSON.parse`.
    ///
    /// # Errors
    /// When a state cannot be converted.
    pub fn entities<S: Serialize + Clone + PartialEq>(
        &mut self,
        world: &ClientWorld<S>,
    ) -> Result<JsValue, JsValue> {
        let all = Array::new_with_length(u32::try_from(world.len()).unwrap_or(u32::MAX));
        let states = self.build(
            world
                .iter()
                .map(|(id, state)| (id.0, Some(state)))
                .collect(),
        )?;
        ENTITY_KEYS.with(|k| {
            for ((id, state), i) in states.into_iter().zip(0u32..) {
                let entity = Object::new();
                // Setting a plain property on a fresh object cannot fail.
                let _ = Reflect::set(&entity, &k.id, &JsValue::from(id));
                let _ = Reflect::set(&entity, &k.state, &state);
                all.set(i, entity.into());
            }
        });
        Ok(all.into())
    }

    /// The objects of `(id, state)` (`undefined` for `None`), from the cache
    /// or built (and cached) with one `JSON.parse` for all the missing ones.
    fn build<S: Serialize>(
        &mut self,
        entities: Vec<(u32, Option<&S>)>,
    ) -> Result<Vec<(u32, JsValue)>, JsValue> {
        // Decided once, before any insert, so that an id given twice is
        // built twice rather than taking another entity's object.
        let miss: Vec<bool> = entities
            .iter()
            .map(|&(id, state)| state.is_some() && !self.objects.contains_key(&id))
            .collect();
        let missing: Vec<&S> = entities
            .iter()
            .zip(&miss)
            .filter_map(|(&(_, state), &miss)| state.filter(|_| miss))
            .collect();
        let mut built = if missing.is_empty() {
            None
        } else {
            Some(Array::from(&states_to_js(&missing)?).into_iter())
        };
        let mut out = Vec::with_capacity(entities.len());
        for ((id, state), miss) in entities.into_iter().zip(miss) {
            let object = match (state, miss) {
                (None, _) => JsValue::UNDEFINED,
                (Some(_), true) => {
                    let object = built
                        .as_mut()
                        .and_then(Iterator::next)
                        .ok_or_else(|| JsValue::from_str("states out of step"))?;
                    self.objects.insert(id, object.clone());
                    object
                }
                (Some(_), false) => self.objects.get(&id).cloned().unwrap_or_default(),
            };
            out.push((id, object));
        }
        Ok(out)
    }
}

/// The property names of an entity object, made once per thread (each
/// `JsValue::from_str` would copy the text into JavaScript again).
struct EntityKeys {
    id: JsValue,
    state: JsValue,
}

thread_local! {
    static ENTITY_KEYS: EntityKeys = EntityKeys {
        id: JsValue::from_str("id"),
        state: JsValue::from_str("state"),
    };
}

/// The `code` of the JS error for a refused message.
#[must_use]
pub fn send_error_code(e: &SendMessageError) -> &'static str {
    match e {
        SendMessageError::NotEstablished => "NotConnected",
        SendMessageError::TooLarge { .. } => "TooLarge",
        SendMessageError::QueueFull { .. } => "QueueFull",
        SendMessageError::Encode(_) => "Encode",
        _ => "Refused",
    }
}

/// A JS `Error` with `message` and a `code` property.
fn js_error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    let _ = Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(code));
    error.into()
}

/// Calls to JavaScript listeners, made once the client is free for them
/// to call back into it: right after the socket event that produced them
/// ([`CallbackQueue::take`], from `SocketApp::after_socket_event`), or, for
/// calls queued from a method of the client (`connect`, `onStatus`…) or its
/// timer, from a microtask after that code returns
/// ([`CallbackQueue::schedule`]). The microtask's closure is created once.
#[derive(Clone)]
pub struct CallbackQueue {
    calls: Rc<RefCell<Vec<(Function, JsValue)>>>,
    /// A microtask is pending.
    scheduled: Rc<std::cell::Cell<bool>>,
    /// Runs the queued calls; owned by JavaScript's garbage collector (a
    /// microtask still pending when the queue is dropped finds it alive and
    /// the queue empty).
    run: Function,
}

impl std::fmt::Debug for CallbackQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackQueue")
            .field("queued", &self.calls.borrow().len())
            .field("scheduled", &self.scheduled.get())
            .finish_non_exhaustive()
    }
}

impl Default for CallbackQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl CallbackQueue {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        let calls: Rc<RefCell<Vec<(Function, JsValue)>>> = Rc::default();
        let scheduled: Rc<std::cell::Cell<bool>> = Rc::default();
        let (queued, pending) = (Rc::clone(&calls), Rc::clone(&scheduled));
        let run = Closure::<dyn FnMut()>::new(move || {
            pending.set(false);
            run_calls(std::mem::take(&mut *queued.borrow_mut()));
        })
        .into_js_value()
        .unchecked_into::<Function>();
        Self {
            calls,
            scheduled,
            run,
        }
    }

    /// Queues `f(arg)`.
    pub fn push(&self, f: &Function, arg: JsValue) {
        self.calls.borrow_mut().push((f.clone(), arg));
    }

    /// Schedules a microtask that makes the queued calls, unless the queue
    /// is empty or one is pending.
    pub fn schedule(&self) {
        if !self.scheduled.get()
            && !self.calls.borrow().is_empty()
            && let Some(window) = web_sys::window()
        {
            self.scheduled.set(true);
            window.queue_microtask(&self.run);
        }
    }

    /// The queued calls, to be made with [`CallbackQueue::run`] once the
    /// client is free.
    #[must_use]
    pub fn take(&self) -> Vec<(Function, JsValue)> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    /// Makes `calls`, in order; a listener that throws does not stop the
    /// others (what it threw goes to the console).
    pub fn run(calls: Vec<(Function, JsValue)>) {
        run_calls(calls);
    }
}

fn run_calls(calls: Vec<(Function, JsValue)>) {
    for (f, arg) in calls {
        if let Err(thrown) = f.call1(&JsValue::UNDEFINED, &arg) {
            web_sys::console::error_2(&JsValue::from_str("tickwire: a listener threw:"), &thrown);
        }
    }
}

/// The listeners and the queue towards them.
struct Listeners {
    on_snapshot: Option<Function>,
    on_event: Option<Function>,
    on_status: Option<Function>,
    queue: CallbackQueue,
}

impl Listeners {
    fn new() -> Self {
        Self {
            on_snapshot: None,
            on_event: None,
            on_status: None,
            queue: CallbackQueue::new(),
        }
    }

    /// Queues `f(arg)`, to be called once the client is free (the driver
    /// holds it now).
    fn push(&self, f: &Function, arg: JsValue) {
        self.queue.push(f, arg);
    }
}

/// The game's side of a [`JsClient`]: the connection and the listeners.
struct JsApp<G: GameProtocol> {
    conn: Connection<G>,
    listeners: Listeners,
    /// The status last told to `onStatus`.
    told: Option<StatusView>,
    /// The newest error converting a state or an event for JavaScript.
    last_error: Option<String>,
    /// The states already built as objects.
    states: JsStates,
    /// Reused by [`changes_to_js`].
    scratch: Vec<u32>,
}

impl<G: GameProtocol> JsApp<G> {
    /// Runs `f` on the cache and the world (`None` before a connection).
    fn with_states<T>(
        &mut self,
        f: impl FnOnce(&mut JsStates, &ClientWorld<G::EntityState>) -> T,
    ) -> Option<T> {
        let Self { conn, states, .. } = self;
        conn.net().map(|n| f(states, n.session().world()))
    }

    fn tell_status(&mut self, now_ms: f64) {
        let view = status_view(self.conn.status(), now_ms);
        let changed = self
            .told
            .as_ref()
            .is_none_or(|t| t.status != view.status || t.reason != view.reason);
        if !changed {
            return;
        }
        if let Some(f) = &self.listeners.on_status {
            match to_js(&view) {
                Ok(v) => self.listeners.push(f, v),
                Err(e) => self.last_error = Some(format!("{e:?}")),
            }
        }
        self.told = Some(view);
    }
}

impl<G: GameProtocol> SocketApp for JsApp<G> {
    type Game = G;

    fn connection(&mut self) -> &mut Connection<G> {
        &mut self.conn
    }

    fn after_socket_event(&mut self) -> Option<Box<dyn FnOnce()>> {
        let calls = self.listeners.queue.take();
        if calls.is_empty() {
            None
        } else {
            Some(Box::new(move || CallbackQueue::run(calls)))
        }
    }

    fn on_event(&mut self, now_ms: f64, event: Event<G>) {
        match event {
            Event::Snapshot(applied) => {
                let Self {
                    conn,
                    states,
                    scratch,
                    listeners,
                    ..
                } = self;
                if let Some(n) = conn.net() {
                    let changes = n.session().world().changes();
                    states.forget(changes);
                    if let Some(f) = &listeners.on_snapshot {
                        listeners.push(f, changes_to_js(changes, applied.tick, scratch));
                    }
                }
            }
            // A connection (new or resumed) starts from an empty world.
            Event::Welcome(_) => self.states.clear(),
            Event::Events(events) => {
                if let Some(f) = self.listeners.on_event.clone() {
                    for e in &events {
                        match to_js(e) {
                            Ok(v) => self.listeners.push(&f, v),
                            Err(e) => self.last_error = Some(format!("{e:?}")),
                        }
                    }
                }
            }
            Event::Rtt(_) | Event::Closed(_) => {}
        }
        self.tell_status(now_ms);
    }
}

/// A `setInterval` id and its callback (dropped after `clearInterval`).
type Timer = (i32, Closure<dyn FnMut()>);

/// A game's connection driven from JavaScript; the macro
/// [`export_js_api!`](crate::export_js_api) wraps it in the exported class.
pub struct JsClient<G: GameProtocol> {
    ws: GameClient<JsApp<G>>,
    timer: RefCell<Option<Timer>>,
}

impl<G: GameProtocol> JsClient<G> {
    /// A client for the server at `url` (`ws://…/ws` or `wss://…/ws`;
    /// default: the page's own host, `/ws`).
    ///
    /// # Errors
    /// Without a window, when no `url` is given.
    pub fn new(url: Option<String>) -> Result<Self, JsValue> {
        let url = match url {
            Some(u) if !u.is_empty() => u,
            _ => socket::default_url()?,
        };
        let app = JsApp {
            conn: Connection::new(),
            listeners: Listeners::new(),
            told: None,
            last_error: None,
            states: JsStates::new(),
            scratch: Vec::new(),
        };
        Ok(Self {
            ws: GameClient::new(url, app),
            timer: RefCell::new(None),
        })
    }

    /// Connects (or reconnects with other options) with `options`
    /// (`{auth?, room?, seatToken?, transport?, webTransportDeadlineMs?,
    /// rememberFailureMs?}`, or `undefined`), and keeps the session's
    /// timers running until [`JsClient::close`]. The transport options
    /// make a [`crate::transport::TransportPolicy`] (defaults: `"auto"`, 2,500 ms, 10
    /// minutes).
    ///
    /// # Errors
    /// When `options` is not such an object, names an unknown transport,
    /// or gives a negative or non-finite time.
    pub fn connect(&self, options: JsValue) -> Result<(), JsValue> {
        let options: ConnectOptions = if options.is_undefined() || options.is_null() {
            ConnectOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| JsValue::from_str(&format!("connect options: {e}")))?
        };
        let policy = options
            .policy()
            .map_err(|e| JsValue::from_str(&format!("connect options: {e}")))?;
        self.ws.set_policy(policy);
        let mut hello = Hello::new(G::PROTOCOL_HASH);
        hello.auth_token = options.auth;
        hello.room = options.room;
        hello.seat_token = options.seat_token;
        self.ws.start(hello);
        self.ws.with(|app| {
            app.tell_status(now_ms());
            app.listeners.queue.schedule();
        });
        self.start_timer()
    }

    fn start_timer(&self) -> Result<(), JsValue> {
        if self.timer.borrow().is_some() {
            return Ok(());
        }
        let ws = self.ws.clone();
        let tick = Closure::<dyn FnMut()>::new(move || {
            ws.tick();
            ws.with(|app| {
                app.tell_status(now_ms());
                app.listeners.queue.schedule();
            });
        });
        let window = web_sys::window().ok_or("no window")?;
        let id = window.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            TIMER_MS,
        )?;
        *self.timer.borrow_mut() = Some((id, tick));
        Ok(())
    }

    /// Sends one tick of input (a plain object of the game's `Input`
    /// type). Returns its sequence number, or `undefined` while not
    /// connected (the input is dropped: inputs are for now, not for later).
    ///
    /// # Errors
    /// When `input` does not match the game's input type.
    pub fn send_input(&self, input: JsValue) -> Result<Option<u32>, JsValue> {
        let input: G::Input = serde_wasm_bindgen::from_value(input)
            .map_err(|e| JsValue::from_str(&format!("input: {e}")))?;
        let seq = self.ws.with(|app| app.conn.push_input(now_ms(), input));
        self.ws.flush();
        Ok(seq)
    }

    /// Queues one reliable game message (a plain object of the game's
    /// `Message` type) and sends it now; the server's `Game::on_message`
    /// gets it on its next tick, in the order sent. Unlike inputs, a
    /// refused message is an error: the caller decides (retry after
    /// reconnecting, tell the player).
    ///
    /// # Errors
    /// A JS `Error` with a `code` property: `"Invalid"` when `msg` does not
    /// match the game's message type, `"NotConnected"` while not connected
    /// (before the welcome, waiting to reconnect, after `close`),
    /// `"TooLarge"` when its encoding exceeds the limit the server accepts
    /// (`Limits::max_game_message_bytes`), `"QueueFull"` when the session
    /// holds too many unsent messages, `"Encode"` when serde refuses it.
    pub fn send_message(&self, msg: JsValue) -> Result<(), JsValue> {
        let msg: G::Message = serde_wasm_bindgen::from_value(msg)
            .map_err(|e| js_error("Invalid", &format!("message: {e}")))?;
        self.ws
            .with(|app| app.conn.send_message(now_ms(), msg))
            .map_err(|e| js_error(send_error_code(&e), &format!("sendMessage: {e}")))?;
        self.ws.flush();
        Ok(())
    }

    /// Every entity of the newest applied snapshot, as `{id, state}`
    /// objects sorted by id (empty before the first snapshot); the states
    /// are the objects [`JsClient::entity`] returns.
    ///
    /// # Errors
    /// When a state cannot be converted (a bug in the game's `Serialize`).
    pub fn entities(&self) -> Result<JsValue, JsValue> {
        self.ws
            .with(|app| app.with_states(|states, world| states.entities(world)))
            .unwrap_or_else(|| Ok(Array::new().into()))
    }

    /// The state of entity `id` in the newest applied snapshot (a plain
    /// object, the same one until the entity changes), or `undefined`.
    ///
    /// # Errors
    /// When the state cannot be converted.
    pub fn entity(&self, id: u32) -> Result<JsValue, JsValue> {
        self.ws
            .with(|app| app.with_states(|states, world| states.entity(world, id)))
            .unwrap_or(Ok(JsValue::UNDEFINED))
    }

    /// The states of `ids` in the newest applied snapshot, in that order
    /// (`undefined` for an unknown id): the objects [`JsClient::entity`]
    /// returns, those not built yet built together (one `JSON.parse`, about
    /// half the cost per state of one `entity` call each).
    ///
    /// # Errors
    /// When a state cannot be converted.
    pub fn states(&self, ids: &[u32]) -> Result<JsValue, JsValue> {
        self.ws
            .with(|app| app.with_states(|states, world| states.states(world, ids)))
            .unwrap_or_else(|| {
                Ok(ids
                    .iter()
                    .map(|_| JsValue::UNDEFINED)
                    .collect::<Array>()
                    .into())
            })
    }

    /// Calls `f(changes)` after every applied snapshot, with the ids it
    /// added, changed and removed (`undefined` stops).
    pub fn on_snapshot(&self, f: Option<Function>) {
        self.ws.with(|app| app.listeners.on_snapshot = f);
    }

    /// Calls `f(event)` for every game event, in order (`undefined` stops).
    pub fn on_event(&self, f: Option<Function>) {
        self.ws.with(|app| app.listeners.on_event = f);
    }

    /// Calls `f(status)` whenever the connection's status changes, and once
    /// with the current one (`undefined` stops).
    pub fn on_status(&self, f: Option<Function>) {
        self.ws.with(|app| {
            app.listeners.on_status = f;
            app.told = None;
            app.tell_status(now_ms());
            app.listeners.queue.schedule();
        });
    }

    /// The connection's status (as `onStatus` reports it).
    ///
    /// # Errors
    /// Never in practice (a plain object of strings and numbers).
    pub fn status(&self) -> Result<JsValue, JsValue> {
        self.ws
            .with(|app| to_js(&status_view(app.conn.status(), now_ms())))
    }

    /// Network figures (see [`NetStats`]).
    ///
    /// # Errors
    /// Never in practice (a plain object of numbers).
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        self.ws
            .with(|app| to_js(&NetStats::of(&mut app.conn, now_ms())))
    }

    /// This player's client id once welcomed.
    #[must_use]
    pub fn client_id(&self) -> Option<u32> {
        self.ws.with(|app| {
            app.conn
                .net()
                .and_then(|n| n.session().welcome())
                .map(|w| w.client_id)
        })
    }

    /// The transport of the current (or, while waiting, the last)
    /// attempt: `"webtransport"` or `"websocket"`; `None` before the first.
    #[must_use]
    pub fn transport(&self) -> Option<String> {
        self.ws.transport().map(|k| k.name().to_owned())
    }

    /// Drops the transport as a network loss would: the client waits, then
    /// resumes its session. With `webtransport_failed`, WebTransport is
    /// first remembered as failed for this server (as if it had failed),
    /// so the session resumes over WebSocket. A testing aid, also for a
    /// page that knows the network changed.
    pub fn interrupt_transport(&self, webtransport_failed: bool) {
        self.ws.interrupt(webtransport_failed);
        self.ws.with(|app| {
            app.tell_status(now_ms());
            app.listeners.queue.schedule();
        });
    }

    /// The newest error met converting a state or an event for a listener
    /// (such a snapshot's callback is skipped), if any.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.ws.with(|app| app.last_error.clone())
    }

    /// Leaves (sends `Leave`, closes the socket, stops reconnecting and the
    /// timers). [`JsClient::connect`] starts again.
    pub fn close(&self) {
        self.ws.leave();
        self.ws.with(|app| {
            app.tell_status(now_ms());
            app.listeners.queue.schedule();
        });
        if let Some((id, _closure)) = self.timer.borrow_mut().take()
            && let Some(window) = web_sys::window()
        {
            window.clear_interval_with_handle(id);
        }
    }
}

impl<G: GameProtocol> Drop for JsClient<G> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::send_error_code;
    use tickwire_shared::client::SendMessageError;

    #[test]
    fn each_refusal_has_its_own_code() {
        assert_eq!(
            send_error_code(&SendMessageError::NotEstablished),
            "NotConnected"
        );
        assert_eq!(
            send_error_code(&SendMessageError::TooLarge {
                size: 2000,
                max: 1024
            }),
            "TooLarge"
        );
        assert_eq!(
            send_error_code(&SendMessageError::QueueFull { max: 64 }),
            "QueueFull"
        );
    }
}
