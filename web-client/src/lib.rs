//! # tickwire-web: the browser SDK
//!
//! Everything a browser client of a tickwire game needs, generic over the
//! game's [`GameProtocol`](tickwire_shared::GameProtocol) (no game in here;
//! the arena's page, `example-game/web`, is one user). Every protocol byte
//! is built and parsed by [`tickwire_shared::client::ClientSession`].
//!
//! ```text
//!  WebTransport (webtransport) ┐
//!  WebSocket    (websocket)    ┴▶ socket::GameClient ─▶ connection::Connection ─▶ net::Net ─▶ ClientSession
//!  transport::Selector picks one   (browser glue)       (reconnect, status)       (meters, RTT)
//!  game: SocketApp::on_event ─▶ interp::InterpBuffer<T: Interpolate>   remote entities
//!                             └▶ predict::Predictor<P: Predict>         my entity
//!  stats::NetStats                                                       RTT, snapshots/s, bytes/s…
//! ```
//!
//! The sans-IO parts (`connection`, `net`, `reconnect`, `transport`,
//! `stream`, `interp`, `predict`, `meter`, `stats`) build and run their
//! tests on the host; `socket` and `webtransport` need a page.
#![warn(missing_docs)]

pub mod connection;
pub mod interp;
pub mod js;
pub mod meter;
pub mod net;
pub mod predict;
pub mod reconnect;
pub mod socket;
pub mod stats;
pub mod stream;
pub mod transport;
mod websocket;
pub mod webtransport;

/// What [`export_js_api!`] expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use js_sys;
    pub use wasm_bindgen;
}

