//! The deterministic room-and-clients harness (`tickwire_server::testkit`):
//! a property test over random play on bad networks, and rules of the room
//! and the session that used to be tested only through sockets.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tickwire_server::testkit::{Harness, HarnessConfig};
use tickwire_server::world::{EntityKey, World};
use tickwire_server::{
    AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, ServerConfig, Target,
};
use tickwire_shared::client::Event;
use tickwire_shared::conditioner::ConditionerConfig;
use tickwire_shared::{CloseCode, GameProtocol, NetId, RejectCode};

struct Proto;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Thing {
    owner: u32,
    x: i32,
    inputs: u32,
    label: String,
}

impl GameProtocol for Proto {
    const NAME: &'static str = "harness";
    const VERSION: u32 = 1;
    /// A unique id per input.
    type Input = u32;
    type EntityState = Thing;
    type Event = String;
    type Message = ();
}

/// Players move with each input; crates appear, move and vanish on a
/// schedule; a client sees its own entity and those whose `x` is not
/// congruent to its id mod 3 (so views change as things move).
#[derive(Default)]
struct Play {
    players: HashMap<ClientId, EntityKey>,
    crates: Vec<EntityKey>,
    /// How many times each (client, input id) was applied.
    applied: HashMap<(ClientId, u32), u32>,
    /// No spatial index: `visible` declines, so `can_see` is asked about
    /// every entity (the room's other path to a view).
    no_index: bool,
}

impl Game for Play {
    type Protocol = Proto;
    type User = ();
    type View = ClientId;

    fn on_auth(&mut self, token: Option<&str>) -> Result<(), AuthError> {
        match token {
            Some("banned") => Err(AuthError::failed("banned here")),
            _ => Ok(()),
        }
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, (): ()) {
        let tick = ctx.tick();
        let key = ctx.world.spawn(
            tick,
            Thing {
                owner: client,
                x: 0,
                inputs: 0,
                label: format!("p{client}"),
            },
        );
        self.players.insert(client, key);
        ctx.send(Target::All, format!("{client} joined"));
    }

