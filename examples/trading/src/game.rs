//! The server's side: [`TradingGame`], the market and the accounts of one
//! room, and [`Ledger`], a read-only mirror of the accounts for operators
//! and tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tickwire_server::world::{EntityKey, World};
use tickwire_server::{AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, Target};
use tickwire_shared::NetId;

use crate::{
    Entity, Fill, Holding, Instrument, LISTINGS, MAX_ORDER_QTY, Order, Portfolio, Rejection,
    STARTING_CASH, Side, TradeEvent, Trading, Trend,
};

/// The longest player name kept (longer auth tokens are cut).
const MAX_NAME_CHARS: usize = 24;

/// One instrument's entity and what the walk keeps off the wire.
struct Listing {
    key: EntityKey,
    /// The moving average of the price, in cents × 256.
    average: i64,
    /// The walk's current drift, in basis points per tick.
    drift: i64,
}

/// The market and the accounts of one room.
///
/// Every tick each price takes a step of a seeded random walk (a drift that
/// changes now and then, plus noise of up to ±0.15 %), so one seed replays
/// the same market. Orders fill at the current price.
pub struct TradingGame {
    rng: Xoshiro256PlusPlus,
    listings: Vec<Listing>,
    accounts: HashMap<ClientId, EntityKey>,
    ledger: Ledger,
}

impl TradingGame {
    /// A market whose walk starts from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            listings: Vec::new(),
            accounts: HashMap::new(),
            ledger: Ledger::default(),
        }
    }

    /// This game, mirroring its accounts into `ledger`.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = ledger;
        self
    }

    /// Fills `order` for `client`, or says why not (nothing changes then).
    fn execute(
        &self,
        world: &mut World<Entity>,
        client: ClientId,
        order: &Order,
        tick: u32,
    ) -> Result<Fill, Rejection> {
        if order.qty == 0 {
            return Err(Rejection::ZeroQuantity);
        }
        if order.qty > MAX_ORDER_QTY {
            return Err(Rejection::TooLarge { max: MAX_ORDER_QTY });
        }
        let found = self.listings.iter().find_map(|l| match world.get(l.key) {
            Some(Entity::Instrument(i)) if i.symbol == order.symbol => Some((l.key, i.price)),
            _ => None,
        });
        let Some((instrument, price)) = found else {
            return Err(Rejection::UnknownInstrument);
        };
        let notional = i64::from(price) * i64::from(order.qty);
        let account = self.accounts.get(&client).copied();
        let Some(Entity::Portfolio(p)) = account.and_then(|a| world.get_mut(a)) else {
            // Not reachable: every client in the room has an account.
            return Err(Rejection::UnknownInstrument);
        };
        let held = p.holdings.iter().position(|h| h.symbol == order.symbol);
        match order.side {
            Side::Buy if notional > p.cash => {
                return Err(Rejection::InsufficientCash {
                    needed: notional,
                    available: p.cash,
                });
            }
            Side::Buy => {
                let total = held.map_or(Some(order.qty), |i| {
                    p.holdings[i].qty.checked_add(order.qty)
                });
                let Some(total) = total else {
                    return Err(Rejection::TooLarge { max: MAX_ORDER_QTY });
                };
                p.cash -= notional;
                match held {
                    Some(i) => {
                        p.holdings[i].qty = total;
                        p.holdings[i].cost += notional;
                    }
                    None => p.holdings.push(Holding {
                        symbol: order.symbol.clone(),
                        qty: order.qty,
                        cost: notional,
                    }),
                }
            }
            Side::Sell => {
                let have = held.map_or(0, |i| p.holdings[i].qty);
                let Some(i) = held.filter(|_| have >= order.qty) else {
                    return Err(Rejection::InsufficientShares { held: have });
                };
                let h = &mut p.holdings[i];
                h.cost -= h.cost * i64::from(order.qty) / i64::from(h.qty);
                h.qty -= order.qty;
                p.cash += notional;
                if h.qty == 0 {
                    p.holdings.remove(i);
                }
            }
        }
        let mirror = p.clone();
        if let Some(Entity::Instrument(i)) = world.get_mut(instrument) {
            i.volume = i.volume.saturating_add(order.qty);
        }
        self.ledger.set(client, mirror);
        Ok(Fill {
            symbol: order.symbol.clone(),
            side: order.side,
            qty: order.qty,
            price,
            tick,
        })
    }

    /// A uniform integer in `-bound..=bound`.
    fn noise(&mut self, bound: i64) -> i64 {
        let span = u64::try_from(2 * bound + 1).unwrap_or(1);
        i64::try_from(self.rng.next_u64() % span).unwrap_or(0) - bound
    }
}

