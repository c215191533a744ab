//! # arena-web: the arena's browser client, built on tickwire-web
//!
//! Rust compiled to `wasm32-unknown-unknown`; the page's JavaScript
//! (`www/app.js`) only loads the module and calls [`start`]. Every protocol
//! byte is built and parsed by `tickwire-shared`; the connection, the
//! WebSocket, reconnects, interpolation and prediction are the generic
//! `tickwire-web` SDK's. What is the arena's own:
//!
//! ```text
//!  tickwire_web::socket::GameClient<Client> ─▶ client ─┬─ ArenaPredict: arena::step_player (tickwire_web::predict)
//!  keys, mouse ─▶ browser (driver) ─▶ input                 ├─ InterpBuffer<(Vec2, Angle)> (tickwire_web::interp)
//!  requestAnimationFrame ─▶                                  ├─ render   Canvas 2D (camera, arena, players, shots)
//!                                                            └─ ui       banner, scoreboard, net overlay, kill feed
//! ```
//!
//! The sans-IO parts (`input`, `client`, the camera and the HUD texts)
//! build and run their tests on the host; `browser` and the drawing calls
//! need a page.
//!
//! JavaScript API (see `www/app.js`, which also sets `window.tickwire`):
//!
//! * `start(canvas_id, name, server_url?)`: start (or restart) playing;
//!   `server_url` defaults to `ws(s)://<this host>/ws`.
//! * `start_seat(canvas_id, name, wss_url, room, seat_token)`: play with a
//!   matchmaker's ticket (`POST /matchmake`, which `www/app.js` calls with
//!   `fetch`: `window.tickwire.matchmake(request)`).
//! * `stop()`: leave the game.
//! * `client_stats()`: a JSON string of [`client::Stats`].
//! * `bench_snapshot_decode(entities, iterations, samples?)`: JSON with the
//!   µs to decode and apply a full snapshot and a 10 %-changed delta to the
//!   client's world, and (the old path) to decode them into a new snapshot.
#![warn(missing_docs)]

pub mod bench;
mod browser;
pub mod client;
pub mod input;
pub mod render;
pub mod ui;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use tickwire_web::transport::TransportPolicy;

use crate::browser::Driver;

// The generic JavaScript/TypeScript API of tickwire-web for the arena's
// types: the class `TickwireClient` (see `www/sdk.html`, which drives it).
tickwire_web::export_js_api!(
    arena::Arena,
    input = PlayerInput,
    state = EntityState,
    event = ArenaEvent
);

thread_local! {
    static DRIVER: RefCell<Option<Rc<RefCell<Driver>>>> = const { RefCell::new(None) };
}

/// The page's driver, started on `canvas_id` (with `url`) at the first call.
fn driver(canvas_id: &str, url: Option<String>) -> Result<Rc<RefCell<Driver>>, JsValue> {
    DRIVER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = Driver::start(canvas_id, url)?;
        *slot = Some(d.clone());
        Ok(d)
    })
}

/// Starts playing as `name` on the canvas with id `canvas_id`, connecting to
/// `server_url` (default: `wss://<this host>/ws`, or `ws://` for an http
/// page). Calling it again restarts with the new name (a new name is a new
/// player; the same name resumes the session).
///
/// `transport` is `"auto"` (the default: WebTransport, falling back to
/// WebSocket), `"websocket"` or `"webtransport"`.
///
/// # Errors
/// When the canvas is missing or has no 2D context, or `transport` is none
/// of those.
#[wasm_bindgen]
pub fn start(
    canvas_id: &str,
    name: &str,
    server_url: Option<String>,
    transport: Option<String>,
) -> Result<(), JsValue> {
    let policy = transport_policy(transport.as_deref())?;
    let d = driver(canvas_id, server_url)?;
    d.borrow_mut().set_policy(policy);
    d.borrow_mut().play(name);
    Ok(())
}

/// The transport policy named `mode` (default `auto`).
fn transport_policy(mode: Option<&str>) -> Result<TransportPolicy, JsValue> {
    let mode = mode.filter(|m| !m.is_empty()).unwrap_or("auto");
    let mode = mode
        .parse()
        .map_err(|e: tickwire_web::transport::UnknownTransport| {
            JsValue::from_str(&e.to_string())
        })?;
    Ok(TransportPolicy {
        mode,
        ..TransportPolicy::default()
    })
}

/// Starts playing as `name` with a matchmaker's ticket: connects to
/// `wss_url` (the ticket's node) and joins `room` with `seat_token`.
///
/// # Errors
/// When the canvas is missing or has no 2D context.
#[wasm_bindgen]
pub fn start_seat(
    canvas_id: &str,
    name: &str,
    wss_url: &str,
    room: &str,
    seat_token: &str,
) -> Result<(), JsValue> {
    driver(canvas_id, Some(wss_url.to_owned()))?
        .borrow_mut()
        .play_seat(name, wss_url, room, seat_token);
    Ok(())
}

/// Leaves the game (sends `Leave`, closes the socket, stops reconnecting).
#[wasm_bindgen]
pub fn stop() {
    if let Some(d) = DRIVER.with(|slot| slot.borrow().clone()) {
        d.borrow_mut().leave();
    }
}

