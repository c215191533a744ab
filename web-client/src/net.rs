//! The protocol session, sans IO: bytes in, bytes out, time as an argument.
//!
//! ```text
//!  socket bytes ──▶ Session::handle_message(now, bytes) ──▶ NetEvent (welcome, snapshot, events, ending)
//!                       │  answers pings, acks snapshots, keeps the baseline ring
//!  local tick   ──▶ Session::push_input(tick, input) + queue_inputs()
//!  timer        ──▶ Session::poll(now)              (pings once a second)
//!                       ▼
//!                  Session::poll_transmit() ──▶ socket
//! ```
//!
//! Call order per connection: [`Session::new`] (or [`Session::restart`] to
//! reconnect with the same input sequence), send every
//! [`Session::poll_transmit`] once the socket opens, then feed each received
//! binary frame to [`Session::handle_message`]. Every message is built and
//! parsed by `tickwire-shared`; nothing here knows the browser.

use std::collections::VecDeque;
use std::fmt;

use tickwire_shared::message::Close;
use tickwire_shared::{
    ClientMessage, DecodeError, GameProtocol, Hello, InputFrame, Inputs, Limits, ServerMessage,
    Snapshot, SnapshotHeader, Welcome,
    handshake::{ClientHandshake, HandshakeError},
};

use crate::meter::RateMeter;
use crate::reconnect::Ending;

/// Snapshots kept for delta baselines.
pub const RING_CAPACITY: usize = 64;
/// Unacknowledged inputs kept for resending and replay (about two seconds).
pub const MAX_PENDING_INPUTS: usize = 128;
/// Milliseconds between two RTT pings.
pub const PING_INTERVAL_MS: f64 = 1000.0;
/// Pings awaiting their pong; older ones are forgotten.
const MAX_OUTSTANDING_PINGS: usize = 16;

/// Snapshots received since the newest baseline the server used, keyed by
/// tick (ascending), at most [`RING_CAPACITY`].
#[derive(Debug, Clone)]
pub struct SnapshotRing<S> {
    entries: VecDeque<(u32, Snapshot<S>)>,
    capacity: usize,
}

impl<S> SnapshotRing<S> {
    /// An empty ring holding at most `capacity` snapshots (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    /// Adds the snapshot of `tick`, which must be newer than every kept one
    /// (older or equal ticks are ignored). Evicts the oldest when full.
    pub fn insert(&mut self, tick: u32, snapshot: Snapshot<S>) {
        if self.entries.back().is_some_and(|(t, _)| *t >= tick) {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((tick, snapshot));
    }

    /// The snapshot of `tick`, if kept.
    #[must_use]
    pub fn get(&self, tick: u32) -> Option<&Snapshot<S>> {
        self.entries
            .binary_search_by_key(&tick, |(t, _)| *t)
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Drops every snapshot older than `tick`: the server used `tick` as a
    /// baseline, and it only ever moves its baseline forward.
    pub fn prune_before(&mut self, tick: u32) {
        while self.entries.front().is_some_and(|(t, _)| *t < tick) {
            self.entries.pop_front();
        }
    }

    /// The newest snapshot and its tick.
    #[must_use]
    pub fn latest(&self) -> Option<(u32, &Snapshot<S>)> {
        self.entries.back().map(|(t, s)| (*t, s))
    }

    /// Number of kept snapshots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (a new connection starts from a full snapshot).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Something the application must react to.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent<E> {
    /// The handshake succeeded.
    Welcome(Welcome),
    /// A snapshot was applied; read it with [`Session::latest`]. Its ack is
    /// already queued.
    Snapshot(SnapshotHeader),
    /// Reliable game events, in order.
    Events(Vec<E>),
    /// The server refused or closed the session; close the socket.
    Ended(Ending),
}

/// Why received bytes could not be accepted. Close the socket with
/// [`NetError::close_code`] and show the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The bytes are not a valid message (or a delta without its baseline).
    Decode(DecodeError),
    /// A valid message that makes no sense now.
    Unexpected {
        /// What came.
        got: &'static str,
        /// In which state.
        state: &'static str,
    },
}

impl NetError {
    /// The WebSocket close code to send: protocol error (1002).
    #[must_use]
    pub fn close_code(&self) -> u16 {
        tickwire_shared::CloseCode::ProtocolError.to_u16()
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "bad message from the server: {e}"),
            Self::Unexpected { got, state } => {
                write!(f, "the server sent {got} while the session was {state}")
            }
        }
    }
}