impl Game for TradingGame {
    type Protocol = Trading;
    /// The player's name.
    type User = String;
    /// The client a snapshot is for.
    type View = ClientId;

    fn on_auth(&mut self, token: Option<&str>) -> Result<String, AuthError> {
        let name: String = token
            .unwrap_or("trader")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect();
        if name.trim().is_empty() {
            return Err(AuthError::failed("a name is needed"));
        }
        Ok(name)
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, name: String) {
        let portfolio = Portfolio {
            owner: client,
            name,
            cash: STARTING_CASH,
            holdings: Vec::new(),
        };
        self.ledger.set(client, portfolio.clone());
        let key = ctx.world.spawn(ctx.tick(), Entity::Portfolio(portfolio));
        self.accounts.insert(client, key);
    }

    fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): (), _: InputMeta) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, order: Order) {
        let tick = ctx.tick();
        let event = match self.execute(ctx.world, client, &order, tick) {
            Ok(fill) => TradeEvent::Filled(fill),
            Err(reason) => TradeEvent::Rejected { order, reason },
        };
        ctx.send(Target::Client(client), event);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, _dt: f32) {
        if self.listings.is_empty() {
            for (symbol, price) in LISTINGS {
                let instrument = Instrument {
                    symbol: symbol.to_owned(),
                    price,
                    open: price,
                    volume: 0,
                    trend: Trend::Flat,
                };
                let key = ctx.world.spawn(ctx.tick(), Entity::Instrument(instrument));
                let average = i64::from(price) << 8;
                self.listings.push(Listing {
                    key,
                    average,
                    drift: 0,
                });
            }
        }
        for n in 0..self.listings.len() {
            if self.rng.next_u32().is_multiple_of(64) {
                self.listings[n].drift = self.noise(4);
            }
            let step = self.listings[n].drift + self.noise(15);
            let traded = u32::try_from(self.noise(20).max(0)).unwrap_or(0);
            let listing = &mut self.listings[n];
            if let Some(Entity::Instrument(i)) = ctx.world.get_mut(listing.key) {
                let price = i64::from(i.price);
                let next = (price + price * step / 10_000).clamp(1, 1_000_000_000);
                i.price = u32::try_from(next).unwrap_or(i.price);
                i.volume = i.volume.saturating_add(traded);
                listing.average += ((next << 8) - listing.average) / 16;
                let band = listing.average / 1000;
                i.trend = match (next << 8) - listing.average {
                    d if d > band => Trend::Up,
                    d if d < -band => Trend::Down,
                    _ => Trend::Flat,
                };
            }
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, _: LeaveReason) {
        if let Some(key) = self.accounts.remove(&client) {
            ctx.world.despawn(ctx.tick(), key);
        }
        self.ledger.remove(client);
    }

    fn view(&self, _: &World<Entity>, client: ClientId) -> Option<ClientId> {
        Some(client)
    }

    /// Instruments are public; a portfolio is its owner's alone.
    fn can_see(viewer: &ClientId, _: NetId, state: &Entity) -> bool {
        match state {
            Entity::Instrument(_) => true,
            Entity::Portfolio(p) => p.owner == *viewer,
        }
    }
}

/// A read-only mirror of the accounts of the rooms that share it (cloning
/// shares it), updated on every join, fill and leave: what an operator's
/// console or a test reads about the server's side.
#[derive(Clone, Debug, Default)]
pub struct Ledger(Arc<Mutex<BTreeMap<ClientId, Portfolio>>>);

impl Ledger {
    /// The account of `client`, while it is in a room.
    #[must_use]
    pub fn get(&self, client: ClientId) -> Option<Portfolio> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&client)
            .cloned()
    }

    /// Every account, by client id.
    #[must_use]
    pub fn accounts(&self) -> BTreeMap<ClientId, Portfolio> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, client: ClientId, portfolio: Portfolio) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(client, portfolio);
    }

    fn remove(&self, client: ClientId) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&client);
    }
}