    fn on_input(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        client: ClientId,
        input: u32,
        _meta: InputMeta,
    ) {
        *self.applied.entry((client, input)).or_default() += 1;
        if let Some(t) = self
            .players
            .get(&client)
            .and_then(|k| ctx.world.get_mut(*k))
        {
            t.x += 1;
            t.inputs += 1;
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, _dt: f32) {
        let tick = ctx.tick();
        if tick.is_multiple_of(7) {
            let tick = ctx.tick();
            let key = ctx.world.spawn(
                tick,
                Thing {
                    owner: 0,
                    x: (tick % 13) as i32,
                    inputs: 0,
                    label: String::new(),
                },
            );
            self.crates.push(key);
        }
        if tick.is_multiple_of(11) && self.crates.len() > 3 {
            let key = self.crates.remove(0);
            let tick = ctx.tick();
            ctx.world.despawn(tick, key);
        }
        for (k, key) in self.crates.iter().enumerate() {
            if (tick as usize + k).is_multiple_of(5)
                && let Some(t) = ctx.world.get_mut(*key)
            {
                t.x += 1;
            }
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, _why: LeaveReason) {
        if let Some(key) = self.players.remove(&client) {
            let tick = ctx.tick();
            ctx.world.despawn(tick, key);
        }
    }

    fn view(&self, _world: &World<Thing>, client: ClientId) -> Option<ClientId> {
        Some(client)
    }

    /// A spatial index would name the entities near the client; this one
    /// names every entity, in reverse order, and twice: the room must sort,
    /// dedup and filter them exactly with `can_see`.
    fn visible(&self, world: &World<Thing>, _view: &ClientId, out: &mut Vec<NetId>) -> bool {
        if self.no_index {
            return false;
        }
        let ids: Vec<NetId> = world.iter_by_net_id().map(|(id, _)| id).collect();
        out.extend(ids.iter().rev());
        out.extend(ids.iter());
        true
    }

    fn can_see(view: &ClientId, _id: NetId, state: &Thing) -> bool {
        state.owner == *view || state.x.rem_euclid(3) != (*view % 3) as i32
    }
}

fn harness(link: ConditionerConfig, seed: u64) -> Harness<Play> {
    harness_with(link, seed, None, false)
}

/// [`harness`] with each client's byte budget (the harness then checks
/// that every state a client holds is one the server had within
/// `budget_max_wait`, never going back, and that nothing in view waits
/// longer), and without the game's spatial index when `no_index`.
fn harness_with(
    link: ConditionerConfig,
    seed: u64,
    budget: Option<u32>,
    no_index: bool,
) -> Harness<Play> {
    let server = ServerConfig::default()
        .with_tick_rate(60)
        .with_snapshot_interval(1)
        .with_resume_grace(Duration::from_secs(5))
        .with_client_bytes_per_sec(budget);
    Harness::new(
        Play {
            no_index,
            ..Play::default()
        },
        HarnessConfig::default()
            .with_server(server)
            .with_link(link)
            .with_seed(seed),
    )
}

/// No input was applied twice, every acknowledged input was applied exactly
/// once, and every applied snapshot matched the server's view of its tick.
fn check_invariants(h: &Harness<Play>) -> Result<(), TestCaseError> {
    let applied = &h.room().game().applied;
    for (&(client, input), &n) in applied {
        prop_assert_eq!(
            n,
            1,
            "client {} input {} applied {} times",
            client,
            input,
            n
        );
    }
    for (i, c) in h.clients().iter().enumerate() {
        prop_assert!(
            c.mismatches.is_empty(),
            "client {}: {} mismatches, first: {:?}",
            i,
            c.mismatches.len(),
            c.mismatches.first()
        );
        let Some(id) = h.client_id(i) else { continue };
        for input in &c.acknowledged {
            prop_assert_eq!(
                applied.get(&(id, *input)).copied(),
                Some(1),
                "client {} input {} was acknowledged but not applied once",
                i,
                input
            );
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Action {
    Input,
    Drop,
    Nothing,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => Just(Action::Input),
        1 => Just(Action::Drop),
        10 => Just(Action::Nothing),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random play on a bad network: loss, duplication, reordering, delay,
    /// dropped connections and resumes, late joiners; in half the cases
    /// with a byte budget of 1.5 KB/s per client, and in half without the
    /// game's spatial index.
    #[test]
    fn every_client_matches_the_server_and_inputs_apply_exactly_once(
        seed in any::<u64>(),
        budget in prop_oneof![Just(None), Just(Some(1_500u32))],
        no_index in any::<bool>(),
        loss in 0.0f64..0.25,
        duplicate in 0.0f64..0.1,
        reorder in 0.0f64..0.3,
        latency_ms in 0u64..80,
        jitter_ms in 0u64..15,
        joins in proptest::collection::vec(0usize..150, 2..5),
        actions in proptest::collection::vec(action(), 600),
    ) {
        let link = ConditionerConfig::perfect()
            .with_latency(Duration::from_millis(latency_ms))
            .with_jitter(Duration::from_millis(jitter_ms))
            .with_uniform_loss(loss)
            .with_duplicate(duplicate)
            .with_reorder(reorder);
        let mut h = harness_with(link, seed, budget, no_index);
        let mut next_input = 1u32;
        let mut down_until: HashMap<usize, usize> = HashMap::new();
        let mut clients: Vec<usize> = Vec::new();
        for tick in 0..300usize {
            for (k, &at) in joins.iter().enumerate() {
                if at == tick {
                    clients.push(h.connect(Some(&format!("c{k}"))));
                }
            }
            for (slot, &i) in clients.iter().enumerate() {
                if let Some(&until) = down_until.get(&i) {
                    if tick >= until {
                        down_until.remove(&i);
                        h.resume(i);
                    }
                    continue;
                }
                match actions[(tick * 2 + slot) % actions.len()] {
                    Action::Input if h.input(i, next_input).is_some() => next_input += 1,
                    Action::Drop if h.client(i).session.is_established() => {
                        h.drop_connection(i);
                        down_until.insert(i, tick + 5 + slot * 7);
                    }
                    _ => {}
                }
            }
            h.step();
        }
        // Resume whoever is still down, and let everything in flight land.
        let down: Vec<usize> = down_until.keys().copied().collect();
        for i in down {
            h.resume(i);
        }
        h.run_for(Duration::from_secs(2));
        check_invariants(&h)?;
        for (i, c) in h.clients().iter().enumerate() {
            prop_assert!(c.session.is_established(), "client {} ended: {:?}", i, c.events.last());
            prop_assert!(c.checked > 20, "client {} checked only {} snapshots", i, c.checked);
        }
        let acked: usize = h.clients().iter().map(|c| c.acknowledged.len()).sum();
        prop_assert!(acked > 0, "some inputs were acknowledged");
    }
}

/// The double-apply bug: the server applied inputs, their ack was lost with
/// the connection, and the client resumed. Input sequences restart on every
/// connection (PROTOCOL.md §7), so the client must not resend the old
/// connection's inputs under their old numbers: the server would take them as
/// new and apply them a second time.
#[test]
fn a_resumed_session_never_applies_an_input_twice() {
    let mut h = harness(
        ConditionerConfig::perfect().with_latency(Duration::from_millis(40)),
        7,
    );
    let a = h.connect(Some("a"));
    h.run_for(Duration::from_millis(300));
    assert!(h.client(a).session.is_established());
    for k in 1..=5 {
        h.input(a, k);
        h.step();
    }
    // The inputs reach the server (40 ms) and are applied; the snapshots
    // that acknowledge them are still on their way when the link drops.
    h.run_for(Duration::from_millis(45));
    assert_eq!(
        h.room().game().applied.len(),
        5,
        "the server applied all five"
    );
    assert!(
        h.client(a).session.last_input() < 5,
        "their ack has not arrived"
    );
    h.drop_connection(a);
    h.resume(a);
    h.run_for(Duration::from_millis(300));
    let resumed = h
        .client(a)
        .events
        .iter()
        .any(|e| matches!(e, Event::Welcome(w) if w.resumed));
    assert!(resumed, "{:?}", h.client(a).events);
    h.input(a, 6);
    h.run_for(Duration::from_millis(300));
    let id = h.client_id(a).expect("welcomed");
    for k in 1..=6 {
        assert_eq!(h.room().game().applied.get(&(id, k)), Some(&1), "input {k}");
    }
    let me = h
        .client(a)
        .session
        .world()
        .iter()
        .find(|(_, t)| t.owner == id)
        .map(|(_, t)| t.inputs);
    assert_eq!(me, Some(6), "six inputs moved the player, not more");
    assert!(
        h.client(a).mismatches.is_empty(),
        "{:?}",
        h.client(a).mismatches
    );
}

fn closed(h: &Harness<Play>, i: usize) -> Option<tickwire_shared::client::Closed> {
    h.client(i).events.iter().find_map(|e| match e {
        Event::Closed(c) => Some(c.clone()),
        _ => None,
    })
}

#[test]
fn auth_failure_is_a_reject_that_may_not_be_retried() {
    let mut h = harness(ConditionerConfig::perfect(), 1);
    let b = h.connect(Some("banned"));
    h.run_for(Duration::from_millis(100));
    let c = closed(&h, b).expect("the hello was refused");
    assert_eq!(
        (c.code, c.reject, c.retry),
        (CloseCode::Rejected, Some(RejectCode::AuthFailed), false)
    );
    assert_eq!(c.reason, "banned here");
}

#[test]
fn a_full_room_rejects_and_a_leave_frees_the_seat() {
    let server = ServerConfig::default()
        .with_tick_rate(60)
        .with_max_players_per_room(2);
    let mut h = Harness::new(
        Play::default(),
        HarnessConfig::default().with_server(server),
    );
    let a = h.connect(Some("a"));
    let b = h.connect(Some("b"));
    h.run_for(Duration::from_millis(100));
    let c = h.connect(Some("c"));
    h.run_for(Duration::from_millis(100));
    let refused = closed(&h, c).expect("c was refused");
    assert_eq!(
        (refused.reject, refused.retry),
        (Some(RejectCode::RoomFull), true)
    );
    let a_id = h.client_id(a).expect("a was welcomed");
    assert!(
        h.client(b)
            .session
            .world()
            .iter()
            .any(|(_, t)| t.owner == a_id)
    );
    h.leave(a);
    h.run_for(Duration::from_millis(100));
    let left = closed(&h, a).expect("a's session ended");
    assert_eq!(
        (left.code, left.retry, left.local),
        (CloseCode::Normal, false, false)
    );
    let d = h.connect(Some("d"));
    h.run_for(Duration::from_millis(100));
    assert!(h.client(d).session.is_established());
    assert!(h.client(b).session.is_established());
    // a left: b no longer sees it.
    assert!(
        h.client(b)
            .session
            .world()
            .iter()
            .all(|(_, t)| t.owner != a_id)
    );
}

#[test]
fn a_detached_client_expires_after_the_grace_period() {
    let server = ServerConfig::default()
        .with_tick_rate(60)
        .with_resume_grace(Duration::from_millis(500));
    let mut h = Harness::new(
        Play::default(),
        HarnessConfig::default().with_server(server),
    );
    let a = h.connect(Some("a"));
    let b = h.connect(Some("b"));
    h.run_for(Duration::from_millis(100));
    let a_id = h.client_id(a).expect("welcomed");
    h.drop_connection(a);
    h.run_for(Duration::from_millis(300));
    let sees_a = |h: &Harness<Play>| {
        h.client(b)
            .session
            .world()
            .iter()
            .any(|(_, t)| t.owner == a_id)
    };
    assert!(sees_a(&h), "kept during the grace period");
    h.run_for(Duration::from_millis(400));
    assert!(!sees_a(&h), "gone after the grace period");
    // Too late to resume: a fresh session with a new id.
    h.resume(a);
    h.run_for(Duration::from_millis(100));
    let w = h.client(a).session.welcome().expect("welcomed again");
    assert!(!w.resumed && w.client_id != a_id, "{w:?}");
}