impl std::error::Error for NetError {}

impl From<DecodeError> for NetError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

#[derive(Debug)]
enum State {
    Handshaking(ClientHandshake),
    Established(Welcome),
    Ended,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Handshaking(_) => "waiting for the welcome",
            Self::Established(_) => "established",
            Self::Ended => "ended",
        }
    }
}

/// One client's protocol state for game `G`. See the module docs for the
/// call order.
pub struct Session<G: GameProtocol> {
    limits: Limits,
    state: State,
    ring: SnapshotRing<G::EntityState>,
    /// Tick and arrival time of the newest applied snapshot.
    latest: Option<(u32, f64)>,
    /// Tick and arrival time of the welcome.
    welcomed_at: Option<(u32, f64)>,
    last_input: u32,
    next_seq: u32,
    pending: VecDeque<(u32, InputFrame<G::Input>)>,
    outbox: VecDeque<Vec<u8>>,
    next_nonce: u32,
    next_ping_at: f64,
    outstanding_pings: VecDeque<(u32, f64)>,
    srtt_ms: Option<f64>,
    last_rtt_ms: Option<f64>,
    snapshots: RateMeter,
    bytes_in: RateMeter,
    bytes_out: RateMeter,
}

impl<G: GameProtocol> fmt::Debug for Session<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state.name())
            .field("latest", &self.latest)
            .field("last_input", &self.last_input)
            .field("next_seq", &self.next_seq)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<G: GameProtocol> Session<G> {
    /// A session that will send `hello` first (queued for
    /// [`Session::poll_transmit`]).
    #[must_use]
    pub fn new(hello: Hello, limits: Limits) -> Self {
        let mut s = Self {
            limits,
            state: State::Ended,
            ring: SnapshotRing::new(RING_CAPACITY),
            latest: None,
            welcomed_at: None,
            last_input: 0,
            next_seq: 1,
            pending: VecDeque::new(),
            outbox: VecDeque::new(),
            next_nonce: 1,
            next_ping_at: 0.0,
            outstanding_pings: VecDeque::new(),
            srtt_ms: None,
            last_rtt_ms: None,
            snapshots: RateMeter::new(),
            bytes_in: RateMeter::new(),
            bytes_out: RateMeter::new(),
        };
        s.restart(hello);
        s
    }

    /// The hello for `G` with the player's name as the auth token and an
    /// optional resume token.
    #[must_use]
    pub fn hello(name: &str, resume: Option<tickwire_shared::ResumeToken>) -> Hello {
        let mut hello = Hello::new(G::PROTOCOL_HASH);
        hello.auth_token = Some(name.to_owned());
        hello.resume_token = resume;
        hello
    }

    /// Starts over on a new connection: forgets the snapshots, pings and
    /// unsent bytes, queues `hello`, and keeps the unacknowledged inputs and
    /// their sequence numbers (a resumed session continues them; a fresh one
    /// restarts at 1 when its welcome arrives).
    pub fn restart(&mut self, hello: Hello) {
        self.outbox.clear();
        self.ring.clear();
        self.latest = None;
        self.welcomed_at = None;
        self.outstanding_pings.clear();
        self.next_ping_at = 0.0;
        self.queue(&ClientMessage::Hello(hello.clone()));
        self.state = State::Handshaking(ClientHandshake::new(hello));
    }

    /// Handles one received binary frame at `now_ms`.
    ///
    /// # Errors
    /// [`NetError`] when the bytes are malformed or out of place: close the
    /// socket with [`NetError::close_code`]. Nothing here panics on any input.
    pub fn handle_message(
        &mut self,
        now_ms: f64,
        bytes: &[u8],
    ) -> Result<Option<NetEvent<G::Event>>, NetError> {
        self.bytes_in.add(now_ms, bytes.len() as f64);
        if matches!(self.state, State::Ended) {
            return Ok(None);
        }
        let msg = ServerMessage::<G::Event>::decode(bytes, &self.limits)?;
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Handshaking(hs) => match hs.handle(msg) {
                Ok(welcome) => Ok(Some(self.on_welcome(now_ms, welcome))),
                Err(HandshakeError::Rejected { code, message }) => {
                    Ok(Some(NetEvent::Ended(Ending::Rejected { code, message })))
                }
                Err(HandshakeError::Closed { code, reason }) => {
                    Ok(Some(NetEvent::Ended(Ending::Closed { code, reason })))
                }
                Err(HandshakeError::UnexpectedMessage { got }) => Err(NetError::Unexpected {
                    got,
                    state: "waiting for the welcome",
                }),
                Err(_) => Err(NetError::Unexpected {
                    got: "an unknown handshake failure",
                    state: "waiting for the welcome",
                }),
            },
            State::Established(welcome) => {
                self.state = State::Established(welcome);
                self.on_established_message(now_ms, msg)
            }
            State::Ended => Ok(None),
        }
    }

    fn on_welcome(&mut self, now_ms: f64, welcome: Welcome) -> NetEvent<G::Event> {
        if !welcome.resumed {
            self.next_seq = 1;
            self.last_input = 0;
            self.pending.clear();
        }
        self.welcomed_at = Some((welcome.tick, now_ms));
        self.next_ping_at = now_ms;
        self.state = State::Established(welcome.clone());
        NetEvent::Welcome(welcome)
    }

    fn on_established_message(
        &mut self,
        now_ms: f64,
        msg: ServerMessage<'_, G::Event>,
    ) -> Result<Option<NetEvent<G::Event>>, NetError> {
        let unexpected = |got| NetError::Unexpected {
            got,
            state: "established",
        };
        match msg {
            ServerMessage::Welcome(_) => Err(unexpected("a second welcome")),
            ServerMessage::Reject(_) => Err(unexpected("a reject")),
            ServerMessage::Snapshot(frame) => {
                let header = frame.header;
                if self.latest.is_some_and(|(t, _)| header.tick <= t) {
                    // Stale or duplicate: already applied something newer.
                    return Ok(None);
                }
                let base = header.baseline.and_then(|b| self.ring.get(b));
                let snapshot = frame.decode::<G::EntityState>(base, &self.limits)?;
                if let Some(b) = header.baseline {
                    self.ring.prune_before(b);
                }
                self.ring.insert(header.tick, snapshot);
                self.latest = Some((header.tick, now_ms));
                self.snapshots.add(now_ms, 1.0);
                self.queue(&ClientMessage::Ack {
                    snapshot_tick: header.tick,
                });
                if header.last_input > self.last_input {
                    self.last_input = header.last_input;
                    let acked = self.last_input;
                    self.pending.retain(|(seq, _)| *seq > acked);
                }
                Ok(Some(NetEvent::Snapshot(header)))
            }
            ServerMessage::Events(events) => Ok(Some(NetEvent::Events(events))),
            ServerMessage::Ping { nonce } => {
                self.queue(&ClientMessage::Pong { nonce });
                Ok(None)
            }
            ServerMessage::Pong { nonce } => {
                if let Some(i) = self.outstanding_pings.iter().position(|(n, _)| *n == nonce) {
                    let (_, sent) = self.outstanding_pings[i];
                    self.outstanding_pings.drain(..=i);
                    let rtt = (now_ms - sent).max(0.0);
                    self.last_rtt_ms = Some(rtt);
                    self.srtt_ms = Some(match self.srtt_ms {
                        None => rtt,
                        Some(s) => s + (rtt - s) / 8.0,
                    });
                }
                Ok(None)
            }
            ServerMessage::Close(Close { code, reason }) => {
                self.state = State::Ended;
                Ok(Some(NetEvent::Ended(Ending::Closed { code, reason })))
            }
        }
    }

    /// Records the local input for one tick and returns its sequence number.
    /// Send it (with every other unacknowledged input) by
    /// [`Session::queue_inputs`].
    pub fn push_input(&mut self, tick: u32, input: G::Input) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        if self.pending.len() == MAX_PENDING_INPUTS {
            self.pending.pop_front();
        }
        self.pending.push_back((seq, InputFrame { tick, input }));
        seq
    }

    /// Queues one `Inputs` message with every input the server has not
    /// acknowledged, oldest first. When more than
    /// [`Limits::max_inputs_per_message`] are waiting, the newest that fit are
    /// sent (the server skips a gap; it cannot use inputs that old anyway).
    /// Does nothing before the welcome or without pending inputs.
    pub fn queue_inputs(&mut self) {
        if !self.is_established() || self.pending.is_empty() {
            return;
        }
        let max = self.limits.max_inputs_per_message.max(1);
        let skip = self.pending.len().saturating_sub(max);
        let first_seq = self.pending[skip].0;
        let frames = self
            .pending
            .iter()
            .skip(skip)
            .map(|(_, f)| f.clone())
            .collect();
        self.queue(&ClientMessage::Inputs(Inputs { first_seq, frames }));
    }

    /// Timers: queues an RTT ping once per [`PING_INTERVAL_MS`] while
    /// established.
    pub fn poll(&mut self, now_ms: f64) {
        if !self.is_established() || now_ms < self.next_ping_at {
            return;
        }
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        if self.outstanding_pings.len() == MAX_OUTSTANDING_PINGS {
            self.outstanding_pings.pop_front();
        }
        self.outstanding_pings.push_back((nonce, now_ms));
        self.next_ping_at = now_ms + PING_INTERVAL_MS;
        self.queue(&ClientMessage::Ping { nonce });
    }

    /// Queues a `Leave` and ends the session.
    pub fn leave(&mut self) {
        if self.is_established() {
            self.queue(&ClientMessage::Leave);
        }
        self.state = State::Ended;
    }

    /// The next message to send, oldest first.
    pub fn poll_transmit(&mut self, now_ms: f64) -> Option<Vec<u8>> {
        let bytes = self.outbox.pop_front()?;
        self.bytes_out.add(now_ms, bytes.len() as f64);
        Some(bytes)
    }

    fn queue(&mut self, msg: &ClientMessage<G::Input>) {
        // Only a game input that serde refuses can fail: a local bug that the
        // game's own tests catch; drop the message rather than panic.
        if let Ok(bytes) = msg.to_bytes() {
            self.outbox.push_back(bytes);
        }
    }

    /// True after the welcome and before the session ended.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// The welcome, while established.
    #[must_use]
    pub fn welcome(&self) -> Option<&Welcome> {
        match &self.state {
            State::Established(w) => Some(w),
            _ => None,
        }
    }

    /// The newest applied snapshot and its tick.
    #[must_use]
    pub fn latest(&self) -> Option<(u32, &Snapshot<G::EntityState>)> {
        self.ring.latest()
    }

    /// The snapshot ring.
    #[must_use]
    pub fn ring(&self) -> &SnapshotRing<G::EntityState> {
        &self.ring
    }

    /// The last input sequence the server applied.
    #[must_use]
    pub fn last_input(&self) -> u32 {
        self.last_input
    }

    /// The inputs not yet applied by the server, oldest first, with their
    /// sequence numbers: what prediction replays.
    pub fn unacked_inputs(&self) -> impl Iterator<Item = (u32, &G::Input)> + '_ {
        self.pending.iter().map(|(seq, f)| (*seq, &f.input))
    }

    /// The server tick now, estimated from the newest snapshot (or the
    /// welcome) and the time since it arrived. 0 before the welcome.
    #[must_use]
    pub fn estimated_tick(&self, now_ms: f64) -> u32 {
        let Some((tick, at)) = self.latest.or(self.welcomed_at) else {
            return 0;
        };
        let rate = self.welcome().map_or(60, |w| w.tick_rate);
        let elapsed = ((now_ms - at).max(0.0) * f64::from(rate) / 1000.0).floor();
        tick.saturating_add(elapsed.min(f64::from(u32::MAX)) as u32)
    }

    /// The tick of the newest applied snapshot.
    #[must_use]
    pub fn latest_tick(&self) -> Option<u32> {
        self.latest.map(|(t, _)| t)
    }

    /// Smoothed round-trip time (RFC 6298 style, α = 1/8), in milliseconds.
    #[must_use]
    pub fn rtt_ms(&self) -> Option<f64> {
        self.srtt_ms
    }

    /// The last measured round-trip time, in milliseconds.
    #[must_use]
    pub fn last_rtt_ms(&self) -> Option<f64> {
        self.last_rtt_ms
    }

    /// Snapshots applied during the last second.
    #[must_use]
    pub fn snapshots_per_sec(&mut self, now_ms: f64) -> f64 {
        self.snapshots.per_second(now_ms)
    }

    /// Bytes received during the last second.
    #[must_use]
    pub fn bytes_in_per_sec(&mut self, now_ms: f64) -> f64 {
        self.bytes_in.per_second(now_ms)
    }

    /// Bytes sent during the last second.
    #[must_use]
    pub fn bytes_out_per_sec(&mut self, now_ms: f64) -> f64 {
        self.bytes_out.per_second(now_ms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde::{Deserialize, Serialize};
    use tickwire_shared::{CloseCode, NetId, RejectCode, ResumeToken};

    use super::*;

    /// A tiny game for protocol tests.
    pub(crate) struct TestGame;

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Pos {
        pub(crate) x: i32,
        pub(crate) y: i32,
    }

    impl GameProtocol for TestGame {
        const NAME: &'static str = "test";
        const VERSION: u32 = 1;
        type Input = u8;
        type EntityState = Pos;
        type Event = String;
    }

    type Msg<'a> = ServerMessage<'a, String>;

    pub(crate) fn welcome(resumed: bool) -> Vec<u8> {
        Msg::Welcome(Welcome {
            client_id: 3,
            tick_rate: 60,
            tick: 100,
            snapshot_interval: 2,
            resume_token: ResumeToken([7; 16]),
            room: "lobby".into(),
            resumed,
        })
        .to_bytes()
        .unwrap()
    }

    pub(crate) fn view(n: u32, t: i32) -> Snapshot<Pos> {
        Snapshot::from_vec((1..=n).map(|i| (NetId(i), Pos { x: t, y: 0 })).collect()).unwrap()
    }

    pub(crate) fn snapshot_bytes(
        tick: u32,
        last_input: u32,
        base: Option<(u32, &Snapshot<Pos>)>,
        cur: &Snapshot<Pos>,
    ) -> Vec<u8> {
        tickwire_shared::message::encode_snapshot(tick, last_input, base, cur).unwrap()
    }

    fn sent(s: &mut Session<TestGame>) -> Vec<ClientMessage<u8>> {
        std::iter::from_fn(|| s.poll_transmit(0.0))
            .map(|b| ClientMessage::decode(&b, &Limits::default()).unwrap())
            .collect()
    }

    pub(crate) fn established() -> Session<TestGame> {
        let mut s =
            Session::<TestGame>::new(Session::<TestGame>::hello("ann", None), Limits::default());
        let _ = sent(&mut s);
        let ev = s.handle_message(0.0, &welcome(false)).unwrap();
        assert!(matches!(ev, Some(NetEvent::Welcome(_))));
        s
    }

    #[test]
    fn hello_carries_name_hash_and_resume_token() {
        let token = ResumeToken([1; 16]);
        let mut s = Session::<TestGame>::new(
            Session::<TestGame>::hello("ann", Some(token)),
            Limits::default(),
        );
        let msgs = sent(&mut s);
        let [ClientMessage::Hello(h)] = msgs.as_slice() else {
            panic!("expected one hello, got {msgs:?}");
        };
        assert_eq!(h.game_hash, TestGame::PROTOCOL_HASH);
        assert_eq!(h.auth_token.as_deref(), Some("ann"));
        assert_eq!(h.room, None);
        assert_eq!(h.resume_token, Some(token));
        assert!(!s.is_established());
    }

    #[test]
    fn every_applied_snapshot_is_acked() {
        let mut s = established();
        let _ = sent(&mut s);
        for tick in [102, 104, 106] {
            let bytes = snapshot_bytes(tick, 0, None, &view(3, tick as i32));
            let ev = s.handle_message(1.0, &bytes).unwrap();
            assert!(matches!(ev, Some(NetEvent::Snapshot(h)) if h.tick == tick));
            assert_eq!(
                sent(&mut s),
                vec![ClientMessage::Ack {
                    snapshot_tick: tick
                }]
            );
        }
        // A stale one is neither applied nor acked.
        let stale = snapshot_bytes(104, 0, None, &view(3, 0));
        assert_eq!(s.handle_message(2.0, &stale).unwrap(), None);
        assert!(sent(&mut s).is_empty());
        assert_eq!(s.latest().unwrap().1, &view(3, 106));
    }

    #[test]
    fn deltas_apply_to_kept_baselines_and_the_ring_prunes_older_ones() {
        let mut s = established();
        let views: Vec<_> = (0..5).map(|i| view(4 + i, i as i32)).collect();
        s.handle_message(0.0, &snapshot_bytes(10, 0, None, &views[0]))
            .unwrap();
        s.handle_message(
            0.0,
            &snapshot_bytes(12, 0, Some((10, &views[0])), &views[1]),
        )
        .unwrap();
        // The server still uses 10 (ack of 12 not seen yet): 10 must be kept.
        s.handle_message(
            0.0,
            &snapshot_bytes(14, 0, Some((10, &views[0])), &views[2]),
        )
        .unwrap();
        assert_eq!(s.ring().len(), 3);
        s.handle_message(
            0.0,
            &snapshot_bytes(16, 0, Some((14, &views[2])), &views[3]),
        )
        .unwrap();
        assert!(s.ring().get(10).is_none() && s.ring().get(12).is_none());
        assert_eq!(s.ring().get(14), Some(&views[2]));
        assert_eq!(s.latest(), Some((16, &views[3])));
        // A delta against a dropped baseline is a protocol error, not a panic.
        let err = s
            .handle_message(
                0.0,
                &snapshot_bytes(18, 0, Some((12, &views[1])), &views[4]),
            )
            .unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err}");
        assert_eq!(err.close_code(), 1002);
    }

    #[test]
    fn ring_finds_baselines_and_is_bounded() {
        let mut ring = SnapshotRing::new(RING_CAPACITY);
        for t in 0..100u32 {
            ring.insert(t * 2, view(1, t as i32));
        }
        assert_eq!(ring.len(), RING_CAPACITY);
        assert_eq!(ring.get(198), Some(&view(1, 99)));
        assert_eq!(ring.get(2 * 36), Some(&view(1, 36)));
        assert!(ring.get(2 * 35).is_none());
        assert!(ring.get(73).is_none());
        ring.insert(10, view(1, -1));
        assert_eq!(ring.latest().unwrap().0, 198);
        ring.prune_before(190);
        assert_eq!(ring.len(), 5);
    }

    #[test]
    fn inputs_resend_exactly_the_unacked_ones() {
        let mut s = established();
        let _ = sent(&mut s);
        for i in 0..5u8 {
            assert_eq!(s.push_input(200 + u32::from(i), i * 10), u32::from(i) + 1);
        }
        s.queue_inputs();
        let expect = |first_seq: u32, inputs: &[u8]| {
            ClientMessage::Inputs(Inputs {
                first_seq,
                frames: inputs
                    .iter()
                    .map(|&i| InputFrame {
                        tick: 200 + u32::from(i / 10),
                        input: i,
                    })
                    .collect(),
            })
        };
        assert_eq!(sent(&mut s), vec![expect(1, &[0, 10, 20, 30, 40])]);
        // The server applied up to sequence 3.
        s.handle_message(0.0, &snapshot_bytes(110, 3, None, &view(1, 0)))
            .unwrap();
        let _ = sent(&mut s);
        s.queue_inputs();
        assert_eq!(sent(&mut s), vec![expect(4, &[30, 40])]);
        assert_eq!(
            s.unacked_inputs().collect::<Vec<_>>(),
            vec![(4, &30), (5, &40)]
        );
        s.handle_message(0.0, &snapshot_bytes(112, 5, None, &view(1, 0)))
            .unwrap();
        let _ = sent(&mut s);
        s.queue_inputs();
        assert!(sent(&mut s).is_empty());
    }

    #[test]
    fn input_messages_respect_the_limit_and_send_the_newest() {
        let mut s = established();
        let _ = sent(&mut s);
        for i in 0..40u32 {
            s.push_input(i, i as u8);
        }
        s.queue_inputs();
        let msgs = sent(&mut s);
        let [ClientMessage::Inputs(inputs)] = msgs.as_slice() else {
            panic!("{msgs:?}");
        };
        assert_eq!(inputs.frames.len(), 32);
        assert_eq!(inputs.first_seq, 9);
        assert_eq!(inputs.frames[0].input, 8);
        // Pending inputs are bounded too.
        for i in 0..1000u32 {
            s.push_input(i, 0);
        }
        assert_eq!(s.unacked_inputs().count(), MAX_PENDING_INPUTS);
    }

    #[test]
    fn sequences_continue_on_resume_and_restart_when_fresh() {
        let mut s = established();
        s.push_input(1, 1);
        s.push_input(2, 2);
        s.restart(Session::<TestGame>::hello(
            "ann",
            Some(ResumeToken([7; 16])),
        ));
        s.handle_message(0.0, &welcome(true)).unwrap();
        assert_eq!(s.push_input(3, 3), 3);
        s.restart(Session::<TestGame>::hello(
            "ann",
            Some(ResumeToken([7; 16])),
        ));
        s.handle_message(0.0, &welcome(false)).unwrap();
        assert_eq!(s.unacked_inputs().count(), 0);
        assert_eq!(s.push_input(4, 4), 1);
    }

    #[test]
    fn pings_measure_rtt_and_server_pings_are_answered() {
        let mut s = established();
        let _ = sent(&mut s);
        s.poll(1000.0);
        let msgs = sent(&mut s);
        let [ClientMessage::Ping { nonce }] = msgs.as_slice() else {
            panic!("{msgs:?}");
        };
        s.poll(1500.0);
        assert!(sent(&mut s).is_empty(), "one ping per second");
        let pong = Msg::Pong { nonce: *nonce }.to_bytes().unwrap();
        s.handle_message(1080.0, &pong).unwrap();
        assert_eq!(s.rtt_ms(), Some(80.0));
        // An unknown nonce changes nothing.
        let stray = Msg::Pong { nonce: 999 }.to_bytes().unwrap();
        s.handle_message(1100.0, &stray).unwrap();
        assert_eq!(s.last_rtt_ms(), Some(80.0));
        let ping = Msg::Ping { nonce: 42 }.to_bytes().unwrap();
        assert_eq!(s.handle_message(1200.0, &ping).unwrap(), None);
        assert_eq!(sent(&mut s), vec![ClientMessage::Pong { nonce: 42 }]);
    }

    #[test]
    fn rejects_closes_and_events_surface_as_events() {
        let mut s =
            Session::<TestGame>::new(Session::<TestGame>::hello("x", None), Limits::default());
        let reject = Msg::Reject(tickwire_shared::message::Reject {
            code: RejectCode::ServerFull,
            message: "full".into(),
        })
        .to_bytes()
        .unwrap();
        assert_eq!(
            s.handle_message(0.0, &reject).unwrap(),
            Some(NetEvent::Ended(Ending::Rejected {
                code: RejectCode::ServerFull,
                message: "full".into()
            }))
        );
        let mut s = established();
        let events = Msg::Events(vec!["hi".into()]).to_bytes().unwrap();
        assert_eq!(
            s.handle_message(0.0, &events).unwrap(),
            Some(NetEvent::Events(vec!["hi".to_owned()]))
        );
        let close = Msg::Close(Close {
            code: CloseCode::ServerShutdown,
            reason: "bye".into(),
        })
        .to_bytes()
        .unwrap();
        assert!(matches!(
            s.handle_message(0.0, &close).unwrap(),
            Some(NetEvent::Ended(Ending::Closed {
                code: CloseCode::ServerShutdown,
                ..
            }))
        ));
        assert!(!s.is_established());
    }

    #[test]
    fn hostile_bytes_are_errors_never_panics() {
        let mut s = established();
        assert!(s.handle_message(0.0, &[]).is_err());
        assert!(s.handle_message(0.0, &[0xff, 1, 2]).is_err());
        assert!(s.handle_message(0.0, &welcome(false)).is_err());
        // A snapshot whose body claims a billion entities.
        assert!(
            s.handle_message(0.0, &[2, 1, 0, 0, 253, 0, 0, 0, 64, 0, 0, 0, 0])
                .is_err()
        );
        // Deterministic pseudo-random garbage.
        let mut x = 0x9e37_79b9_u32;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = s.handle_message(0.0, &bytes);
        }
        // Handshake state: a snapshot before the welcome.
        let mut s =
            Session::<TestGame>::new(Session::<TestGame>::hello("x", None), Limits::default());
        let early = snapshot_bytes(1, 0, None, &view(1, 0));
        assert!(matches!(
            s.handle_message(0.0, &early),
            Err(NetError::Unexpected { .. })
        ));
    }

    #[test]
    fn estimated_tick_advances_with_time() {
        let mut s = established();
        assert_eq!(s.estimated_tick(0.0), 100);
        assert_eq!(s.estimated_tick(500.0), 130);
        s.handle_message(1000.0, &snapshot_bytes(200, 0, None, &view(1, 0)))
            .unwrap();
        assert_eq!(s.estimated_tick(1100.0), 206);
    }
}
