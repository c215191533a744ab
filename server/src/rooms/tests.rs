use std::collections::BTreeMap;

use tickwire_shared::GameProtocol;

use super::*;
use crate::game::{AuthError, Ctx};

struct Proto;
impl GameProtocol for Proto {
    const NAME: &'static str = "rooms-test";
    const VERSION: u32 = 1;
    type Input = u8;
    type EntityState = u8;
    type Event = u8;
    type Message = ();
}

struct Nop;
impl Game for Nop {
    type Protocol = Proto;
    type User = ();
    type View = ();
    fn on_auth(&mut self, token: Option<&str>) -> Result<(), AuthError> {
        match token {
            Some("bad") => Err(AuthError::failed("refused")),
            _ => Ok(()),
        }
    }
    fn on_join(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): ()) {}
    fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: u8, _: crate::InputMeta) {}
    fn on_tick(&mut self, _: &mut Ctx<'_, Self>, _: f32) {}
    fn on_leave(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: LeaveReason) {}
}

fn rooms(per_room: usize, max_rooms: usize) -> Arc<Rooms<Nop>> {
    let config = ServerConfig::default()
        .with_max_players_per_room(per_room)
        .with_max_rooms(max_rooms);
    rooms_with(config, Arc::new(crate::directory::MemoryDirectory::new()))
}

fn rooms_with(config: ServerConfig, directory: Arc<dyn Directory>) -> Arc<Rooms<Nop>> {
    Rooms::new(
        Arc::new(config),
        Box::new(|_| Nop),
        Arc::new(StatsCollector::new(std::time::Instant::now())),
        directory,
        None,
        None,
    )
}

fn hello(room: Option<&str>, auth: Option<&str>) -> Hello {
    let mut h = Hello::new(Proto::PROTOCOL_HASH);
    h.room = room.map(str::to_owned);
    h.auth_token = auth.map(str::to_owned);
    h
}

type Join = Result<(Joined, RoomLink<Nop>, Arc<Outbox>), Rejection>;
type Joins = Vec<Join>;

/// Client `id` joins with `hello` (its resume token derived from `id`),
/// with a fresh outbox.
async fn join_as<G: Game>(
    rooms: &Arc<Rooms<G>>,
    id: u32,
    hello: Hello,
) -> Result<(Joined, RoomLink<G>, Arc<Outbox>), Rejection> {
    let outbox = Arc::new(Outbox::new(16, 16));
    let mut token = [0u8; 16];
    token[..4].copy_from_slice(&id.to_le_bytes());
    rooms
        .join(
            hello,
            id,
            ResumeToken::from_random(token),
            Arc::clone(&outbox),
            Arc::default(),
            AuthRequest::new(([127, 0, 0, 1], 9).into(), "test"),
        )
        .await
        .map(|(j, link)| (j, link, outbox))
}

/// `n` joins started together (all of them pick a room before any room
/// task runs: the test runtime has one thread), awaited together.
async fn burst(rooms: &Arc<Rooms<Nop>>, n: u32, first_id: u32, h: &Hello) -> Joins {
    let mut tasks = Vec::new();
    for i in 0..n {
        let rooms = Arc::clone(rooms);
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            join_as(&rooms, first_id + i, h).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("join task"));
    }
    out
}

fn per_room(joins: &Joins) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (j, _, _) in joins.iter().flatten() {
        *m.entry(j.welcome.room.clone()).or_default() += 1;
    }
    m
}

fn refusals(joins: &Joins) -> Vec<String> {
    joins
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|r| format!("{:?}: {}", r.code, r.message))
        .collect()
}

