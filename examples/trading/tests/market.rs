//! The trading floor with tickwire's test kit: a room and its clients in
//! memory, on a virtual clock (no sockets, no sleeps, the same run every
//! time).

use std::time::Duration;

use tickwire_server::testkit::{ClientIndex, Harness, HarnessConfig};
use tickwire_shared::client::Event;
use trading::{
    Entity, Instrument, MAX_ORDER_QTY, Order, Portfolio, Rejection, STARTING_CASH, Side,
    TradeEvent, TradingGame,
};

/// The game's events client `i` received, in order.
fn events(h: &Harness<TradingGame>, i: ClientIndex) -> Vec<TradeEvent> {
    let batches = h.client(i).events.iter().filter_map(|e| match e {
        Event::Events(batch) => Some(batch.clone()),
        _ => None,
    });
    batches.flatten().collect()
}

/// The portfolios client `i` can see.
fn portfolios(h: &Harness<TradingGame>, i: ClientIndex) -> Vec<Portfolio> {
    let world = h.client(i).session.world();
    let states = world.iter().map(|(_, state)| state.clone());
    states
        .filter_map(|s| match s {
            Entity::Portfolio(p) => Some(p),
            Entity::Instrument(_) => None,
        })
        .collect()
}

/// Why an order was rejected (`None`: it filled).
fn rejection(event: &TradeEvent) -> Option<Rejection> {
    match event {
        TradeEvent::Rejected { reason, .. } => Some(reason.clone()),
        TradeEvent::Filled(_) => None,
    }
}

/// A market order.
fn order(symbol: &str, side: Side, qty: u32) -> Order {
    let symbol = symbol.to_owned();
    Order { symbol, side, qty }
}

#[test]
fn a_fill_is_private_and_a_bad_order_changes_nothing() {
    let mut h = Harness::new(TradingGame::new(7), HarnessConfig::default());
    let ann = h.connect(Some("ann"));
    let bob = h.connect(Some("bob"));
    h.run_for(Duration::from_millis(200));

    h.send_message(ann, order("TICK", Side::Buy, 25)).unwrap();
    h.send_message(ann, order("NOPE", Side::Buy, 5)).unwrap();
    h.send_message(ann, order("TICK", Side::Sell, 0)).unwrap();
    h.run_for(Duration::from_millis(200));

    // Ann's answers, in order: one fill, two typed rejections.
    let got = events(&h, ann);
    let TradeEvent::Filled(fill) = &got[0] else {
        panic!("the buy did not fill: {got:?}");
    };
    assert_eq!((fill.symbol.as_str(), fill.qty), ("TICK", 25));
    let reasons: Vec<_> = got[1..].iter().map(rejection).collect();
    assert_eq!(
        reasons,
        [
            Some(Rejection::UnknownInstrument),
            Some(Rejection::ZeroQuantity)
        ]
    );
    // Events go to the player whose order they answer, nobody else.
    assert!(events(&h, bob).is_empty());

    // Ann sees her own portfolio and only hers; Bob sees his, not Ann's.
    let mine = portfolios(&h, ann);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].cash, STARTING_CASH - 25 * i64::from(fill.price));
    assert_eq!(mine[0].holdings[0].qty, 25);
    let theirs = portfolios(&h, bob);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].name, "bob");
    assert!(theirs[0].holdings.is_empty());

    // The server's world agrees with what Ann was sent.
    let ann_id = h.client_id(ann).unwrap();
    let server = h.room().world().iter().find_map(|(_, s)| match s {
        Entity::Portfolio(p) if p.owner == ann_id => Some(p.clone()),
        _ => None,
    });
    assert_eq!(server.as_ref(), Some(&mine[0]));
    assert!(h.client(ann).mismatches.is_empty());
}

#[test]
fn orders_stay_within_cash_shares_and_size() {
    let mut h = Harness::new(TradingGame::new(3), HarnessConfig::default());
    let ann = h.connect(Some("ann"));
    h.run_for(Duration::from_millis(100));
    h.send_message(ann, order("PING", Side::Buy, 40)).unwrap();
    h.send_message(ann, order("PING", Side::Sell, 41)).unwrap();
    h.send_message(ann, order("QUIC", Side::Buy, MAX_ORDER_QTY))
        .unwrap();
    h.send_message(ann, order("PING", Side::Buy, MAX_ORDER_QTY + 1))
        .unwrap();
    h.send_message(ann, order("PING", Side::Sell, 40)).unwrap();
    h.run_for(Duration::from_millis(100));

    let got = events(&h, ann);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(matches!(&got[0], TradeEvent::Filled(f) if f.qty == 40));
    let reason = rejection;
    assert_eq!(
        reason(&got[1]),
        Some(Rejection::InsufficientShares { held: 40 })
    );
    assert!(matches!(
        reason(&got[2]),
        Some(Rejection::InsufficientCash { available, .. }) if available < STARTING_CASH
    ));
    assert_eq!(
        reason(&got[3]),
        Some(Rejection::TooLarge { max: MAX_ORDER_QTY })
    );
    assert!(matches!(&got[4], TradeEvent::Filled(f) if f.side == Side::Sell));
    // Sold out: no holding left, and the cash moved by the two fills only.
    let mine = &portfolios(&h, ann)[0];
    assert!(mine.holdings.is_empty());
    let (TradeEvent::Filled(buy), TradeEvent::Filled(sell)) = (&got[0], &got[4]) else {
        unreachable!()
    };
    let moved = 40 * (i64::from(sell.price) - i64::from(buy.price));
    assert_eq!(mine.cash, STARTING_CASH + moved);
}

/// The ticker after `ticks` ticks of a market seeded with `seed`.
fn ticker_after(seed: u64, ticks: usize) -> Vec<Instrument> {
    let mut h = Harness::new(TradingGame::new(seed), HarnessConfig::default());
    let ann = h.connect(Some("ann"));
    for _ in 0..ticks {
        h.step();
    }
    let world = h.client(ann).session.world();
    let states = world.iter().map(|(_, state)| state.clone());
    states
        .filter_map(|s| match s {
            Entity::Instrument(i) => Some(i),
            Entity::Portfolio(_) => None,
        })
        .collect()
}

#[test]
fn one_seed_one_market() {
    let a = ticker_after(11, 300);
    assert_eq!(a.len(), trading::LISTINGS.len());
    assert_eq!(a, ticker_after(11, 300));
    assert_ne!(a, ticker_after(12, 300));
    // The prices walked, and the market traded.
    assert!(a.iter().any(|i| i.price != i.open));
    assert!(a.iter().all(|i| i.volume > 0 && i.price > 0));
}