/// Exports the JavaScript class `TickwireClient` for game `$game` from the
/// calling crate (a `cdylib` built for wasm32), with TypeScript typings:
/// `TickwireInput`, `TickwireState` and `TickwireEvent` become aliases of
/// the TypeScript types named here (the game's types as `tsify` declares
/// them, or any TypeScript type such as `any`), and the class's methods are
/// typed with them. See [`js`] for what the class does.
///
/// Invoke it once per wasm module (the names are fixed). The calling crate
/// depends on `wasm-bindgen` itself, at the exact version this crate uses
/// (the expansion's attributes name `wasm_bindgen`, and the bindings
/// generator must match the library: pin it with `=`), and on the game's
/// crate with its TypeScript derives.
///
/// ```ignore
/// // In the game's web crate (crate-type = ["cdylib", "rlib"]):
/// tickwire_web::export_js_api!(arena::Arena, input = PlayerInput, state = EntityState, event = ArenaEvent);
/// ```
///
/// A game with client → server messages (`GameProtocol::Message` other
/// than `()`) adds `message = Type`: the class gets
/// `sendMessage(message: TickwireMessage): void` (see [`js`] for its
/// errors). Without it there is no `sendMessage`. A game without per-tick
/// inputs may name `input = never`, so that TypeScript refuses any
/// `sendInput` call:
///
/// ```ignore
/// tickwire_web::export_js_api!(trading::Trading, input = never, state = Entity, event = TradeEvent, message = Order);
/// ```
///
/// The generated `.d.ts` then reads (abridged):
///
/// ```ts
/// export type TickwireState = EntityState;
/// export class TickwireClient {
///   constructor(url?: string | null);
///   connect(options: TickwireConnectOptions | undefined): void;
///   sendInput(input: TickwireInput): number | undefined;
///   entity(id: number): TickwireState | undefined;
///   states(ids: Uint32Array | number[]): (TickwireState | undefined)[];
///   entities(): TickwireEntity<TickwireState>[];
///   onSnapshot(f: ((changes: TickwireChanges) => void) | undefined): void;
///   onEvent(f: ((event: TickwireEvent) => void) | undefined): void;
///   onStatus(f: ((status: TickwireStatus) => void) | undefined): void;
///   sendMessage(message: TickwireMessage): void; // with `message = …` only
///   stats(): TickwireStats;
///   readonly transport: "webtransport" | "websocket" | undefined;
///   interruptTransport(markWebTransportFailed?: boolean | null): void;
///   close(): void;
/// }
/// ```
#[macro_export]
macro_rules! export_js_api {
    ($game:ty, input = $input:ident, state = $state:ident, event = $event:ident
        $(, message = $message:ident)? $(,)?) => {
        $($crate::__tickwire_send_message!($message);)?

        #[$crate::__private::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = $crate::__private::wasm_bindgen,
            typescript_custom_section
        )]
        const __TICKWIRE_TS: &str = ::core::concat!(
            "/** One tick of the game's input. */\nexport type TickwireInput = ",
            ::core::stringify!($input),
            ";\n/** The replicated state of one entity. */\nexport type TickwireState = ",
            ::core::stringify!($state),
            ";\n/** A game event. */\nexport type TickwireEvent = ",
            ::core::stringify!($event),
            ";\n",
        );

        #[$crate::__private::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = $crate::__private::wasm_bindgen,
            typescript_custom_section
        )]
        const __TICKWIRE_TS_COMMON: &str = $crate::js::TS_COMMON;

        /// A connection to the game's server: connect, send inputs, read
        /// the entities (plain objects) or subscribe to their changes, the
        /// game's events, the status and network figures, close.
        #[$crate::__private::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = $crate::__private::wasm_bindgen,
            js_sys = $crate::__private::js_sys
        )]
        pub struct TickwireClient {
            inner: $crate::js::JsClient<$game>,
        }

        #[$crate::__private::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = $crate::__private::wasm_bindgen,
            js_sys = $crate::__private::js_sys
        )]
        impl TickwireClient {
            /// A client for the server at `url` (`wss://host/ws`; default:
            /// this page's host). Nothing happens before `connect`.
            #[wasm_bindgen(constructor)]
            pub fn new(
                url: ::core::option::Option<::std::string::String>,
            ) -> ::core::result::Result<TickwireClient, $crate::__private::wasm_bindgen::JsValue> {
                ::core::result::Result::Ok(Self {
                    inner: $crate::js::JsClient::new(url)?,
                })
            }

            /// Connects (reconnecting by itself after a drop) as
            /// `options.auth`, in `options.room` or with a matchmaker's
            /// `options.seatToken`. Calling it again with the same options
            /// resumes; with others it starts a new session.
            pub fn connect(
                &self,
                #[wasm_bindgen(unchecked_param_type = "TickwireConnectOptions | undefined")]
                options: $crate::__private::wasm_bindgen::JsValue,
            ) -> ::core::result::Result<(), $crate::__private::wasm_bindgen::JsValue> {
                self.inner.connect(options)
            }

            /// Sends one tick of input; its sequence number, or `undefined`
            /// while not connected (dropped).
            #[wasm_bindgen(js_name = sendInput)]
            pub fn send_input(
                &self,
                #[wasm_bindgen(unchecked_param_type = "TickwireInput")]
                input: $crate::__private::wasm_bindgen::JsValue,
            ) -> ::core::result::Result<::core::option::Option<u32>, $crate::__private::wasm_bindgen::JsValue> {
                self.inner.send_input(input)
            }

            /// Every entity of the newest snapshot, sorted by id.
            #[wasm_bindgen(unchecked_return_type = "TickwireEntity<TickwireState>[]")]
            pub fn entities(
                &self,
            ) -> ::core::result::Result<$crate::__private::wasm_bindgen::JsValue, $crate::__private::wasm_bindgen::JsValue> {
                self.inner.entities()
            }

            /// The state of entity `id`, or `undefined`: a plain object,
            /// built once and shared until a snapshot changes the entity
            /// (read-only).
            #[wasm_bindgen(unchecked_return_type = "TickwireState | undefined")]
            pub fn entity(
                &self,
                id: u32,
            ) -> ::core::result::Result<$crate::__private::wasm_bindgen::JsValue, $crate::__private::wasm_bindgen::JsValue> {
                self.inner.entity(id)
            }

            /// The states of `ids` (for example `changes.changed`), in that
            /// order, `undefined` for an unknown id: the objects `entity`
            /// returns, those not built yet built together (cheaper per
            /// state than one `entity` call each).
            #[wasm_bindgen(unchecked_return_type = "(TickwireState | undefined)[]")]
            pub fn states(
                &self,
                #[wasm_bindgen(unchecked_param_type = "Uint32Array | number[]")]
                ids: &[u32],
            ) -> ::core::result::Result<$crate::__private::wasm_bindgen::JsValue, $crate::__private::wasm_bindgen::JsValue> {
                self.inner.states(ids)
            }

            /// Calls `f` with the ids each applied snapshot added, changed
            /// and removed (arrays of ids; read states with `entity(id)`;
            /// `undefined` stops).
            #[wasm_bindgen(js_name = onSnapshot)]
            pub fn on_snapshot(
                &self,
                #[wasm_bindgen(unchecked_param_type = "((changes: TickwireChanges) => void) | undefined")]
                f: ::core::option::Option<$crate::__private::js_sys::Function>,
            ) {
                self.inner.on_snapshot(f);
            }

            /// Calls `f` with every game event, in order (`undefined` stops).
            #[wasm_bindgen(js_name = onEvent)]
            pub fn on_event(
                &self,
                #[wasm_bindgen(unchecked_param_type = "((event: TickwireEvent) => void) | undefined")]
                f: ::core::option::Option<$crate::__private::js_sys::Function>,
            ) {
                self.inner.on_event(f);
            }

            /// Calls `f` now and whenever the status changes (`undefined`
            /// stops).
            #[wasm_bindgen(js_name = onStatus)]
            pub fn on_status(
                &self,
                #[wasm_bindgen(unchecked_param_type = "((status: TickwireStatus) => void) | undefined")]
                f: ::core::option::Option<$crate::__private::js_sys::Function>,
            ) {
                self.inner.on_status(f);
            }

            /// Where the connection stands.
            #[wasm_bindgen(unchecked_return_type = "TickwireStatus")]
            pub fn status(
                &self,
            ) -> ::core::result::Result<$crate::__private::wasm_bindgen::JsValue, $crate::__private::wasm_bindgen::JsValue> {
                self.inner.status()
            }

            /// Network figures: RTT, snapshots and bytes per second…
            #[wasm_bindgen(unchecked_return_type = "TickwireStats")]
            pub fn stats(
                &self,
            ) -> ::core::result::Result<$crate::__private::wasm_bindgen::JsValue, $crate::__private::wasm_bindgen::JsValue> {
                self.inner.stats()
            }

            /// This player's client id once welcomed.
            #[wasm_bindgen(getter, js_name = clientId)]
            pub fn client_id(&self) -> ::core::option::Option<u32> {
                self.inner.client_id()
            }

            /// The transport in use (or, while reconnecting, last tried):
            /// `"webtransport"` or `"websocket"`; `undefined` before `connect`.
            #[wasm_bindgen(getter, unchecked_return_type = "\"webtransport\" | \"websocket\" | undefined")]
            pub fn transport(&self) -> ::core::option::Option<::std::string::String> {
                self.inner.transport()
            }

            /// Drops the transport as a network loss would; the client then
            /// resumes its session (same player). With
            /// `markWebTransportFailed`, WebTransport is remembered as failed
            /// first, so the session resumes over WebSocket. A testing aid.
            #[wasm_bindgen(js_name = interruptTransport)]
            #[allow(non_snake_case)]
            pub fn interrupt_transport(&self, markWebTransportFailed: ::core::option::Option<bool>) {
                self.inner.interrupt_transport(markWebTransportFailed.unwrap_or(false));
            }

            /// The newest error converting a state or event for a listener.
            #[wasm_bindgen(getter, js_name = lastError)]
            pub fn last_error(&self) -> ::core::option::Option<::std::string::String> {
                self.inner.last_error()
            }

            /// Leaves the game and stops reconnecting.
            pub fn close(&self) {
                self.inner.close();
            }
        }
    };
}

