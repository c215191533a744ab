//! The sans-IO client core, `ClientSession`, driven by a sequence of
//! operations decoded from the fuzz input: raw bytes on either channel,
//! welcomes, valid full and delta snapshots (sometimes mutated), events,
//! pings, pongs, closes, rejects, inputs, timers, leave, resume and transport
//! closes. Events and transmits are drained after every operation.
//!
//! Checked, besides "never panics":
//! * every transmit decodes as a `ClientMessage` with default limits, on the
//!   channel its kind belongs to; an ack names the world's tick; nothing is
//!   sent once `Leave` went out or after the session closed;
//! * after an applied snapshot the world's tick is the event's tick;
//! * an unmutated snapshot built from view `V` (full, or a delta against a
//!   tick the session acked and still keeps) with a newer tick is applied and
//!   `world().to_snapshot() == V`, and `changes()` is exactly the difference
//!   from the view before; a stale one is ignored; a delta against a tick not
//!   kept ends the session;
//! * welcomes, closes, rejects, events, pings, pongs, inputs and leave do what
//!   `shared/src/client/mod.rs` documents in each state; `Closed` comes once
//!   and last; after `handle_timeout(now)` the next timeout is later than `now`.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use tickwire_fuzz::{Event, Input, PatchGame, SerdeGame, Unit, derive_unit_view, unit_view};
use tickwire_shared::client::{Channel, ClientConfig, ClientSession, Event as SessionEvent};
use tickwire_shared::message::{Close, Reject, encode_snapshot};
use tickwire_shared::quantize::Angle16;
use tickwire_shared::{
    ClientMessage, CloseCode, GameProtocol, Hello, Limits, NetId, RejectCode, ResumeToken,
    ServerMessage, Snapshot, Welcome,
};

/// Most operations per input.
const MAX_OPS: usize = 64;

trait Game: GameProtocol<Input = Input, EntityState = Unit, Event = Event> {}
impl Game for PatchGame {}
impl Game for SerdeGame {}

/// What the harness predicts for one operation (checked by `drain`).
#[derive(Debug, Default)]
struct Expect {
    /// A snapshot of this tick is applied and the world is this view.
    applied: Option<(u32, Snapshot<Unit>)>,
    /// No snapshot is applied.
    not_applied: bool,
    /// The session ends during the operation.
    closes: bool,
    /// With this code, and whether the client decided it.
    close_code: Option<(CloseCode, bool)>,
    /// The session stays open.
    stays_open: bool,
    /// A welcome event with this welcome (`Some(None)`: no welcome event;
    /// `None`: either).
    welcome: Option<Option<Welcome>>,
    /// An events event with exactly these.
    events: Option<Vec<Event>>,
    /// A pong with this nonce is sent.
    pong: Option<u32>,
    /// An RTT event of this duration (or none at all).
    rtt: Option<Option<Duration>>,
}

/// The session's state as the harness follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Handshaking,
    Established,
    Leaving,
    Closed,
}

struct Harness<G: Game> {
    s: ClientSession<G>,
    mode: Mode,
    now: Duration,
    limits: Limits,
    buf: Vec<u8>,
    /// The world after each applied tick of this connection (pruned to the
    /// kept ticks).
    views: BTreeMap<u32, Snapshot<Unit>>,
    /// Ticks acked on this connection.
    acked: BTreeSet<u32>,
    /// Pings sent and not answered: (nonce, when), as the session keeps them.
    pings: Vec<(u32, Duration)>,
    /// False once a pong the harness did not send (raw bytes that decode as
    /// one) may have changed the session's pings.
    pings_synced: bool,
    /// The sequence the next accepted input gets.
    next_seq: u32,
    /// `Leave` was transmitted on this connection.
    leave_sent: bool,
    /// A `Closed` event came out on this connection.
    closed_seen: bool,
    /// Messages transmitted on this connection.
    sent: usize,
    /// The newest welcome.
    welcome: Option<Welcome>,
    /// The resume token the next hello carries.
    token: Option<ResumeToken>,
}

