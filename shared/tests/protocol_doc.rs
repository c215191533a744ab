//! Keeps `docs/PROTOCOL.md` true: every `<!-- example: NAME -->` hex block is
//! the exact encoding of the documented values, and decodes back to them; the
//! tables marked `<!-- table: NAME -->` (primitives, limits, codes, message
//! tags) and the quoted protocol hash match the code.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tickwire_shared::delta::{DeltaScratch, DeltaStats, write_delta};
use tickwire_shared::game::fnv1a64;
use tickwire_shared::message::{Close, Reject};
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::snapshot::write_full;
use tickwire_shared::{
    ClientMessage, CloseCode, GameProtocol, Hello, InputFrame, Inputs, Limits, NetId,
    PROTOCOL_VERSION, Reader, RejectCode, ResumeToken, ServerMessage, Snapshot, SnapshotHeader,
    Welcome, Writer, protocol_hash,
};

// ---- The example game of PROTOCOL.md §4.1, exactly as documented. ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PadInput {
    dx: i8,
    dy: i8,
    aim: Option<u16>,
    fire: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ship {
    pos: QVec2<16>,
    angle: Angle16,
    health: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ExampleEvent {
    Joined { client_id: u32 },
    Chat(String),
    Died,
}

/// The example's `Message`; `Chat` and `Ready` are there for the shape.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ExampleMessage {
    Chat(String),
    Buy { item: u16 },
    Ready,
}

struct ExampleGame;

impl GameProtocol for ExampleGame {
    const NAME: &'static str = "example";
    const VERSION: u32 = 1;
    type Input = PadInput;
    type EntityState = Ship;
    type Event = ExampleEvent;
    type Message = ExampleMessage;
}

type Client = ClientMessage<PadInput, ExampleMessage>;
type Server<'a> = ServerMessage<'a, ExampleEvent>;

// ---- The documented values (PROTOCOL.md §11). ----

fn token() -> ResumeToken {
    ResumeToken(core::array::from_fn(|i| 0xa0 + i as u8))
}

fn hello() -> Client {
    let mut h = Hello::new(ExampleGame::PROTOCOL_HASH);
    h.room = Some("lobby".into());
    h.auth_token = Some("tok3n".into());
    ClientMessage::Hello(h)
}

fn hello_seat() -> Client {
    let mut h = Hello::new(ExampleGame::PROTOCOL_HASH);
    h.room = Some("lobby".into());
    h.seat_token = Some("tw1.AbC-_9".into());
    ClientMessage::Hello(h)
}

fn hello_implicit_acks() -> Client {
    let mut h = Hello::new(ExampleGame::PROTOCOL_HASH);
    h.room = Some("lobby".into());
    h.implicit_acks = true;
    ClientMessage::Hello(h)
}

fn welcome_implicit_acks() -> Server<'static> {
    match welcome() {
        ServerMessage::Welcome(w) => ServerMessage::Welcome(Welcome {
            implicit_acks: Some(true),
            ..w
        }),
        _ => unreachable!(),
    }
}

fn hello_resume() -> Client {
    let mut h = Hello::new(ExampleGame::PROTOCOL_HASH);
    h.resume_token = Some(token());
    ClientMessage::Hello(h)
}

fn welcome() -> Server<'static> {
    ServerMessage::Welcome(Welcome {
        client_id: 7,
        tick_rate: 60,
        tick: 1000,
        snapshot_interval: 2,
        resume_token: token(),
        room: "lobby".into(),
        resumed: false,
        implicit_acks: None,
    })
}

fn reject() -> Server<'static> {
    ServerMessage::Reject(Reject {
        code: RejectCode::GameMismatch,
        message: "wrong game".into(),
    })
}

fn inputs() -> Client {
    ClientMessage::Inputs(Inputs {
        first_seq: 41,
        frames: vec![
            InputFrame {
                tick: 1001,
                input: PadInput {
                    dx: 1,
                    dy: -1,
                    aim: Some(16384),
                    fire: false,
                },
            },
            InputFrame {
                tick: 1002,
                input: PadInput {
                    dx: 1,
                    dy: 0,
                    aim: None,
                    fire: true,
                },
            },
        ],
    })
}