/// The `sendMessage` part of [`export_js_api!`] (with `message = …`); not a
/// public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __tickwire_send_message {
    ($message:ident) => {
        #[$crate::__private::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = $crate::__private::wasm_bindgen,
            typescript_custom_section
        )]
        const __TICKWIRE_TS_MESSAGE: &str = ::core::concat!(
            "/** A reliable message to the server (the game's `Message`). */\nexport type TickwireMessage = ",
            ::core::stringify!($message),
            ";\n",
        );

        #[$crate::__private::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = $crate::__private::wasm_bindgen,
            js_sys = $crate::__private::js_sys
        )]
        impl TickwireClient {
            /// Sends one reliable message to the server's game (in order,
            /// handled on its next tick). Throws an `Error` whose `code` is
            /// `"NotConnected"`, `"TooLarge"`, `"QueueFull"`, `"Invalid"`
            /// (not a `TickwireMessage`) or `"Encode"`.
            #[wasm_bindgen(js_name = sendMessage)]
            pub fn send_message(
                &self,
                #[wasm_bindgen(unchecked_param_type = "TickwireMessage")]
                message: $crate::__private::wasm_bindgen::JsValue,
            ) -> ::core::result::Result<(), $crate::__private::wasm_bindgen::JsValue> {
                self.inner.send_message(message)
            }
        }
    };
}