fn short(u: &mut Unstructured<'_>, max: usize) -> arbitrary::Result<String> {
    let s: &str = u.arbitrary()?;
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(s[..end].to_owned())
}

fn channel(u: &mut Unstructured<'_>, reliable_odds: u8) -> arbitrary::Result<Channel> {
    Ok(if u.ratio(reliable_odds, 8)? {
        Channel::Reliable
    } else {
        Channel::Unreliable
    })
}

fn input(u: &mut Unstructured<'_>) -> arbitrary::Result<Input> {
    Ok(Input {
        buttons: u.arbitrary()?,
        aim: Angle16(u.arbitrary()?),
        move_x: u.arbitrary()?,
        move_y: u.arbitrary()?,
        target: u.arbitrary()?,
    })
}

fn events(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Event>> {
    let n = u.int_in_range(0..=4)?;
    (0..n)
        .map(|_| {
            Ok(match u.int_in_range(0u8..=3)? {
                0 => Event::Chat {
                    from: u.arbitrary()?,
                    text: short(u, 40)?,
                },
                1 => Event::Kill {
                    killer: NetId(u.arbitrary()?),
                    victim: NetId(u.arbitrary()?),
                    weapon: u.arbitrary()?,
                },
                2 => Event::Scores(
                    (0..u.int_in_range(0..=4)?)
                        .map(|_| Ok((u.arbitrary()?, u.arbitrary()?)))
                        .collect::<arbitrary::Result<_>>()?,
                ),
                _ => Event::RoundOver,
            })
        })
        .collect()
}

/// Flips, overwrites, inserts or truncates a little of `bytes`.
fn mutate(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) -> arbitrary::Result<()> {
    if bytes.is_empty() {
        bytes.push(u.arbitrary()?);
        return Ok(());
    }
    let at = u.choose_index(bytes.len())?;
    match u.int_in_range(0u8..=3)? {
        0 => bytes[at] ^= 1 << u.int_in_range(0..=7)?,
        1 => bytes[at] = u.arbitrary()?,
        2 => bytes.insert(at, u.arbitrary()?),
        _ => bytes.truncate(at),
    }
    Ok(())
}

/// The sorted ids of `changes`-style difference between two views.
fn diff_ids(before: &Snapshot<Unit>, after: &Snapshot<Unit>) -> [Vec<NetId>; 3] {
    let added = after
        .iter()
        .filter(|(id, _)| before.get(*id).is_none())
        .map(|(id, _)| id)
        .collect();
    let changed = after
        .iter()
        .filter(|(id, e)| before.get(*id).is_some_and(|b| b != *e))
        .map(|(id, _)| id)
        .collect();
    let removed = before
        .iter()
        .filter(|(id, _)| after.get(*id).is_none())
        .map(|(id, _)| id)
        .collect();
    [added, changed, removed]
}

impl<G: Game> Harness<G> {
    fn new(config: ClientConfig, hello: Hello) -> Self {
        let now = Duration::from_secs(1000);
        let token = hello.resume_token;
        let mut h = Self {
            token,
            s: ClientSession::new(now, hello, config),
            mode: Mode::Handshaking,
            now,
            limits: Limits::default(),
            buf: Vec::new(),
            views: BTreeMap::new(),
            acked: BTreeSet::new(),
            pings: Vec::new(),
            pings_synced: true,
            next_seq: 1,
            leave_sent: false,
            closed_seen: false,
            sent: 0,
            welcome: None,
        };
        let sent = h.drain(&Expect {
            welcome: Some(None),
            ..Expect::default()
        });
        assert!(
            matches!(sent.first(), Some(ClientMessage::Hello(_))),
            "the first message is not the hello: {sent:?}"
        );
        h
    }

    fn newest(&self) -> Option<u32> {
        self.s.world().tick()
    }

    /// Drains events, then transmits; checks them against `e` and the
    /// invariants. Returns what was sent.
    fn drain(&mut self, e: &Expect) -> Vec<ClientMessage<Input>> {
        let mut applied = None;
        let mut closed = None;
        let mut welcome = None;
        let mut got_events = None;
        let mut rtt = None;
        while let Some(ev) = self.s.poll_event() {
            assert!(!self.closed_seen, "an event after Closed: {ev:?}");
            match ev {
                SessionEvent::Welcome(w) => {
                    assert!(welcome.is_none());
                    assert_eq!(
                        self.mode,
                        Mode::Handshaking,
                        "a welcome event when not handshaking"
                    );
                    self.mode = Mode::Established;
                    self.welcome = Some(w.clone());
                    welcome = Some(w);
                }
                SessionEvent::Snapshot(a) => {
                    assert!(applied.is_none(), "two snapshots from one operation");
                    assert_eq!(
                        self.s.world().tick(),
                        Some(a.tick),
                        "the world is not at the applied snapshot's tick"
                    );
                    self.views.insert(a.tick, self.s.world().to_snapshot());
                    applied = Some(a);
                }
                SessionEvent::Events(v) => {
                    assert!(got_events.is_none());
                    got_events = Some(v);
                }
                SessionEvent::Rtt(d) => {
                    assert!(rtt.is_none());
                    rtt = Some(d);
                }
                SessionEvent::Closed(c) => {
                    assert!(self.s.is_closed(), "Closed while the session is open");
                    assert_ne!(self.mode, Mode::Closed);
                    self.mode = Mode::Closed;
                    self.closed_seen = true;
                    closed = Some(c);
                }
            }
        }
        assert_eq!(self.s.is_established(), self.mode == Mode::Established);
        assert_eq!(self.s.is_closed(), self.mode == Mode::Closed);
        if let Some((tick, view)) = &e.applied {
            let a = applied.unwrap_or_else(|| panic!("snapshot of tick {tick} was not applied"));
            assert_eq!(a.tick, *tick);
            assert_eq!(&self.s.world().to_snapshot(), view, "applied view differs");
            assert_eq!(self.s.world().len(), view.len());
        }
        if e.not_applied {
            assert!(applied.is_none(), "unexpectedly applied {applied:?}");
        }
        if e.closes {
            let c = closed.as_ref().expect("the session did not close");
            if let Some((code, local)) = e.close_code {
                assert_eq!((c.code, c.local), (code, local), "{c:?}");
            }
        }
        if e.stays_open {
            assert!(closed.is_none(), "unexpectedly closed: {closed:?}");
        }
        match &e.welcome {
            Some(Some(w)) => assert_eq!(welcome.as_ref(), Some(w)),
            Some(None) => assert!(welcome.is_none(), "unexpected welcome"),
            None => {}
        }
        if let Some(v) = &e.events {
            assert_eq!(got_events.as_ref(), Some(v));
        }
        match e.rtt {
            Some(want) if self.pings_synced => assert_eq!(rtt, want),
            Some(_) => {}
            None => self.pings_synced &= rtt.is_none(),
        }
        // Keep only the views of kept ticks.
        let kept: BTreeSet<u32> = self.s.world().kept_ticks().collect();
        self.views.retain(|t, _| kept.contains(t));
        assert!(kept.iter().all(|t| self.views.contains_key(t)));

        let mut sent = Vec::new();
        while let Some(ch) = self.s.poll_transmit(self.now, &mut self.buf) {
            assert!(!self.s.is_closed(), "a transmit after the session closed");
            assert!(!self.leave_sent, "a transmit after Leave");
            let msg = ClientMessage::<Input>::decode(&self.buf, &self.limits)
                .unwrap_or_else(|err| panic!("transmit does not decode: {err}"));
            let want = match &msg {
                ClientMessage::Hello(_)
                | ClientMessage::Ping { .. }
                | ClientMessage::Pong { .. }
                | ClientMessage::Leave
                | ClientMessage::GameMessage(_) => Channel::Reliable,
                ClientMessage::Inputs(_) | ClientMessage::Ack { .. } => Channel::Unreliable,
            };
            assert_eq!(ch, want, "{msg:?} on the wrong channel");
            match &msg {
                ClientMessage::Hello(_) => assert_eq!(self.sent, 0, "hello not first"),
                ClientMessage::Ack { snapshot_tick } => {
                    assert_eq!(Some(*snapshot_tick), self.newest());
                    self.acked.insert(*snapshot_tick);
                }
                ClientMessage::Ping { nonce } => {
                    if self.pings.len() == 16 {
                        self.pings.remove(0);
                    }
                    self.pings.push((*nonce, self.now));
                }
                ClientMessage::Inputs(m) => {
                    assert!(!m.frames.is_empty());
                    assert!(m.frames.len() <= self.limits.max_inputs_per_message);
                    assert_eq!(
                        m.first_seq + m.frames.len() as u32,
                        self.next_seq,
                        "inputs do not end with the newest"
                    );
                }
                ClientMessage::Leave => self.leave_sent = true,
                ClientMessage::Pong { .. } => {}
                ClientMessage::GameMessage(()) => panic!("a game message nobody sent"),
            }
            assert!(
                self.sent > 0 || matches!(msg, ClientMessage::Hello(_)),
                "{msg:?} before the hello"
            );
            self.sent += 1;
            sent.push(msg);
        }
        if let Some(nonce) = e.pong {
            assert!(
                sent.iter()
                    .any(|m| matches!(m, ClientMessage::Pong { nonce: n } if *n == nonce)),
                "no pong for {nonce}: {sent:?}"
            );
        }
        sent
    }

    /// Sends a well-formed server message, predicting what it does in each
    /// state (`e`: what it does when established).
    fn server(&mut self, msg: &ServerMessage<'_, Event>, ch: Channel, established: Expect) {
        let bytes = msg.to_bytes().expect("our server messages encode");
        let e = match self.mode {
            Mode::Closed => Expect {
                not_applied: true,
                welcome: Some(None),
                ..Expect::default()
            },
            // A datagram can overtake the welcome: ignored.
            Mode::Handshaking if ch == Channel::Unreliable => Expect {
                not_applied: true,
                stays_open: true,
                welcome: Some(None),
                ..Expect::default()
            },
            Mode::Handshaking => {
                let mut e = Expect {
                    not_applied: true,
                    ..Expect::default()
                };
                match msg {
                    ServerMessage::Welcome(w) => {
                        e.welcome = Some(Some(w.clone()));
                        e.stays_open = true;
                    }
                    ServerMessage::Reject(_) => {
                        e.closes = true;
                        e.close_code = Some((CloseCode::Rejected, false));
                    }
                    ServerMessage::Close(c) => {
                        e.closes = true;
                        e.close_code = Some((c.code, false));
                    }
                    _ => {
                        e.closes = true;
                        e.close_code = Some((CloseCode::ProtocolError, true));
                    }
                }
                e
            }
            Mode::Leaving => {
                let close = match msg {
                    ServerMessage::Close(c) => Some((c.code, false)),
                    _ => None,
                };
                Expect {
                    not_applied: true,
                    closes: close.is_some(),
                    close_code: close,
                    stays_open: close.is_none(),
                    ..Expect::default()
                }
            }
            Mode::Established => established,
        };
        self.s.handle_message(self.now, &bytes, ch);
        self.drain(&e);
    }

    fn welcome(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let w = Welcome {
            client_id: u.arbitrary()?,
            tick_rate: u.int_in_range(1..=u16::MAX)?,
            tick: u.arbitrary()?,
            snapshot_interval: u.int_in_range(1..=u16::MAX)?,
            resume_token: ResumeToken(u.arbitrary()?),
            room: short(u, 40)?,
            resumed: u.arbitrary()?,
            implicit_acks: None,
        };
        let ch = channel(u, 7)?;
        self.server(
            &ServerMessage::Welcome(w),
            ch,
            Expect {
                closes: true,
                close_code: Some((CloseCode::ProtocolError, true)),
                ..Expect::default()
            },
        );
        Ok(())
    }

    fn snapshot(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let empty = Snapshot::new();
        let newest = self.newest();
        let newest_view = newest.map_or(&empty, |t| &self.views[&t]).clone();
        // Baselines a server may use: acked and still kept.
        let bases: Vec<u32> = self
            .views
            .keys()
            .copied()
            .filter(|t| self.acked.contains(t))
            .collect();
        // (claimed baseline tick, the view diffed against, kept and acked)
        let mut valid_base = true;
        let (base, view): (Option<(u32, Snapshot<Unit>)>, Snapshot<Unit>) =
            match u.int_in_range(0u8..=7)? {
                0 => (None, unit_view(u)?),
                1 => (None, derive_unit_view(u, &newest_view)?),
                2..=4 if !bases.is_empty() => {
                    let b = bases[u.choose_index(bases.len())?];
                    let from = if u.arbitrary()? {
                        self.views[&b].clone()
                    } else {
                        newest_view.clone()
                    };
                    (
                        Some((b, self.views[&b].clone())),
                        derive_unit_view(u, &from)?,
                    )
                }
                5 | 6 if !bases.is_empty() => {
                    // Against the newest kept tick, unchanged or nearly.
                    let b = *bases.last().expect("not empty");
                    let v = if u.arbitrary()? {
                        self.views[&b].clone()
                    } else {
                        derive_unit_view(u, &self.views[&b])?
                    };
                    (Some((b, self.views[&b].clone())), v)
                }
                2..=6 => (None, derive_unit_view(u, &newest_view)?),
                _ => {
                    // A baseline tick the session may not keep.
                    let b: u32 = u.arbitrary()?;
                    valid_base = false;
                    (
                        Some((b, newest_view.clone())),
                        derive_unit_view(u, &newest_view)?,
                    )
                }
            };
        let tick = match u.int_in_range(0u8..=7)? {
            0 => u.arbitrary()?,
            1 => newest.map_or(0, |n| n.saturating_sub(u.int_in_range(0..=2).unwrap_or(0))),
            _ => newest.map_or(Ok(0), |n| {
                u.int_in_range(1..=3).map(|d| n.saturating_add(d))
            })?,
        };
        let last_input = u.int_in_range(0..=self.next_seq.saturating_add(1))?;
        let ch = channel(u, 4)?;
        let mut bytes =
            encode_snapshot(tick, last_input, base.as_ref().map(|(t, v)| (*t, v)), &view)
                .expect("valid views encode");
        if u.ratio(1, 8)? {
            let orig = bytes.clone();
            mutate(u, &mut bytes)?;
            if bytes != orig {
                let before = self.s.world().to_snapshot();
                self.s.handle_message(self.now, &bytes, ch);
                self.drain(&Expect::default());
                if self.s.world().tick() == newest {
                    assert_eq!(
                        self.s.world().to_snapshot(),
                        before,
                        "not applied, yet changed"
                    );
                }
                return Ok(());
            }
        }
        let kept_base = valid_base
            && base
                .as_ref()
                .is_none_or(|(b, _)| self.views.contains_key(b) && self.acked.contains(b));
        let mut e = Expect::default();
        let before = self.s.world().to_snapshot();
        let last_input_before = self.s.last_input();
        let fresh = newest.is_none_or(|n| tick > n);
        if !fresh {
            e.not_applied = true;
            e.stays_open = true;
        } else if !kept_base {
            // A delta against a tick not kept ends the session. (Against a
            // kept tick with other contents, or one never acked, anything
            // but a panic goes.)
            if !base
                .as_ref()
                .is_some_and(|(b, _)| self.views.contains_key(b))
            {
                e.not_applied = true;
                e.closes = true;
                e.close_code = Some((CloseCode::ProtocolError, true));
            }
        } else {
            e.applied = Some((tick, view.clone()));
            e.stays_open = true;
        }
        let check_changes = e.applied.is_some() && self.mode == Mode::Established;
        let frame = ServerMessage::<Event>::decode(&bytes, &self.limits).expect("ours decode");
        self.server(&frame, ch, e);
        if check_changes {
            let c = self.s.world().changes();
            let mut got = [c.added.clone(), c.changed.clone(), c.removed.clone()];
            for v in &mut got {
                v.sort_unstable();
            }
            assert_eq!(
                got,
                diff_ids(&before, &view),
                "changes() is not the difference"
            );
            assert_eq!(self.s.last_input(), last_input_before.max(last_input));
        }
        Ok(())
    }

    fn resume(&mut self) {
        self.s.resume(self.now);
        if let Some(w) = &self.welcome {
            self.token = Some(w.resume_token);
        }
        self.mode = Mode::Handshaking;
        self.views.clear();
        self.acked.clear();
        self.pings.clear();
        self.pings_synced = true;
        self.next_seq = 1;
        self.leave_sent = false;
        self.closed_seen = false;
        self.sent = 0;
        assert_eq!(self.s.world().tick(), None);
        let sent = self.drain(&Expect {
            stays_open: true,
            ..Expect::default()
        });
        match sent.as_slice() {
            [ClientMessage::Hello(h)] => assert_eq!(h.resume_token, self.token),
            other => panic!("resume sent {other:?}"),
        }
    }

    fn op(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        // Most operations end the session or need it established: get back
        // there quickly, mostly.
        if self.mode == Mode::Closed && u.ratio(7, 8)? {
            self.resume();
        }
        if self.mode == Mode::Handshaking && u.ratio(3, 4)? {
            self.welcome(u)?;
        }
        match u.int_in_range(0u8..=31)? {
            // Raw bytes.
            0 => {
                let len = u.int_in_range(0..=48)?;
                let bytes = u.bytes(len)?.to_vec();
                let ch = channel(u, 4)?;
                self.s.handle_message(self.now, &bytes, ch);
                self.drain(&Expect::default());
            }
            1 => self.welcome(u)?,
            2..=15 => self.snapshot(u)?,
            16 => {
                let ev = events(u)?;
                let ch = channel(u, 7)?;
                let e = Expect {
                    events: Some(ev.clone()),
                    stays_open: true,
                    not_applied: true,
                    ..Expect::default()
                };
                self.server(&ServerMessage::Events(ev), ch, e);
            }
            17 => {
                let nonce = u.arbitrary()?;
                let ch = channel(u, 7)?;
                let e = Expect {
                    pong: Some(nonce),
                    stays_open: true,
                    not_applied: true,
                    ..Expect::default()
                };
                self.server(&ServerMessage::Ping { nonce }, ch, e);
            }
            18 | 19 => {
                let nonce = if !self.pings.is_empty() && u.ratio(3, 4)? {
                    self.pings[u.choose_index(self.pings.len())?].0
                } else {
                    u.arbitrary()?
                };
                let ch = channel(u, 7)?;
                let mut e = Expect {
                    stays_open: true,
                    not_applied: true,
                    rtt: Some(None),
                    ..Expect::default()
                };
                if self.mode == Mode::Established
                    && let Some(i) = self.pings.iter().position(|(n, _)| *n == nonce)
                {
                    let (_, at) = self.pings[i];
                    self.pings.drain(..=i);
                    e.rtt = Some(Some(self.now.saturating_sub(at)));
                }
                self.server(&ServerMessage::Pong { nonce }, ch, e);
            }
            20 => {
                let code = CloseCode::from_u16(u.arbitrary()?);
                let reason = short(u, 40)?;
                let ch = channel(u, 7)?;
                let e = Expect {
                    closes: true,
                    close_code: Some((code, false)),
                    not_applied: true,
                    ..Expect::default()
                };
                self.server(&ServerMessage::Close(Close { code, reason }), ch, e);
            }
            21 => {
                let code = RejectCode::from_u16(u.arbitrary()?);
                let message = short(u, 40)?;
                let ch = channel(u, 7)?;
                let e = Expect {
                    closes: true,
                    close_code: Some((CloseCode::ProtocolError, true)),
                    not_applied: true,
                    ..Expect::default()
                };
                self.server(&ServerMessage::Reject(Reject { code, message }), ch, e);
            }
            22..=25 => {
                let i = input(u)?;
                let got = self.s.push_input(self.now, i.clone());
                if self.mode == Mode::Established {
                    assert_eq!(got, Some(self.next_seq));
                    self.next_seq += 1;
                } else {
                    assert_eq!(got, None);
                }
                let sent = self.drain(&Expect {
                    stays_open: true,
                    ..Expect::default()
                });
                if got.is_some() {
                    let frames = sent.iter().find_map(|m| match m {
                        ClientMessage::Inputs(m) => Some(&m.frames),
                        _ => None,
                    });
                    let frames = frames.expect("no inputs sent after push_input");
                    assert_eq!(frames.last().map(|f| &f.input), Some(&i));
                }
            }
            26..=28 => {
                // Time passes: mostly ticks, sometimes seconds, rarely a day.
                let step = match u.int_in_range(0u8..=7)? {
                    0 => Duration::from_secs(u.int_in_range(0..=86_400)?),
                    1 | 2 => Duration::from_millis(u.int_in_range(0..=15_000)?),
                    _ => Duration::from_millis(u.int_in_range(0..=100)?),
                };
                self.now += step;
                let due = self.s.poll_timeout().is_some_and(|t| t <= self.now);
                if due || u.arbitrary()? {
                    self.s.handle_timeout(self.now);
                    self.drain(&Expect {
                        not_applied: true,
                        ..Expect::default()
                    });
                    if let Some(t) = self.s.poll_timeout() {
                        assert!(t > self.now, "timeout {t:?} not after {:?}", self.now);
                    }
                }
            }
            29 => {
                let mode = self.mode;
                self.s.leave(self.now);
                let e = match mode {
                    Mode::Handshaking => Expect {
                        closes: true,
                        close_code: Some((CloseCode::Normal, true)),
                        ..Expect::default()
                    },
                    _ => Expect {
                        stays_open: true,
                        ..Expect::default()
                    },
                };
                if mode == Mode::Established {
                    self.mode = Mode::Leaving;
                }
                let sent = self.drain(&e);
                if mode == Mode::Established {
                    assert!(
                        matches!(sent.last(), Some(ClientMessage::Leave)),
                        "{sent:?}"
                    );
                }
            }
            30 => self.resume(),
            _ => {
                let code = if u.arbitrary()? {
                    Some(u.arbitrary()?)
                } else {
                    None
                };
                let reason = short(u, 40)?;
                let open = self.mode != Mode::Closed;
                self.s.handle_transport_closed(self.now, code, &reason);
                self.drain(&Expect {
                    closes: open,
                    not_applied: true,
                    ..Expect::default()
                });
            }
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(pick) = u.arbitrary::<u8>() else {
        return;
    };
    if pick & 1 == 0 {
        let _ = run::<PatchGame>(&mut u, pick);
    } else {
        let _ = run::<SerdeGame>(&mut u, pick);
    }
});

fn run<G: Game>(u: &mut Unstructured<'_>, pick: u8) -> arbitrary::Result<()> {
    // The other bits of the first byte pick the settings.
    let mut config = ClientConfig::default()
        .with_baseline_capacity([1, 2, 3, 64][usize::from(pick >> 1) & 3])
        .with_ping_interval([Some(Duration::from_millis(250)), None][usize::from(pick >> 3) & 1])
        .with_idle_timeout([Some(Duration::from_secs(10)), None][usize::from(pick >> 4) & 1]);
    if pick & 0x20 != 0 {
        config = config.with_handshake_timeout(Duration::from_millis(500));
    }
    let mut hello = Hello::new(G::PROTOCOL_HASH);
    if pick & 0x40 != 0 {
        hello.room = Some("lobby".into());
        hello.resume_token = Some(ResumeToken([7; 16]));
    }
    let mut h = Harness::<G>::new(config, hello);
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        h.op(u)?;
    }
    Ok(())
}