fn game_message() -> Client {
    ClientMessage::GameMessage(ExampleMessage::Buy { item: 300 })
}

fn ack() -> Client {
    ClientMessage::Ack {
        snapshot_tick: 1000,
    }
}

fn events() -> Server<'static> {
    ServerMessage::Events(vec![
        ExampleEvent::Joined { client_id: 7 },
        ExampleEvent::Chat("gg".into()),
        ExampleEvent::Died,
    ])
}

fn close() -> Server<'static> {
    ServerMessage::Close(Close {
        code: CloseCode::ServerShutdown,
        reason: "restart".into(),
    })
}

fn ship(x: i32, y: i32, angle: u16, health: u8) -> Ship {
    Ship {
        pos: QVec2 { x, y },
        angle: Angle16(angle),
        health,
    }
}

/// §11.7: tick 1000.
fn snap_1000() -> Snapshot<Ship> {
    Snapshot::from_vec(vec![
        (NetId(5), ship(160, -48, 16384, 100)),
        (NetId(12), ship(-3200, 800, 65530, 255)),
    ])
    .unwrap()
}

/// §11.8: tick 1002, only #12's pos.x changed.
fn snap_1002() -> Snapshot<Ship> {
    Snapshot::from_vec(vec![
        (NetId(5), ship(160, -48, 16384, 100)),
        (NetId(12), ship(-3184, 800, 65530, 255)),
    ])
    .unwrap()
}

/// §11.9: tick 1004, #5 removed, #12 patched, #20 new.
fn snap_1004() -> Snapshot<Ship> {
    Snapshot::from_vec(vec![
        (NetId(12), ship(-3184, 800, 4, 250)),
        (NetId(20), ship(0, 0, 0, 100)),
    ])
    .unwrap()
}

/// A snapshot example: its header, baseline (for a delta), content and what
/// the delta encoder must report.
struct SnapshotExample {
    header: SnapshotHeader,
    baseline: Option<Snapshot<Ship>>,
    snapshot: Snapshot<Ship>,
    stats: Option<DeltaStats>,
}

fn snapshot_example(name: &str) -> Option<SnapshotExample> {
    let header = |tick, last_input, baseline| SnapshotHeader {
        tick,
        last_input,
        baseline,
    };
    Some(match name {
        "snapshot-full" => SnapshotExample {
            header: header(1000, 40, None),
            baseline: None,
            snapshot: snap_1000(),
            stats: None,
        },
        "snapshot-delta" => SnapshotExample {
            header: header(1002, 42, Some(1000)),
            baseline: Some(snap_1000()),
            snapshot: snap_1002(),
            stats: Some(DeltaStats {
                unchanged: 1,
                patched: 1,
                full: 0,
                removed: 0,
            }),
        },
        "snapshot-delta-sections" => SnapshotExample {
            header: header(1004, 43, Some(1002)),
            baseline: Some(snap_1002()),
            snapshot: snap_1004(),
            stats: Some(DeltaStats {
                unchanged: 0,
                patched: 1,
                full: 1,
                removed: 1,
            }),
        },
        _ => return None,
    })
}

/// Every example the document must contain, in document order.
const EXAMPLES: [&str; 15] = [
    "hello",
    "hello-resume",
    "hello-seat",
    "welcome",
    "reject",
    "inputs",
    "ack",
    "snapshot-full",
    "snapshot-delta",
    "snapshot-delta-sections",
    "events",
    "close",
    "game-message",
    "hello-implicit-acks",
    "welcome-implicit-acks",
];

