//! # trading-web: the trading floor's JS/TS API
//!
//! The only Rust of the trading page: the generic `TickwireClient` class
//! of `tickwire-web`, exported for the game's protocol. Everything else is
//! JavaScript (`www/app.js`, type-checked against the generated
//! `pkg/trading_web.d.ts` with `// @ts-check`).
#![warn(missing_docs)]

tickwire_web::export_js_api!(
    trading::Trading,
    input = never,
    state = Entity,
    event = TradeEvent,
    message = Order
);
