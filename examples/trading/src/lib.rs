//! # trading: a trading floor on tickwire
//!
//! A second example game, of another kind than the arena and built only on
//! tickwire's public APIs (docs/GUIDE.md builds it step by step):
//!
//! ```text
//!  page (JS, TickwireClient) ── Order (typed reliable message) ──▶ TradingGame::on_message
//!        ▲                                                           │ fills or rejects
//!        ├── TradeEvent::Filled / Rejected (reliable, to that player) ◀┘
//!        └── snapshots: every Instrument (price, volume, trend: a seeded random
//!            walk each tick) + the player's own Portfolio (visible to its owner only)
//! ```
//!
//! These protocol types build for wasm32 (no `server` feature): the page's
//! crate (`examples/trading/web`) exports the JS API for them, and the
//! `js` feature derives their TypeScript declarations with tsify.
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use tickwire_shared::GameProtocol;

#[cfg(feature = "server")]
mod game;
#[cfg(feature = "server")]
pub use game::{Ledger, TradingGame};

/// The trading floor's wire types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trading;

impl GameProtocol for Trading {
    const NAME: &'static str = "trading";
    const VERSION: u32 = 1;
    /// Nothing happens per tick on the client's side: orders are messages.
    type Input = ();
    type EntityState = Entity;
    type Event = TradeEvent;
    type Message = Order;
}

/// A replicated entity: an instrument of the market (everyone sees it) or a
/// player's portfolio (only its owner sees it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum Entity {
    /// One line of the ticker.
    Instrument(Instrument),
    /// One player's cash and holdings.
    Portfolio(Portfolio),
}

/// One instrument of the market. Prices are in cents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct Instrument {
    /// The ticker symbol orders name, e.g. `"TICK"`.
    pub symbol: String,
    /// The last price, in cents (at least 1).
    pub price: u32,
    /// The price when the room opened, in cents (the change is from it).
    pub open: u32,
    /// Shares traded since the room opened (players' fills included).
    pub volume: u32,
    /// Where the price is heading, against its moving average.
    pub trend: Trend,
}

/// The direction of an instrument's price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum Trend {
    /// Above its moving average.
    Up,
    /// Within 0.1 % of it.
    Flat,
    /// Below it.
    Down,
}

/// A player's account. Money is in cents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct Portfolio {
    /// The owner's client id.
    pub owner: u32,
    /// The owner's name (its auth token).
    pub name: String,
    /// Cash, in cents (never negative: buying needs the cash).
    pub cash: i64,
    /// What the player holds, in the order first bought.
    pub holdings: Vec<Holding>,
}

/// Shares of one instrument in a portfolio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct Holding {
    /// The instrument's symbol.
    pub symbol: String,
    /// Shares held (more than 0).
    pub qty: u32,
    /// What they cost in total, in cents (the average price times `qty`).
    pub cost: i64,
}

/// A market order, sent by a player as a reliable game message: fills at
/// the instrument's price on the tick the server reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct Order {
    /// The instrument's symbol.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Shares, `1..=MAX_ORDER_QTY`.
    pub qty: u32,
}

/// Which way an order goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum Side {
    /// Pay cash for shares.
    Buy,
    /// Sell shares held for cash (no short selling).
    Sell,
}

/// A reliable event, sent only to the player whose order it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum TradeEvent {
    /// The order filled.
    Filled(Fill),
    /// The order was refused; nothing changed.
    Rejected {
        /// The order, as received.
        order: Order,
        /// Why.
        reason: Rejection,
    },
}

/// A filled order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct Fill {
    /// The instrument's symbol.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Shares.
    pub qty: u32,
    /// The price per share, in cents.
    pub price: u32,
    /// The tick it filled on.
    pub tick: u32,
}

/// Why an order was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum Rejection {
    /// No instrument has that symbol.
    UnknownInstrument,
    /// An order for 0 shares.
    ZeroQuantity,
    /// More shares than one order may move (or than one holding can
    /// count: `u32::MAX`).
    TooLarge {
        /// The most one order may move ([`MAX_ORDER_QTY`]).
        max: u32,
    },
    /// A buy costing more than the cash held.
    InsufficientCash {
        /// What the order costs, in cents.
        needed: i64,
        /// The cash held, in cents.
        available: i64,
    },
    /// A sell of more shares than held.
    InsufficientShares {
        /// The shares held.
        held: u32,
    },
}

/// The most shares one order may move.
pub const MAX_ORDER_QTY: u32 = 10_000;
/// Each player's cash when they join, in cents ($100,000).
pub const STARTING_CASH: i64 = 10_000_000;
/// The market: each instrument's symbol and opening price in cents.
pub const LISTINGS: [(&str, u32); 6] = [
    ("TICK", 12_000),
    ("WIRE", 4_550),
    ("QUIC", 31_025),
    ("PING", 875),
    ("LAG", 1_500),
    ("DLTA", 7_240),
];