enum Expected {
    Client(Client),
    Server(Server<'static>),
    Snapshot(SnapshotExample),
}

fn expected(name: &str) -> Expected {
    if let Some(s) = snapshot_example(name) {
        return Expected::Snapshot(s);
    }
    match name {
        "hello" => Expected::Client(hello()),
        "hello-resume" => Expected::Client(hello_resume()),
        "hello-seat" => Expected::Client(hello_seat()),
        "hello-implicit-acks" => Expected::Client(hello_implicit_acks()),
        "welcome-implicit-acks" => Expected::Server(welcome_implicit_acks()),
        "inputs" => Expected::Client(inputs()),
        "ack" => Expected::Client(ack()),
        "game-message" => Expected::Client(game_message()),
        "welcome" => Expected::Server(welcome()),
        "reject" => Expected::Server(reject()),
        "events" => Expected::Server(events()),
        "close" => Expected::Server(close()),
        other => panic!("example {other:?} has no expected value in this test"),
    }
}

/// The bytes tickwire-shared produces for example `name`.
fn encode(name: &str) -> Vec<u8> {
    match expected(name) {
        Expected::Client(m) => m.to_bytes().unwrap(),
        Expected::Server(m) => m.to_bytes().unwrap(),
        Expected::Snapshot(s) => {
            let mut w = Writer::new();
            s.header.encode(&mut w);
            match &s.baseline {
                None => write_full(&mut w, s.snapshot.iter()).unwrap(),
                Some(base) => {
                    let stats = write_delta(
                        &mut w,
                        base.iter(),
                        s.snapshot.iter(),
                        &mut DeltaScratch::default(),
                        Limits::default().max_fields_per_entity,
                    )
                    .unwrap();
                    assert_eq!(Some(stats), s.stats, "delta stats of example {name}");
                }
            }
            w.into_vec()
        }
    }
}

/// Decodes `bytes` and checks they give example `name`'s values back.
fn check_decode(name: &str, bytes: &[u8]) {
    let limits = Limits::default();
    match expected(name) {
        Expected::Client(m) => {
            assert_eq!(Client::decode(bytes, &limits), Ok(m), "decoding {name}");
        }
        Expected::Server(m) => {
            assert_eq!(Server::decode(bytes, &limits), Ok(m), "decoding {name}");
        }
        Expected::Snapshot(s) => {
            let Ok(ServerMessage::Snapshot(frame)) = Server::decode(bytes, &limits) else {
                panic!("example {name} does not decode as a snapshot message");
            };
            assert_eq!(frame.header, s.header, "header of {name}");
            assert_eq!(
                frame.decode::<Ship>(s.baseline.as_ref(), &limits),
                Ok(s.snapshot),
                "body of {name}"
            );
        }
    }
}

// ---- Reading the document. ----

fn doc() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whitespace-separated two-digit hex bytes.
fn parse_hex(s: &str, context: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|t| {
            assert!(t.len() == 2, "{context}: {t:?} is not a two-digit hex byte");
            u8::from_str_radix(t, 16)
                .unwrap_or_else(|_| panic!("{context}: {t:?} is not a hex byte"))
        })
        .collect()
}

/// Every named example of `text`: a `<!-- example: NAME -->` line followed
/// by a ```` ```hex ```` block. An unnamed hex block or a repeated name panics.
fn examples(text: &str) -> BTreeMap<String, Vec<u8>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line == "```hex" {
            panic!("line {}: hex block without an example name", i + 1);
        }
        if let Some(rest) = line.strip_prefix("<!-- example:") {
            let name = rest
                .strip_suffix("-->")
                .unwrap_or_else(|| panic!("line {}: malformed example marker", i + 1))
                .trim()
                .to_owned();
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("```hex"),
                "line {}: example {name} must be followed by a ```hex block",
                i + 1
            );
            let start = i + 2;
            let len = lines[start..]
                .iter()
                .position(|l| l.trim() == "```")
                .unwrap_or_else(|| panic!("example {name}: unterminated hex block"));
            let bytes = parse_hex(&lines[start..start + len].join("\n"), &name);
            assert!(
                out.insert(name.clone(), bytes).is_none(),
                "example {name} appears twice"
            );
            i = start + len + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Where the documented examples of `text` differ from the code, one line
