//! One browser WebTransport session for [`crate::socket::GameClient`], and
//! the browser's memory of WebTransport failures.
//!
//! The session is found through the server's discovery document, on the
//! WebSocket endpoint's origin (`GET /webtransport`, docs/PROTOCOL.md
//! §2.3): `{"url": "https://host:port/wt", "serverCertificateHashes":
//! [{"algorithm": "sha-256", "value": "<base64>"}]}` (hashes only for a
//! development certificate). Once the session is ready the client opens one
//! bidirectional stream: reliable messages travel on it framed
//! ([`crate::stream::StreamFrames`]), snapshots arrive as datagrams (one
//! message each) and inputs and acks leave as datagrams when they fit.
//!
//! The JavaScript glue is a few functions in an `inline_js` module
//! (WebTransport's web-sys bindings need `--cfg=web_sys_unstable_apis`);
//! bytes cross as `Uint8Array`s and everything else is decided in Rust.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Uint8Array;
use tickwire_shared::CloseCode;
use tickwire_shared::client::Channel;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::net::LOST;
use crate::socket::{Incoming, Sink};
use crate::stream::StreamFrames;
use crate::transport::{FailureStore, MemoryStore};

#[wasm_bindgen(inline_js = r#"
const text = (e) => String(e && e.message ? e.message : e);
export function tickwire_wt_supported() {
  return typeof globalThis.WebTransport === 'function';
}
export function tickwire_wt_open(discovery, onReady, onStream, onDatagram, onClosed) {
  const h = { wt: null, writer: null, datagrams: null, max: 0, dead: false, done: false, closing: false };
  const finish = (code, reason) => {
    if (h.done) return;
    h.done = true;
    if (!h.dead) onClosed(code, reason);
  };
  const pump = async (readable, f) => {
    const reader = readable.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || h.dead) return;
      f(value);
    }
  };
  (async () => {
    const res = await fetch(discovery, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${discovery}: HTTP ${res.status}`);
    const d = await res.json();
    if (typeof d?.url !== 'string') throw new Error(`${discovery}: no url`);
    const hashes = Array.isArray(d.serverCertificateHashes) ? d.serverCertificateHashes : [];
    const options = {};
    if (hashes.length > 0) {
      options.serverCertificateHashes = hashes.map((x) => ({
        algorithm: x.algorithm,
        value: Uint8Array.from(atob(x.value), (c) => c.charCodeAt(0)),
      }));
    }
    if (h.dead) return;
    const wt = new WebTransport(d.url, options);
    h.wt = wt;
    wt.closed.then(
      (info) => finish(info?.closeCode ?? 0, info?.reason ?? ''),
      (e) => finish(-1, text(e)),
    );
    await wt.ready;
    const stream = await wt.createBidirectionalStream();
    h.writer = stream.writable.getWriter();
    const dg = wt.datagrams;
    h.datagrams = (typeof dg.createWritable === 'function' ? dg.createWritable() : dg.writable).getWriter();
    h.max = dg.maxDatagramSize ?? 0;
    if (h.dead) return;
    onReady();
    // A read error means the session ended: `closed` reports how.
    pump(stream.readable, onStream).catch(() => {});
    pump(dg.readable, onDatagram).catch(() => {});
  })().catch((e) => {
    finish(-1, text(e));
    try { h.wt?.close(); } catch { /* already closed */ }
  });
  return h;
}
export function tickwire_wt_send(h, bytes) {
  if (!h.writer) return false;
  h.writer.write(bytes.slice()).catch(() => {});
  return true;
}
export function tickwire_wt_datagram(h, bytes) {
  if (!h.datagrams || bytes.length > h.max) return false;
  h.datagrams.write(bytes.slice()).catch(() => {});
  return true;
}
export function tickwire_wt_close(h, code, reason, quiet) {
  if (quiet) h.dead = true;
  if (h.closing) return;
  h.closing = true;
  const wt = h.wt;
  if (!wt) { h.dead = true; return; }
  const close = () => { try { wt.close({ closeCode: code, reason }); } catch { /* closed */ } };
  // Let what was written (a Leave) go out with the stream's end first:
  // closing the session resets its streams.
  const w = h.writer;
  if (!w) { close(); return; }
  Promise.race([w.close(), new Promise((r) => setTimeout(r, 250))]).then(close, close);
}
"#)]
extern "C" {
    /// True when the browser has `WebTransport`.
    fn tickwire_wt_supported() -> bool;
    /// Fetches `discovery`, opens the session and its stream; returns the
    /// session's handle. `on_closed(code, reason)` is called once (`code`
    /// `-1` for a failure or a loss without a close code).
    fn tickwire_wt_open(
        discovery: &str,
        on_ready: &Closure<dyn FnMut()>,
        on_stream: &Closure<dyn FnMut(Uint8Array)>,
        on_datagram: &Closure<dyn FnMut(Uint8Array)>,
        on_closed: &Closure<dyn FnMut(f64, String)>,
    ) -> JsValue;
    /// Writes `bytes` (copied) on the stream; false before it is open.
    fn tickwire_wt_send(handle: &JsValue, bytes: &[u8]) -> bool;
    /// Sends `bytes` (copied) as one datagram; false when it does not fit
    /// or the session is not ready.
    fn tickwire_wt_datagram(handle: &JsValue, bytes: &[u8]) -> bool;
    /// Ends the stream, then closes the session with `code` and `reason`;
    /// with `quiet`, no callback is called any more.
    fn tickwire_wt_close(handle: &JsValue, code: u32, reason: &str, quiet: bool);
}

/// True when the browser has `WebTransport` (`globalThis.WebTransport`).
#[must_use]
pub fn supported() -> bool {
    tickwire_wt_supported()
}

/// A WebTransport session and the callbacks that keep it alive.
pub(crate) struct WtTransport {
    handle: JsValue,
    open: Rc<RefCell<bool>>,
    /// Frames outgoing reliable messages (its decoder is unused; the
    /// stream callback has its own).
    frames: StreamFrames,
    scratch: Vec<u8>,
    _on_ready: Closure<dyn FnMut()>,
    _on_stream: Closure<dyn FnMut(Uint8Array)>,
    _on_datagram: Closure<dyn FnMut(Uint8Array)>,
    _on_closed: Closure<dyn FnMut(f64, String)>,
}

impl WtTransport {
    /// Discovers the session at `discovery` and opens it; events go to
    /// `sink`. Messages of more than `max_in` bytes on the stream end the
    /// session (`MessageTooBig`); the client sends at most `max_out`.
    pub(crate) fn open(discovery: &str, max_in: usize, max_out: usize, sink: &Sink) -> Self {
        let open = Rc::new(RefCell::new(false));
        let (s, o) = (sink.clone(), open.clone());
        let on_ready = Closure::<dyn FnMut()>::new(move || {
            *o.borrow_mut() = true;
            s(Incoming::Open);
        });
        let s = sink.clone();
        let mut rx = StreamFrames::new(max_in, max_out);
        let on_stream = Closure::<dyn FnMut(Uint8Array)>::new(move |chunk: Uint8Array| {
            let chunk = chunk.to_vec();
            if let Err(e) = rx.push(&chunk, |m| s(Incoming::Message(m, Channel::Reliable))) {
                s(Incoming::Violation(
                    CloseCode::MessageTooBig,
                    &e.to_string(),
                ));
            }
        });
        let s = sink.clone();
        let on_datagram = Closure::<dyn FnMut(Uint8Array)>::new(move |d: Uint8Array| {
            s(Incoming::Message(&d.to_vec(), Channel::Unreliable));
        });
        let (s, o) = (sink.clone(), open.clone());
        let on_closed = Closure::<dyn FnMut(f64, String)>::new(move |code: f64, reason: String| {
            *o.borrow_mut() = false;
            s(Incoming::Closed {
                code: close_code(code),
                reason: &reason,
            });
        });
        let handle = tickwire_wt_open(discovery, &on_ready, &on_stream, &on_datagram, &on_closed);
        Self {
            handle,
            open,
            frames: StreamFrames::new(max_in, max_out),
            scratch: Vec::new(),
            _on_ready: on_ready,
            _on_stream: on_stream,
            _on_datagram: on_datagram,
            _on_closed: on_closed,
        }
    }

    /// True once the session and its stream are open (and not closed).
    pub(crate) fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Sends one message: an unreliable one as a datagram when it fits,
    /// anything else framed on the stream. False when nothing was sent.
    pub(crate) fn send(&mut self, bytes: &[u8], channel: Channel) -> bool {
        if channel == Channel::Unreliable && tickwire_wt_datagram(&self.handle, bytes) {
            return true;
        }
        if self.frames.frame(bytes, &mut self.scratch).is_err() {
            return false;
        }
        tickwire_wt_send(&self.handle, &self.scratch)
    }

    /// Closes the session with `code` and `reason` (the stream ends
    /// first); with `quiet`, no event of it reaches the driver.
    pub(crate) fn close(&self, code: u16, reason: &str, quiet: bool) {
        tickwire_wt_close(&self.handle, u32::from(code), clip(reason, 1024), quiet);
    }
}

impl Drop for WtTransport {
    fn drop(&mut self) {
        // The callbacks go with `self`: JavaScript must not call them.
        tickwire_wt_close(&self.handle, 1000, "", true);
    }
}

/// A WebTransport close code as the session's close code: the tickwire
/// codes fit in 16 bits; anything else (a loss, another application's
/// code) reads as a lost connection.
fn close_code(code: f64) -> u16 {
    if code.fract() == 0.0 && (1.0..=f64::from(u16::MAX)).contains(&code) {
        code as u16
    } else {
        LOST
    }
}

/// `reason` cut to at most `max` bytes on a character boundary.
fn clip(reason: &str, max: usize) -> &str {
    let mut end = reason.len().min(max);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The browser's [`FailureStore`]: `localStorage` (under
/// `tickwire.webtransport.failedUntil:<host>`) when the page may use it, so
/// that a failure is remembered across page loads; memory otherwise.
#[derive(Debug, Default)]
pub struct BrowserStore {
    memory: MemoryStore,
}

const STORE_PREFIX: &str = "tickwire.webtransport.failedUntil:";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

impl FailureStore for BrowserStore {
    fn get(&self, key: &str) -> Option<f64> {
        let stored = local_storage()
            .and_then(|s| s.get_item(&format!("{STORE_PREFIX}{key}")).ok().flatten())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| ms as f64);
        stored.or_else(|| self.memory.get(key))
    }

    fn set(&mut self, key: &str, until: Option<f64>) {
        self.memory.set(key, until);
        if let Some(s) = local_storage() {
            let k = format!("{STORE_PREFIX}{key}");
            // Whole milliseconds as an integer: no float formatting or
            // parsing in the bundle.
            let _ = match until {
                Some(t) => s.set_item(&k, &(t.max(0.0) as u64).to_string()),
                None => s.remove_item(&k),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_beyond_sixteen_bits_read_as_a_loss() {
        assert_eq!(close_code(4001.0), 4001);
        assert_eq!(close_code(1000.0), 1000);
        for lost in [-1.0, 0.0, 70_000.0, 1.5, f64::NAN] {
            assert_eq!(close_code(lost), LOST, "{lost}");
        }
        assert_eq!(clip("ééé", 3), "é");
    }
}