/// The client's figures as a JSON object: `connected`, `status`, `name`,
/// `tick`, `rtt_ms`, `snapshots_per_sec`, `bytes_per_sec`,
/// `corrections_per_sec`, `fps`, `my_entity`, `client_id`, `entity_count`,
/// `visible_players`, `projectiles`, `unacked_inputs`, `interp_delay_ms`,
/// `reconnect_attempts`. Before [`start`]: `{"connected":false,"status":"idle"}`.
#[wasm_bindgen]
#[must_use]
pub fn client_stats() -> String {
    match DRIVER.with(|slot| slot.borrow().clone()) {
        Some(d) => d.borrow_mut().stats_json(),
        None => "{\"connected\":false,\"status\":\"idle\"}".to_owned(),
    }
}

/// Times decoding and applying a synthetic arena snapshot of `entities`
/// entities to a `ClientWorld`, full and as a delta with every tenth entity
/// changed, and the same messages through the old
/// decode-into-a-new-snapshot path: for each, one warm-up batch of
/// `iterations` runs, then `samples` (default
/// [`bench::DEFAULT_SAMPLES`]) timed batches. Returns JSON `{entities,
/// iterations, samples, full_us, full_min_us, delta_us, delta_min_us,
/// decode_full_us, decode_delta_us, full_bytes, delta_bytes}` (median and
/// fastest batch means in microseconds; see [`bench::BenchResult`]).
///
/// # Errors
/// When the synthetic snapshot does not round-trip (a bug).
#[wasm_bindgen]
pub fn bench_snapshot_decode(
    entities: u32,
    iterations: u32,
    samples: Option<u32>,
) -> Result<String, JsValue> {
    let samples = samples.unwrap_or(bench::DEFAULT_SAMPLES);
    bench::arena_snapshot_decode(entities, iterations, samples, tickwire_web::socket::now_ms)
        .map(|r| r.to_json())
        .map_err(|e| JsValue::from_str(&e))
}

/// Times what the JavaScript API adds to each received snapshot over the
/// Rust path, after decoding and applying a delta of a synthetic arena
/// world of `entities` entities with every tenth changed: dropping the
/// cached objects of the changed entities ([`tickwire_web::js::JsStates`]),
/// building the `onSnapshot` object (`{tick, added, changed, removed}` with
/// arrays of ids, [`tickwire_web::js::changes_to_js`]) and calling a
/// listener that reads it through the client's
/// [`tickwire_web::js::CallbackQueue`], as after a socket message. `read`
/// says which states the page then reads (each built as a plain object and
/// handed to JavaScript): `"none"` (the default: the notification alone),
/// `"each"` (every added and changed entity's state, one `entity(id)` call
/// each) or `"batch"` (the same states with one `states(ids)` call).
/// Sampled as
/// [`bench_snapshot_decode`]. Returns JSON `{entities, changed, rust_us,
/// with_front_end_us, rust_min_us, with_front_end_min_us, extra_us,
/// extra_per_changed_us}` (see [`bench::FrontEndCost`]).
///
/// # Errors
/// An unknown `read`; when the synthetic snapshot does not round-trip, or
/// the conversion fails (bugs).
#[wasm_bindgen]
pub fn bench_js_api(
    entities: u32,
    iterations: u32,
    samples: Option<u32>,
    read: Option<String>,
) -> Result<String, JsValue> {
    let samples = samples.unwrap_or(bench::DEFAULT_SAMPLES);
    let read = read.unwrap_or_else(|| "none".to_owned());
    if !["none", "each", "batch"].contains(&read.as_str()) {
        return Err(JsValue::from_str(&format!(
            "read: {read:?} is not \"none\", \"each\" or \"batch\""
        )));
    }
    // A listener that reads the object, as a page's would.
    let listener = js_sys::Function::new_with_args(
        "changes",
        "globalThis.__tickwireBenchSink = changes.changed.length + changes.added.length + changes.removed.length;",
    );
    // Where the states go when read (a page would draw them).
    let sink = js_sys::Function::new_with_args("state", "globalThis.__tickwireBenchState = state;");
    let mut states = tickwire_web::js::JsStates::new();
    let queue = tickwire_web::js::CallbackQueue::new();
    let mut scratch = Vec::new();
    bench::arena_front_end_cost(
        entities,
        iterations,
        samples,
        tickwire_web::socket::now_ms,
        |world, tick| {
            let changes = world.changes();
            states.forget(changes);
            // As the client delivers it after a socket message: queued, then
            // called once the driver is released.
            queue.push(
                &listener,
                tickwire_web::js::changes_to_js(changes, tick, &mut scratch),
            );
            tickwire_web::js::CallbackQueue::run(queue.take());
            let mut ids = changes.added.iter().chain(&changes.changed).map(|id| id.0);
            match read.as_str() {
                "each" => {
                    for id in ids {
                        let state = states.entity(world, id).map_err(|e| format!("{e:?}"))?;
                        sink.call1(&JsValue::UNDEFINED, &state)
                            .map_err(|e| format!("{e:?}"))?;
                    }
                }
                "batch" => {
                    scratch.clear();
                    scratch.extend(&mut ids);
                    let all = states
                        .states(world, &scratch)
                        .map_err(|e| format!("{e:?}"))?;
                    sink.call1(&JsValue::UNDEFINED, &all)
                        .map_err(|e| format!("{e:?}"))?;
                }
                _ => {}
            }
            Ok(())
        },
    )
    .map(|r| r.to_json())
    .map_err(|e| JsValue::from_str(&e))
}