/// per problem, naming the example.
fn mismatches(text: &str) -> Vec<String> {
    let found = examples(text);
    let mut problems = Vec::new();
    for name in found.keys() {
        if !EXAMPLES.contains(&name.as_str()) {
            problems.push(format!("{name}: example not checked by this test"));
        }
    }
    for name in EXAMPLES {
        match found.get(name) {
            None => problems.push(format!("{name}: example missing from the document")),
            Some(doc_bytes) => {
                let code = encode(name);
                if *doc_bytes != code {
                    problems.push(format!(
                        "{name}: document has\n    {}\n  tickwire-shared encodes\n    {}",
                        hex(doc_bytes),
                        hex(&code)
                    ));
                }
            }
        }
    }
    problems
}

/// Splits a Markdown table row into trimmed cells (`\|` is not a separator).
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The body rows of the table after `<!-- table: NAME -->`, as cells.
fn table(name: &str) -> Vec<Vec<String>> {
    let marker = format!("<!-- table: {name} -->");
    let mut lines = doc()
        .lines()
        .skip_while(|l| l.trim() != marker)
        .skip(1)
        .skip_while(|l| l.trim().is_empty());
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("table {name} missing"));
    assert!(
        header.starts_with('|'),
        "table {name}: no table after the marker"
    );
    let separator = lines.next().unwrap_or_default();
    assert!(
        separator.starts_with("|---"),
        "table {name}: no separator row"
    );
    let rows: Vec<_> = lines
        .take_while(|l| l.starts_with('|'))
        .map(cells)
        .collect();
    assert!(!rows.is_empty(), "table {name} is empty");
    rows
}

fn unquote(s: &str) -> &str {
    s.trim_matches('`')
}

// ---- The tests. ----

#[test]
fn examples_match_the_encoder() {
    let problems = mismatches(doc());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn examples_decode_to_the_documented_values() {
    let found = examples(doc());
    for name in EXAMPLES {
        let bytes = found
            .get(name)
            .unwrap_or_else(|| panic!("example {name} missing"));
        check_decode(name, bytes);
    }
}

/// The check above would notice drift: one changed byte in any example
/// makes `mismatches` name that example.
#[test]
fn a_changed_byte_in_any_example_is_detected() {
    let text = doc();
    for name in EXAMPLES {
        let marker = format!("<!-- example: {name} -->");
        let at = text.find(&marker).expect("example marker");
        let block = at + text[at..].find("```hex").expect("hex block") + "```hex".len();
        let digit = block
            + text[block..]
                .find(|c: char| c.is_ascii_hexdigit())
                .expect("a hex digit");
        let flipped = if &text[digit..=digit] == "0" {
            "1"
        } else {
            "0"
        };
        let mutated = format!("{}{flipped}{}", &text[..digit], &text[digit + 1..]);
        let problems = mismatches(&mutated);
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{name}:"))),
            "a changed byte in {name} went unnoticed: {problems:?}"
        );
    }
}

#[test]
fn protocol_hash_example_matches() {
    let hash = protocol_hash("example", 1);
    assert_eq!(hash, ExampleGame::PROTOCOL_HASH);
    let string = format!("tickwire/{PROTOCOL_VERSION}/example/1");
    assert_eq!(hash, fnv1a64(string.as_bytes()));
    let quoted = format!("`{string}` → `0x{hash:016x}`");
    assert!(doc().contains(&quoted), "the document must quote {quoted}");
    let wire = format!("`{}`", hex(&hash.to_le_bytes()));
    assert!(doc().contains(&wire), "the document must show {wire}");
    let version = format!("`PROTOCOL_VERSION = {PROTOCOL_VERSION}`");
    assert!(
        doc().contains(&version),
        "the document must state {version}"
    );
}

