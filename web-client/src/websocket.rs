//! One browser WebSocket for [`crate::socket::GameClient`]: binary frames
//! in and out, its open and close events, as [`Incoming`] for the driver.
//! A WebSocket has no datagrams: every message travels reliably.

use js_sys::{ArrayBuffer, Uint8Array};
use tickwire_shared::CloseCode;
use tickwire_shared::client::Channel;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::connection::ws_close_args;
use crate::socket::{Incoming, Sink};

type Handler<T> = Closure<dyn FnMut(T)>;

/// A WebSocket and the handlers that keep it alive.
pub(crate) struct WsTransport {
    ws: WebSocket,
    _on_open: Handler<web_sys::Event>,
    _on_message: Handler<MessageEvent>,
    _on_close: Handler<CloseEvent>,
}

impl WsTransport {
    /// Opens a WebSocket to `url`; its events go to `sink`.
    pub(crate) fn open(url: &str, sink: &Sink) -> Result<Self, JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let s = sink.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| s(Incoming::Open));
        let s = sink.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            match e.data().dyn_into::<ArrayBuffer>() {
                Ok(buf) => s(Incoming::Message(
                    &Uint8Array::new(&buf).to_vec(),
                    Channel::Reliable,
                )),
                Err(_) => s(Incoming::Violation(
                    CloseCode::UnsupportedData,
                    "the server sent a text frame",
                )),
            }
        });
        let s = sink.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            s(Incoming::Closed {
                code: e.code(),
                reason: &e.reason(),
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// True once open (and not closing).
    pub(crate) fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }

    /// Sends one message; false when the socket refused it.
    pub(crate) fn send(&self, bytes: &[u8]) -> bool {
        self.ws.send_with_u8_array(bytes).is_ok()
    }

    /// Closes with `code` and `reason` (mapped to what a browser accepts);
    /// with `quiet`, its handlers are detached first, so that no event of
    /// it reaches the driver.
    pub(crate) fn close(&self, code: u16, reason: &str, quiet: bool) {
        if quiet {
            self.ws.set_onopen(None);
            self.ws.set_onmessage(None);
            self.ws.set_onclose(None);
        }
        let (code, reason) = ws_close_args(code, reason);
        let _ = self.ws.close_with_code_and_reason(code, &reason);
    }
}
