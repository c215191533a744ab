//! # tickwire-server: authoritative fixed-tick game servers
//!
//! A server hosts rooms; each room runs one value of your [`Game`] on a
//! drift-free tick loop, applies player inputs, and sends every client a delta
//! snapshot against the last snapshot that client acknowledged. Clients speak
//! the [`tickwire_shared`] protocol over WebSocket Secure (rustls +
//! tokio-tungstenite), on the same origin as the static files of your web
//! client, and, when [`ListenerConfig::quic_addr`] is set, over QUIC (quinn:
//! one stream for reliable messages, datagrams for snapshots). Your game
//! cannot tell the transports apart.
//!
//! ```text
//!  TLS ─▶ http (static files, /healthz, /readyz, POST /matchmake, upgrade + Origin check) ─▶ session (one task per connection)
//!  QUIC (ALPN tickwire/1, Retry first) ─▶ stream + datagrams ────────────────▶ session
//!                                                                          │ bounded channel        ▲ outbox (bounded,
//!                                                                          ▼                        │ snapshots replaceable)
//!                                                         room task ─▶ Room::tick(now): inputs ─▶ Game hooks ─▶ replication
//!  lifecycle supervisor: starting ─▶ ready ─▶ draining (SIGTERM, drain()) ─▶ stopped; LifecycleHooks
//! ```
//!
//! ## Tutorial: a complete game
//!
//! Players join, each gets a dot, and the arrow keys (sent as `(dx, dy)`,
//! one input per tick) move it. Everyone sees every dot. Chat lines travel
//! as reliable game messages (`ClientSession::send_message` on the client,
//! [`Game::on_message`] here) and come back to everyone as events.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use tickwire_server::{
//!     AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, Server, ServerConfig, Target,
//! };
//! use tickwire_server::world::EntityKey;
//! use tickwire_shared::GameProtocol;
//! use std::collections::HashMap;
//!
//! struct Dots;
//! impl GameProtocol for Dots {
//!     const NAME: &'static str = "dots";
//!     const VERSION: u32 = 1;
//!     type Input = (i8, i8);
//!     type EntityState = Dot;
//!     type Event = String;
//!     type Message = String;
//! }
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! struct Dot { x: i32, y: i32 }
//!
//! #[derive(Default)]
//! struct DotsGame { players: HashMap<ClientId, EntityKey> }
//!
//! impl Game for DotsGame {
//!     type Protocol = Dots;
//!     type User = String;
//!     type View = ();
//!
//!     fn on_auth(&mut self, token: Option<&str>) -> Result<String, AuthError> {
//!         token.map(str::to_owned).ok_or_else(|| AuthError::failed("send a name"))
//!     }
//!     fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, name: String) {
//!         let key = ctx.world.spawn(ctx.tick(), Dot { x: 0, y: 0 });
//!         self.players.insert(client, key);
//!         ctx.send(Target::All, format!("{name} joined"));
//!     }
//!     fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, (dx, dy): (i8, i8), _: InputMeta) {
//!         if let Some(dot) = self.players.get(&client).and_then(|k| ctx.world.get_mut(*k)) {
//!             dot.x += i32::from(dx.clamp(-1, 1));
//!             dot.y += i32::from(dy.clamp(-1, 1));
//!         }
//!     }
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, line: String) {
//!         let line: String = line.chars().take(100).collect();
//!         ctx.send(Target::All, format!("{client}: {line}"));
//!     }
//!     fn on_tick(&mut self, _ctx: &mut Ctx<'_, Self>, _dt: f32) {}
//!     fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, _why: LeaveReason) {
//!         if let Some(key) = self.players.remove(&client) {
//!             ctx.world.despawn(ctx.tick(), key);
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = Server::new(ServerConfig::default(), |_room| DotsGame::default())
//!         .start()
//!         .await?;
//!     println!("open {}", server.page_url());
//!     server.run_until_signal().await;
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod budget;
mod changes;
pub mod config;
mod config_error;
pub mod console;
pub mod directory;
pub mod game;
pub mod http;
pub mod interest;
pub mod lifecycle;
pub mod matchmaking;
pub mod messages;
pub mod metrics;
pub mod outbox;
pub mod pace;
pub mod replication;
pub mod room;
pub mod room_config;
mod rooms;
pub mod rtt;
mod server;
mod session;
pub mod stats;
#[cfg(test)]
mod test_util;
pub mod testkit;
pub mod tick;
pub mod tls;
mod transport;
mod view;
pub mod world;

/// WebTransport for browsers (on the QUIC listener; see
/// [`config::QuicConfig::webtransport_path`]): the discovery document that
/// `GET /webtransport` serves.
pub mod webtransport {
    pub use crate::transport::webtransport::discovery::{Discovery, DiscoveryError, PATH};
}

pub use config::{
    ConfigError, FleetConfig, LifecycleConfig, ListenerConfig, QuicConfig, RetryPolicy,
    ServerConfig, SessionConfig, TlsMode,
};
pub use console::AdminToken;
pub use game::{AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, Target};
pub use lifecycle::{LifecycleHooks, LoggingHooks, NodeState, NodeStatus};
pub use matchmaking::{FleetSecret, MatchmakeAuth, MatchmakeRequest, Ticket};
pub use messages::{MessageError, MessageLimits};
pub use room_config::{RoomConfig, RoomConfigError, RoomSpec};
pub use server::{RunningServer, Server, ServerError, Signals, wait_for_signal};
pub use stats::ServerStats;
pub use tickwire_shared;