#[tokio::test]
async fn a_burst_of_200_unnamed_joins_fills_rooms_of_16_without_refusals() {
    let rooms = rooms(16, 1000);
    let joins = burst(&rooms, 200, 1, &hello(None, None)).await;
    let refused = refusals(&joins);
    assert!(
        refused.is_empty(),
        "{} of 200 refused, first: {:?}",
        refused.len(),
        refused.first()
    );
    let mut sizes: Vec<usize> = per_room(&joins).into_values().collect();
    sizes.sort_unstable();
    let mut want = vec![16; 12];
    want.insert(0, 8);
    assert_eq!(sizes, want, "12 full rooms of 16 and one of 8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_burst_of_200_unnamed_joins_fills_rooms_of_16_without_refusals() {
    let rooms = rooms(16, 1000);
    let joins = burst(&rooms, 200, 1, &hello(None, None)).await;
    assert_eq!(refusals(&joins), Vec::<String>::new());
    let mut sizes: Vec<usize> = per_room(&joins).into_values().collect();
    sizes.sort_unstable();
    assert_eq!(sizes.iter().sum::<usize>(), 200);
    assert_eq!(sizes.len(), 13, "rooms: {sizes:?}");
    assert!(sizes[1..].iter().all(|&n| n == 16), "rooms: {sizes:?}");
}

/// Players plus held seats of room `name`, once the room tasks have
/// caught up (bounded: the test runtime has one thread, so yielding lets
/// them run).
async fn settled_occupancy(rooms: &Rooms<Nop>, name: &str) -> Option<(usize, usize)> {
    for _ in 0..1000 {
        let seen = {
            let inner = rooms.lock();
            inner.rooms.get(name).map(|h| {
                (
                    h.players.load(Ordering::Relaxed),
                    h.reserved.load(Ordering::Relaxed),
                )
            })
        };
        if seen.is_none_or(|(_, held)| held == 0) {
            return seen;
        }
        tokio::task::yield_now().await;
    }
    panic!("seats still held in {name}");
}

/// Waits until room `name` has `want` players, for at most 10 s. A leave
/// is a game message, which the room reads at its next tick: a count of
/// yields could run out before that tick on a fast machine, so this waits
/// on the clock.
async fn until_players(rooms: &Rooms<Nop>, name: &str, want: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if settled_occupancy(rooms, name).await.map(|(p, _)| p) == Some(want) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("{name} never had {want} players in 10 s");
}

fn code(r: &Join) -> RejectCode {
    r.as_ref()
        .err()
        .map_or(RejectCode::InvalidHello, |e| e.code)
}

/// Inputs travel on the message channel, which the room reads at tick
/// time: a burst of them wakes the room task not once, and the room
/// still applies them (the next snapshot acknowledges the last one).
#[tokio::test]
async fn inputs_never_wake_the_room_and_are_applied_at_the_tick() {
    let rooms = rooms(4, 1);
    let joined = burst(&rooms, 1, 1, &hello(None, None)).await;
    let (j, link, outbox) = joined.into_iter().next().expect("one").expect("joined");
    let client = j.welcome.client_id;
    let _ = rooms.stats().take(std::time::Instant::now());
    for seq in 1..=100u32 {
        let msg = ClientMessage::Inputs(tickwire_shared::Inputs {
            first_seq: seq,
            frames: vec![tickwire_shared::InputFrame {
                tick: 0,
                input: 1u8,
            }],
        });
        link.messages
            .send(RoomCommand::Message { client, msg })
            .await
            .expect("room open");
    }
    // Wait (bounded) for a snapshot acknowledging an input.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let last_input = loop {
        let batch = outbox.take();
        if let Some(bytes) = batch.snapshot {
            let limits = tickwire_shared::Limits::default();
            if let Ok(tickwire_shared::ServerMessage::<()>::Snapshot(f)) =
                tickwire_shared::ServerMessage::decode(&bytes, &limits)
                && f.header.last_input > 0
            {
                break f.header.last_input;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no input was applied");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert!(last_input >= 1);
    let stats = rooms.stats().take(std::time::Instant::now());
    assert!(stats.ticks() >= 1);
    assert_eq!(stats.room_wakeups, 0, "100 inputs woke the room");
}

#[tokio::test]
async fn seats_follow_rejections_leaves_and_resumes() {
    // One room of 4 on the whole server.
    let rooms = rooms(4, 1);
    // Auth failures hold no seat once decided (while undecided, they
    // do: a fifth join in this burst would get `ServerFull`).
    for round in 0..3 {
        let bad = burst(&rooms, 4, 100 + 10 * round, &hello(None, Some("bad"))).await;
        assert!(bad.iter().all(|r| code(r) == RejectCode::AuthFailed));
        assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((0, 0)));
    }

    let mut joined = burst(&rooms, 4, 1, &hello(None, None)).await;
    assert!(refusals(&joined).is_empty(), "{:?}", refusals(&joined));
    assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));

    // The server is full: an unnamed join is `ServerFull`, a join naming
    // the full room `RoomFull`.
    let more = burst(&rooms, 3, 10, &hello(None, None)).await;
    assert!(more.iter().all(|r| code(r) == RejectCode::ServerFull));
    let named = burst(&rooms, 1, 20, &hello(Some("room-1"), None)).await;
    assert_eq!(code(&named[0]), RejectCode::RoomFull);
    assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));

    // A dropped client keeps its seat through its resume grace, and a
    // resume (with no room named) takes that seat, not a new one.
    let (j, tx, outbox) = joined.pop().expect("4 joined").expect("joined");
    tx.control
        .send(RoomCommand::Disconnected {
            client: j.welcome.client_id,
            outbox,
            reason: LeaveReason::TimedOut,
        })
        .await
        .expect("room open");
    assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));
    let mut resume = hello(None, None);
    resume.resume_token = Some(j.welcome.resume_token);
    let resumed = burst(&rooms, 1, 30, &resume).await;
    let (r, _, _) = resumed[0].as_ref().expect("resumed");
    assert!(r.welcome.resumed);
    assert_eq!(r.welcome.client_id, j.welcome.client_id);
    assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));

    // A leave frees its seat for the next unnamed join.
    let (j, tx, _) = joined.pop().expect("3 left").expect("joined");
    tx.messages
        .send(RoomCommand::Message {
            client: j.welcome.client_id,
            msg: ClientMessage::Leave,
        })
        .await
        .expect("room open");
    until_players(&rooms, "room-1", 3).await;
    let next = burst(&rooms, 2, 40, &hello(None, None)).await;
    assert_eq!(code(&next[1]), RejectCode::ServerFull);
    let (n, _, _) = next[0].as_ref().expect("a seat was free");
    assert_eq!(n.welcome.room, "room-1");
    assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));
}