fn check_value<T>(value: T, bytes: &[u8], row: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut w = Writer::new();
    w.value("value", &value).unwrap();
    assert_eq!(hex(w.as_slice()), hex(bytes), "encoding row {row}");
    let mut r = Reader::new(bytes);
    assert_eq!(
        r.value::<T>("value").as_ref(),
        Ok(&value),
        "decoding row {row}"
    );
    r.finish().unwrap();
}

#[test]
fn primitive_table_matches_the_codec() {
    fn num<T: std::str::FromStr>(s: &str, row: &str) -> T {
        s.parse()
            .unwrap_or_else(|_| panic!("row {row}: bad value {s:?}"))
    }
    for row in table("primitives") {
        let desc = row.join(" | ");
        let (ty, v) = (unquote(&row[0]), row[1].as_str());
        let bytes = match unquote(&row[2]) {
            "(no bytes)" => Vec::new(),
            h => parse_hex(h, &desc),
        };
        let quoted = |q: char| {
            v.strip_prefix(q)
                .and_then(|s| s.strip_suffix(q))
                .unwrap_or_else(|| panic!("row {desc}: expected a {q}-quoted value"))
        };
        match ty {
            "u8" => check_value(num::<u8>(v, &desc), &bytes, &desc),
            "i8" => check_value(num::<i8>(v, &desc), &bytes, &desc),
            "bool" => check_value(num::<bool>(v, &desc), &bytes, &desc),
            "u16" => check_value(num::<u16>(v, &desc), &bytes, &desc),
            "u32" => check_value(num::<u32>(v, &desc), &bytes, &desc),
            "u64" => check_value(num::<u64>(v, &desc), &bytes, &desc),
            "u128" => check_value(num::<u128>(v, &desc), &bytes, &desc),
            "i16" => check_value(num::<i16>(v, &desc), &bytes, &desc),
            "i32" => check_value(num::<i32>(v, &desc), &bytes, &desc),
            "i64" => check_value(num::<i64>(v, &desc), &bytes, &desc),
            "f32" => check_value(num::<f32>(v, &desc), &bytes, &desc),
            "f64" => check_value(num::<f64>(v, &desc), &bytes, &desc),
            "char" => check_value(num::<char>(quoted('\''), &desc), &bytes, &desc),
            "string" => check_value(quoted('"').to_owned(), &bytes, &desc),
            "Option<u16>" => {
                let value = match v {
                    "None" => None,
                    _ => Some(num::<u16>(
                        v.strip_prefix("Some(")
                            .and_then(|s| s.strip_suffix(')'))
                            .unwrap_or_else(|| panic!("row {desc}: expected Some(n)")),
                        &desc,
                    )),
                };
                check_value(value, &bytes, &desc);
            }
            "Vec<u8>" => {
                let inner = v
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .unwrap_or_else(|| panic!("row {desc}: expected [a, b, …]"));
                let value: Vec<u8> = inner
                    .split(',')
                    .map(|s| num::<u8>(s.trim(), &desc))
                    .collect();
                check_value(value, &bytes, &desc);
            }
            "()" => {
                assert_eq!(v, "()", "row {desc}");
                check_value((), &bytes, &desc);
            }
            other => panic!("row {desc}: type {other} is not supported by this test"),
        }
    }
}

#[test]
fn limits_table_matches_the_defaults() {
    // `Limits` is non-exhaustive; its Debug output lists every field.
    let debug = format!("{:?}", Limits::default());
    let fields = debug
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .expect("Limits debug output")
        .0;
    let code: BTreeMap<String, u64> = fields
        .split(',')
        .map(|f| {
            let (name, value) = f.split_once(':').expect("name: value");
            (
                name.trim().to_owned(),
                value.trim().parse().expect("number"),
            )
        })
        .collect();
    let documented: BTreeMap<String, u64> = table("limits")
        .iter()
        .map(|row| {
            let digits: String = row[1].chars().take_while(char::is_ascii_digit).collect();
            let value = digits
                .parse()
                .unwrap_or_else(|_| panic!("limits row {row:?}: no default"));
            (unquote(&row[0]).to_owned(), value)
        })
        .collect();
    assert_eq!(documented, code);
}

/// `(code, name)` rows of a code table.
fn code_table(name: &str) -> BTreeMap<u16, String> {
    table(name)
        .iter()
        .map(|row| {
            let code = row[0]
                .parse()
                .unwrap_or_else(|_| panic!("{name} row {row:?}: bad code"));
            (code, unquote(&row[1]).to_owned())
        })
        .collect()
}

/// Every code the type knows, named as its `Display` names it.
fn known_codes<C: ToString>(from_u16: impl Fn(u16) -> Option<C>) -> BTreeMap<u16, String> {
    (0..=u16::MAX)
        .filter_map(|v| {
            let shown = from_u16(v)?.to_string();
            let name = shown.split(" (").next().unwrap_or_default().to_owned();
            Some((v, name))
        })
        .collect()
}

#[test]
fn code_tables_are_complete_and_match() {
    let close = known_codes(|v| match CloseCode::from_u16(v) {
        CloseCode::Other(_) => None,
        c => Some(c),
    });
    assert_eq!(code_table("close-codes"), close);
    let reject = known_codes(|v| match RejectCode::from_u16(v) {
        RejectCode::Other(_) => None,
        c => Some(c),
    });
    assert_eq!(code_table("reject-codes"), reject);
}

/// The variant name of a client message; exhaustive, so a new variant fails
/// to compile here until the tag table and this test know it.
fn client_name(m: &Client) -> &'static str {
    match m {
        ClientMessage::Hello(_) => "Hello",
        ClientMessage::Inputs(_) => "Inputs",
        ClientMessage::Ack { .. } => "Ack",
        ClientMessage::Ping { .. } => "Ping",
        ClientMessage::Pong { .. } => "Pong",
        ClientMessage::Leave => "Leave",
        ClientMessage::GameMessage(_) => "GameMessage",
    }
}

/// The variant name of a server message (exhaustive, like [`client_name`]).
fn server_name(m: &Server<'_>) -> &'static str {
    match m {
        ServerMessage::Welcome(_) => "Welcome",
        ServerMessage::Reject(_) => "Reject",
        ServerMessage::Snapshot(_) => "Snapshot",
        ServerMessage::Events(_) => "Events",
        ServerMessage::Ping { .. } => "Ping",
        ServerMessage::Pong { .. } => "Pong",
        ServerMessage::Close(_) => "Close",
    }
}

fn tag_table(name: &str) -> BTreeMap<u8, String> {
    table(name)
        .iter()
        .map(|row| {
            let tag = row[0]
                .parse()
                .unwrap_or_else(|_| panic!("{name} row {row:?}: bad tag"));
            (tag, unquote(&row[1]).to_owned())
        })
        .collect()
}

#[test]
fn message_tag_tables_match_the_encoder() {
    let clients = [
        hello(),
        inputs(),
        ack(),
        ClientMessage::Ping { nonce: 1 },
        ClientMessage::Pong { nonce: 1 },
        ClientMessage::Leave,
        game_message(),
    ];
    let client_tags: BTreeMap<u8, String> = clients
        .iter()
        .map(|m| (m.to_bytes().unwrap()[0], client_name(m).to_owned()))
        .collect();
    assert_eq!(tag_table("client-tags"), client_tags);

    let snapshot = encode("snapshot-full");
    let servers = [
        welcome(),
        reject(),
        Server::decode(&snapshot, &Limits::default()).unwrap(),
        events(),
        ServerMessage::Ping { nonce: 1 },
        ServerMessage::Pong { nonce: 1 },
        close(),
    ];
    let server_tags: BTreeMap<u8, String> = servers
        .iter()
        .map(|m| (m.to_bytes().unwrap()[0], server_name(m).to_owned()))
        .collect();
    assert_eq!(tag_table("server-tags"), server_tags);
}