mod seats {
    use std::time::Duration;

    use super::*;
    use crate::config::FleetConfig;
    use crate::directory::MemoryDirectory;
    use crate::matchmaking::FleetSecret;
    use crate::matchmaking::seat::{Seat, unix_ms_now};

    fn secret() -> FleetSecret {
        FleetSecret::new(b"0123456789abcdef-rooms".to_vec()).unwrap()
    }

    fn seat(identity: &str, room: &str, node: &str, ttl_ms: i64) -> String {
        Seat {
            identity: identity.into(),
            room: room.into(),
            mode: "ffa".into(),
            node: node.into(),
            expires_at_ms: unix_ms_now().saturating_add_signed(ttl_ms),
            seat_id: [1; 16],
        }
        .issue(&secret())
        .unwrap()
    }

    fn node(
        require: bool,
        secret: Option<FleetSecret>,
        dir: Arc<dyn Directory>,
    ) -> Arc<Rooms<Nop>> {
        let mut fleet = FleetConfig::default()
            .with_node_id("node-a")
            .with_require_seat_token(require);
        fleet.secret = secret;
        rooms_with(ServerConfig::default().with_fleet(fleet), dir)
    }

    fn seated(room: Option<&str>, token: String) -> Hello {
        let mut h = hello(room, None);
        h.seat_token = Some(token);
        h
    }

    async fn one(rooms: &Arc<Rooms<Nop>>, h: Hello) -> Join {
        burst(rooms, 1, 1, &h).await.pop().expect("one join")
    }

    #[tokio::test]
    async fn each_bad_seat_token_has_its_own_reject_code() {
        let dir = Arc::new(MemoryDirectory::new());
        let rooms = node(true, Some(secret()), dir.clone());
        let good = one(&rooms, seated(None, seat("ann", "lobby", "node-a", 30_000))).await;
        let (j, _, _) = good.as_ref().expect("a valid seat joins");
        assert_eq!(j.welcome.room, "lobby", "the token names the room");
        let lobby = dir
            .room("lobby")
            .await
            .unwrap()
            .expect("claimed before it opened");
        assert_eq!(
            (lobby.node.as_str(), lobby.mode.as_str()),
            ("node-a", "ffa")
        );
        let cases = [
            (
                seated(None, "tw1.AAAA".into()),
                RejectCode::SeatTokenInvalid,
            ),
            (
                seated(None, {
                    let other = FleetSecret::new(b"another fleet secret".to_vec()).unwrap();
                    let mut s = Seat::verify(
                        &secret(),
                        &seat("ann", "lobby", "node-a", 30_000),
                        unix_ms_now(),
                    )
                    .unwrap();
                    s.identity = "mallory".into();
                    s.issue(&other).unwrap()
                }),
                RejectCode::SeatTokenInvalid,
            ),
            (
                seated(None, seat("ann", "lobby", "node-a", -1)),
                RejectCode::SeatTokenExpired,
            ),
            (
                seated(None, seat("ann", "lobby", "node-b", 30_000)),
                RejectCode::SeatTokenWrongNode,
            ),
            (
                seated(Some("other"), seat("ann", "lobby", "node-a", 30_000)),
                RejectCode::SeatTokenWrongRoom,
            ),
            (hello(Some("lobby"), None), RejectCode::SeatTokenRequired),
            // The identity reaches the game's auth hook as its token.
            (
                seated(None, seat("bad", "lobby", "node-a", 30_000)),
                RejectCode::AuthFailed,
            ),
        ];
        for (h, want) in cases {
            let got = one(&rooms, h).await;
            assert_eq!(code(&got), want, "{:?}", got.as_ref().err());
            let message = &got.as_ref().err().unwrap().message;
            assert!(message.len() <= 256, "{message}");
        }
    }

    #[tokio::test]
    async fn without_a_secret_old_hellos_join_and_seat_tokens_are_refused() {
        let rooms = node(false, None, Arc::new(MemoryDirectory::new()));
        assert!(one(&rooms, hello(Some("lobby"), None)).await.is_ok());
        let got = one(&rooms, seated(None, seat("ann", "lobby", "node-a", 30_000))).await;
        assert_eq!(code(&got), RejectCode::SeatTokenInvalid);
        // With a secret but not required, a hello without a token still joins.
        let rooms = node(false, Some(secret()), Arc::new(MemoryDirectory::new()));
        assert!(one(&rooms, hello(Some("lobby"), None)).await.is_ok());
    }

    #[tokio::test]
    async fn room_names_held_by_other_nodes_are_not_opened_here() {
        let dir = Arc::new(MemoryDirectory::new());
        let ttl = Duration::from_secs(10);
        for name in ["taken", "room-1", "room-2"] {
            dir.create_room(&RoomInfo::new(name, "node-b"), ttl)
                .await
                .unwrap();
        }
        let rooms = node(false, None, dir.clone());
        let got = one(&rooms, hello(Some("taken"), None)).await;
        assert_eq!(code(&got), RejectCode::RoomElsewhere);
        // Unnamed joins skip the auto names other nodes hold.
        let (j, _, _) = one(&rooms, hello(None, None)).await.expect("joined");
        assert_eq!(j.welcome.room, "room-3");
        assert_eq!(dir.room("room-3").await.unwrap().unwrap().node, "node-a");
    }
}

/// Rooms with configs of their own: each ticks at its own rate (counted
/// against tokio's paused, virtual clock), admits its own number of
/// clients, and a config that cannot work refuses the join that would
/// open its room, with its typed error, while the others go on.
mod own_configs {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::RoomConfig;

    /// Counts its room's ticks and remembers the `dt` it was given.
    struct Ticking {
        ticks: Arc<AtomicU32>,
        dt_micros: Arc<AtomicU32>,
    }

    impl Game for Ticking {
        type Protocol = Proto;
        type User = ();
        type View = ();
        fn on_auth(&mut self, _: Option<&str>) -> Result<(), AuthError> {
            Ok(())
        }
        fn on_join(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): ()) {}
        fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: u8, _: crate::InputMeta) {}
        fn on_tick(&mut self, _: &mut Ctx<'_, Self>, dt: f32) {
            self.ticks.fetch_add(1, Ordering::Relaxed);
            self.dt_micros
                .store((dt * 1e6).round() as u32, Ordering::Relaxed);
        }
        fn on_leave(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: LeaveReason) {}
    }

    type Counters = Arc<Mutex<HashMap<String, (Arc<AtomicU32>, Arc<AtomicU32>)>>>;

    /// `duel`: 60 Hz, 2 clients; `lobby` (mode `ffa`): 10 Hz, 3 clients,
    /// a snapshot every 2 ticks; `broken`: tick rate 0; any other room:
    /// the default (30 Hz, 4 clients).
    fn node() -> (Arc<Rooms<Ticking>>, Counters) {
        let counters: Counters = Arc::default();
        let made = Arc::clone(&counters);
        let factory = move |name: &str| {
            let mut made = made.lock().unwrap();
            let (ticks, dt) = made.entry(name.to_owned()).or_default();
            Ticking {
                ticks: Arc::clone(ticks),
                dt_micros: Arc::clone(dt),
            }
        };
        let config = ServerConfig::default()
            .with_room(RoomConfig::default().with_tick_rate(30).with_max_clients(4))
            .with_fleet(crate::FleetConfig::default().with_mode("ffa"));
        let hook = |room: &RoomSpec<'_>, default: &RoomConfig| match (room.name, room.mode) {
            ("duel", _) => default.clone().with_tick_rate(60).with_max_clients(2),
            ("lobby", "ffa") => default
                .clone()
                .with_tick_rate(10)
                .with_snapshot_interval(2)
                .with_max_clients(3),
            ("broken", _) => default.clone().with_tick_rate(0),
            _ => default.clone(),
        };
        let rooms = Rooms::new(
            Arc::new(config),
            Box::new(factory),
            Arc::new(StatsCollector::new(std::time::Instant::now())),
            Arc::new(crate::directory::MemoryDirectory::new()),
            None,
            Some(Arc::new(hook)),
        );
        (rooms, counters)
    }

    async fn join(
        rooms: &Arc<Rooms<Ticking>>,
        id: u32,
        room: Option<&str>,
    ) -> Result<(Joined, RoomLink<Ticking>, Arc<Outbox>), Rejection> {
        super::join_as(rooms, id, hello(room, None)).await
    }

    fn ticks(counters: &Counters, room: &str) -> (u32, u32) {
        let counters = counters.lock().unwrap();
        let (ticks, dt) = counters.get(room).expect("room opened");
        (ticks.load(Ordering::Relaxed), dt.load(Ordering::Relaxed))
    }

    #[tokio::test(start_paused = true)]
    async fn each_room_ticks_at_its_own_rate() {
        let (rooms, counters) = node();
        let mut links = Vec::new();
        for (id, room) in [(1, "duel"), (2, "lobby"), (3, "other")] {
            let (j, link, _) = join(&rooms, id, Some(room)).await.expect("joined");
            // The welcome announces the room's own rates.
            let want = match room {
                "duel" => (60, 1),
                "lobby" => (10, 2),
                _ => (30, 1),
            };
            assert_eq!((j.welcome.tick_rate, j.welcome.snapshot_interval), want);
            // The session gets the room's config (its rate limits).
            assert_eq!(link.config.tick_rate, want.0);
            links.push(link);
        }
        let before: Vec<u32> = ["duel", "lobby", "other"]
            .iter()
            .map(|r| ticks(&counters, r).0)
            .collect();
        // Ten seconds of virtual time.
        tokio::time::sleep(Duration::from_secs(10)).await;
        for (i, (room, rate)) in [("duel", 60u32), ("lobby", 10), ("other", 30)]
            .into_iter()
            .enumerate()
        {
            let (after, dt_micros) = ticks(&counters, room);
            let ran = after - before[i];
            assert!(
                (10 * rate - 1..=10 * rate + 1).contains(&ran),
                "{room}: {ran} ticks in 10 s at {rate} Hz"
            );
            let want = (1e6 / f64::from(rate)).round() as u32;
            assert_eq!(dt_micros, want, "{room}: dt");
        }
        drop(links);
    }

    #[tokio::test]
    async fn each_room_admits_its_own_capacity() {
        let (rooms, _) = node();
        for (room, capacity) in [("duel", 2), ("lobby", 3)] {
            for id in 0..capacity {
                let joined = join(&rooms, 10 * capacity + id, Some(room)).await;
                assert!(joined.is_ok(), "{room}: join {id}: {:?}", joined.err());
            }
            let full = join(&rooms, 99, Some(room)).await;
            let refused = full.as_ref().err().expect("full");
            assert_eq!(refused.code, RejectCode::RoomFull, "{room}");
            assert!(
                refused.message.contains(&format!("({capacity} players)")),
                "{room}: {}",
                refused.message
            );
        }
        let open = rooms.snapshot();
        let capacities: Vec<(&str, usize, usize)> = open
            .iter()
            .map(|r| (r.name.as_str(), r.players, r.capacity))
            .collect();
        assert_eq!(capacities, [("duel", 2, 2), ("lobby", 3, 3)]);
        // Unnamed joins skip the full rooms and open one with the
        // default config.
        let (j, link, _) = join(&rooms, 50, None).await.expect("joined");
        assert_eq!(j.welcome.room, "room-1");
        assert_eq!(link.config.max_clients, 4);
    }

    #[tokio::test]
    async fn an_invalid_room_config_is_refused_with_its_typed_error() {
        let (rooms, _) = node();
        assert_eq!(
            rooms.config_for("broken", "ffa").err(),
            Some(RoomConfigError::TickRate(0))
        );
        let refused = join(&rooms, 1, Some("broken")).await;
        let refused = refused.as_ref().err().expect("refused");
        assert_eq!(refused.code, RejectCode::InvalidRoom);
        assert_eq!(rooms.open_rooms(), 0, "the room did not open");
        // The server goes on: other rooms open and take players.
        assert!(join(&rooms, 2, Some("duel")).await.is_ok());
        let (j, _, _) = join(&rooms, 3, None).await.expect("joined");
        assert_eq!(j.welcome.room, "duel", "the fullest room with space");
        assert_eq!(rooms.open_rooms(), 1);
    }
}
