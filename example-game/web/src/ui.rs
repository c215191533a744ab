//! The heads-up display: scoreboard, network overlay, status banner and kill
//! feed. The text is decided by pure functions (tested on the host); [`Hud`]
//! writes it into the page's overlay elements, touching the DOM only when
//! something changed. Names from other players only ever reach the page
//! through `textContent`, never as HTML.

use std::collections::VecDeque;
use std::fmt::Write as _;

use tickwire_shared::{CloseCode, RejectCode};
use wasm_bindgen::JsValue;
use web_sys::{Document, Element};

use tickwire_web::reconnect::Ending;

/// Kill-feed lines shown at once.
pub const FEED_LINES: usize = 5;
/// How long a kill-feed line stays, in milliseconds.
pub const FEED_TTL_MS: f64 = 6000.0;
/// Longest server-provided reason shown, in characters.
const MAX_REASON_CHARS: usize = 120;

pub use tickwire_web::connection::Status;

/// How a banner should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Neutral progress ("Connecting…").
    Info,
    /// Recoverable trouble (retrying).
    Warn,
    /// Needs the player (reload, kicked, refused).
    Error,
}

impl Tone {
    /// The CSS class of the banner for this tone.
    #[must_use]
    pub fn class(self) -> &'static str {
        match self {
            Self::Info => "banner info",
            Self::Warn => "banner warn",
            Self::Error => "banner error",
        }
    }
}

fn clip(reason: &str) -> String {
    let reason = reason.trim();
    if reason.chars().count() <= MAX_REASON_CHARS {
        reason.to_owned()
    } else {
        let mut s: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
        s.push('…');
        s
    }
}

fn with_reason(head: &str, reason: &str) -> String {
    let reason = clip(reason);
    if reason.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {reason}")
    }
}

/// What went wrong, in words, for an ending.
#[must_use]
pub fn ending_text(ending: &Ending) -> String {
    match ending {
        Ending::CannotConnect => "Cannot connect to the server".to_owned(),
        Ending::Lost => "Disconnected".to_owned(),
        Ending::Left => "You left the game".to_owned(),
        Ending::ProtocolError(msg) => with_reason("Protocol error", msg),
        Ending::Rejected { code, message } => match code {
            RejectCode::VersionMismatch | RejectCode::GameMismatch => {
                "Version mismatch — reload the page".to_owned()
            }
            RejectCode::ServerFull | RejectCode::RoomFull => "Server full".to_owned(),
            RejectCode::AuthFailed => with_reason("Name refused", message),
            RejectCode::Banned => with_reason("Banned", message),
            RejectCode::RateLimited => "Too many connection attempts".to_owned(),
            RejectCode::ShuttingDown => "Server restarting".to_owned(),
            _ => with_reason("Refused by the server", message),
        },
        Ending::Closed { code, reason } => match code {
            CloseCode::ServerShutdown => "Server restarting".to_owned(),
            CloseCode::Kicked => with_reason("Kicked", reason),
            CloseCode::Replaced => "This session continues in another tab".to_owned(),
            CloseCode::IdleTimeout => "Disconnected (no traffic)".to_owned(),
            CloseCode::SlowConsumer => "Disconnected (connection too slow)".to_owned(),
            CloseCode::Normal => with_reason("Disconnected", reason),
            _ => with_reason("Disconnected", reason),
        },
    }
}

/// The banner for `status` at `now_ms`, or `None` while playing.
#[must_use]
pub fn banner_text(status: &Status, now_ms: f64) -> Option<(String, Tone)> {
    match status {
        Status::Connected => None,
        Status::Idle => Some(("Enter a name and press Play".to_owned(), Tone::Info)),
        Status::Connecting => Some(("Connecting…".to_owned(), Tone::Info)),
        Status::Waiting {
            ending,
            retry_at_ms,
        } => {
            let secs = ((retry_at_ms - now_ms) / 1000.0).ceil().max(1.0);
            let verb = if matches!(ending, Ending::CannotConnect | Ending::Rejected { .. }) {
                "retrying"
            } else {
                "reconnecting"
            };
            Some((
                format!("{} — {verb} in {secs:.0} s", ending_text(ending)),
                Tone::Warn,
            ))
        }
        Status::Stopped(Ending::Left) => Some((ending_text(&Ending::Left), Tone::Info)),
        Status::Stopped(ending) => Some((ending_text(ending), Tone::Error)),
    }
}

/// One scoreboard line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRow {
    /// The player's name.
    pub name: std::sync::Arc<str>,
    /// Kills.
    pub kills: u16,
    /// Deaths.
    pub deaths: u16,
    /// True for the local player.
    pub is_me: bool,
}

/// Sorts rows: most kills first, then fewest deaths, then by name.
pub fn rank(rows: &mut [ScoreRow]) {
    rows.sort_by(|a, b| {
        b.kills
            .cmp(&a.kills)
            .then(a.deaths.cmp(&b.deaths))
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// Recent kills and chat lines, newest last.
#[derive(Debug, Clone, Default)]
pub struct KillFeed {
    lines: VecDeque<(f64, String)>,
}

impl KillFeed {
    /// An empty feed.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line at `now_ms`; only the newest [`FEED_LINES`] are kept.
    pub fn push(&mut self, now_ms: f64, line: String) {
        if self.lines.len() == FEED_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((now_ms, clip(&line)));
    }

    /// The lines younger than [`FEED_TTL_MS`] at `now_ms`, oldest first.
    pub fn lines(&mut self, now_ms: f64) -> impl Iterator<Item = &str> {
        while self
            .lines
            .front()
            .is_some_and(|(t, _)| now_ms - t >= FEED_TTL_MS)
        {
            self.lines.pop_front();
        }
        self.lines.iter().map(|(_, l)| l.as_str())
    }
}

/// The figures of the network overlay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetFigures {
    /// The transport in use (`webtransport`, `websocket`).
    pub transport: Option<&'static str>,
    /// Smoothed round trip, ms.
    pub rtt_ms: Option<f64>,
    /// Snapshots applied per second.
    pub snapshots_per_sec: f64,
    /// Bytes received per second.
    pub bytes_per_sec: f64,
    /// Newest snapshot tick.
    pub tick: Option<u32>,
    /// Prediction corrections per second.
    pub corrections_per_sec: f64,
    /// Rendered frames per second.
    pub fps: f64,
    /// Interpolation delay, ms.
    pub interp_delay_ms: f64,
}

/// The overlay text: one figure per line, fixed labels so nothing jumps.
#[must_use]
pub fn net_overlay(f: &NetFigures) -> String {
    let mut s = String::new();
    let rtt = f
        .rtt_ms
        .map_or_else(|| "–".to_owned(), |r| format!("{r:.0} ms"));
    let tick = f.tick.map_or_else(|| "–".to_owned(), |t| t.to_string());
    let _ = writeln!(s, "via      {}", f.transport.unwrap_or("–"));
    let _ = writeln!(s, "rtt      {rtt}");
    let _ = writeln!(s, "snaps    {:.0}/s", f.snapshots_per_sec);
    let _ = writeln!(s, "down     {:.1} KB/s", f.bytes_per_sec / 1000.0);
    let _ = writeln!(s, "tick     {tick}");
    let _ = writeln!(s, "interp   {:.0} ms", f.interp_delay_ms);
    let _ = writeln!(s, "fixes    {:.0}/s", f.corrections_per_sec);
    let _ = write!(s, "fps      {:.0}", f.fps);
    s
}

/// Whether a circle overlaps a rectangle given as `[left, top, right,
/// bottom]` (all in the same units).
#[must_use]
pub fn circle_overlaps(rect: [f64; 4], center: (f64, f64), radius: f64) -> bool {
    let [left, top, right, bottom] = rect;
    if right < left || bottom < top {
        return false;
    }
    let dx = center.0 - center.0.clamp(left, right);
    let dy = center.1 - center.1.clamp(top, bottom);
    dx * dx + dy * dy <= radius * radius
}

/// The overlay elements of the page, found by id (`banner`, `net`, `scores`,
/// `feed`); missing ones are skipped.
#[derive(Debug)]
pub struct Hud {
    document: Document,
    banner: Option<Element>,
    net: Option<Element>,
    scores: Option<Element>,
    feed: Option<Element>,
    /// The corner panels that fade while the player is under them, and
    /// whether each is faded now.
    panels: Vec<(Element, bool)>,
    shown_banner: Option<(String, Tone)>,
    shown_net: String,
    shown_scores: Vec<ScoreRow>,
    shown_feed: Vec<String>,
}

impl Hud {
    /// Finds the overlay elements in `document`.
    #[must_use]
    pub fn new(document: Document) -> Self {
        let get = |id| document.get_element_by_id(id);
        Self {
            banner: get("banner"),
            net: get("net"),
            scores: get("scores"),
            feed: get("feed"),
            panels: ["net", "score-panel"]
                .into_iter()
                .filter_map(get)
                .map(|el| (el, false))
                .collect(),
            document,
            shown_banner: Some((String::new(), Tone::Info)),
            shown_net: String::new(),
            shown_scores: Vec::new(),
            shown_feed: Vec::new(),
        }
    }

    /// Shows or hides the banner.
    pub fn set_banner(&mut self, banner: Option<(String, Tone)>) {
        if self.shown_banner == banner {
            return;
        }
        if let Some(el) = &self.banner {
            match &banner {
                Some((text, tone)) => {
                    el.set_text_content(Some(text));
                    el.set_class_name(tone.class());
                }
                None => el.set_class_name("banner hidden"),
            }
        }
        self.shown_banner = banner;
    }

    /// Fades the corner panels that would hide the player's own circle at
    /// `spot` (centre and radius in CSS pixels), so that a player standing
    /// in a corner stays visible; `None` un-fades them all.
    pub fn keep_clear(&mut self, spot: Option<((f64, f64), f64)>) {
        for (el, faded) in &mut self.panels {
            let under = spot.is_some_and(|(center, radius)| {
                let b = el.get_bounding_client_rect();
                circle_overlaps([b.left(), b.top(), b.right(), b.bottom()], center, radius)
            });
            if under != *faded && el.class_list().toggle_with_force("under", under).is_ok() {
                *faded = under;
            }
        }
    }

    /// Replaces the network overlay text.
    pub fn set_net(&mut self, text: &str) {
        if self.shown_net == text {
            return;
        }
        if let Some(el) = &self.net {
            el.set_text_content(Some(text));
        }
        text.clone_into(&mut self.shown_net);
    }

    /// Replaces the scoreboard rows (already ranked).
    ///
    /// # Errors
    /// When the DOM refuses to create elements.
    pub fn set_scores(&mut self, rows: &[ScoreRow]) -> Result<(), JsValue> {
        if self.shown_scores == rows {
            return Ok(());
        }
        if let Some(list) = &self.scores {
            list.set_text_content(None);
            for row in rows {
                let li = self.document.create_element("li")?;
                if row.is_me {
                    li.set_class_name("me");
                }
                for (class, text) in [
                    ("name", row.name.to_string()),
                    ("k", row.kills.to_string()),
                    ("d", row.deaths.to_string()),
                ] {
                    let span = self.document.create_element("span")?;
                    span.set_class_name(class);
                    span.set_text_content(Some(&text));
                    li.append_child(&span)?;
                }
                list.append_child(&li)?;
            }
        }
        self.shown_scores = rows.to_vec();
        Ok(())
    }

    /// Replaces the kill-feed lines.
    ///
    /// # Errors
    /// When the DOM refuses to create elements.
    pub fn set_feed<'a>(&mut self, lines: impl Iterator<Item = &'a str>) -> Result<(), JsValue> {
        let lines: Vec<String> = lines.map(str::to_owned).collect();
        if self.shown_feed == lines {
            return Ok(());
        }
        if let Some(list) = &self.feed {
            list.set_text_content(None);
            for line in &lines {
                let li = self.document.create_element("li")?;
                li.set_text_content(Some(line));
                list.append_child(&li)?;
            }
        }
        self.shown_feed = lines;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circle_overlaps_a_panel_only_when_it_touches_it() {
        let panel = [1000.0, 16.0, 1232.0, 140.0];
        // Inside, beside the edge within the radius, and at a corner.
        assert!(circle_overlaps(panel, (1100.0, 60.0), 10.0));
        assert!(circle_overlaps(panel, (990.0, 60.0), 12.0));
        assert!(circle_overlaps(panel, (995.0, 10.0), 8.0));
        // Clear of it: left of it, below it, and diagonally off the corner.
        assert!(!circle_overlaps(panel, (900.0, 60.0), 50.0));
        assert!(!circle_overlaps(panel, (1100.0, 200.0), 50.0));
        assert!(!circle_overlaps(panel, (990.0, 6.0), 10.0));
        // A collapsed (hidden) panel hides nothing.
        assert!(!circle_overlaps([0.0, 0.0, -1.0, -1.0], (0.0, 0.0), 5.0));
    }

    fn row(name: &str, kills: u16, deaths: u16) -> ScoreRow {
        ScoreRow {
            name: name.into(),
            kills,
            deaths,
            is_me: false,
        }
    }

    #[test]
    fn scoreboard_ranks_kills_then_deaths_then_name() {
        let mut rows = vec![
            row("cy", 3, 5),
            row("bo", 7, 1),
            row("al", 3, 2),
            row("ab", 3, 2),
        ];
        rank(&mut rows);
        let names: Vec<_> = rows.iter().map(|r| &*r.name).collect();
        assert_eq!(names, ["bo", "ab", "al", "cy"]);
    }

    #[test]
    fn banners_say_what_happened_and_when_the_retry_comes() {
        let waiting = |ending| Status::Waiting {
            ending,
            retry_at_ms: 3400.0,
        };
        let text = |s: &Status| banner_text(s, 1000.0).unwrap().0;
        assert_eq!(
            text(&waiting(Ending::CannotConnect)),
            "Cannot connect to the server — retrying in 3 s"
        );
        assert_eq!(
            text(&waiting(Ending::Lost)),
            "Disconnected — reconnecting in 3 s"
        );
        assert_eq!(
            text(&waiting(Ending::Rejected {
                code: RejectCode::ServerFull,
                message: "64 players".into()
            })),
            "Server full — retrying in 3 s"
        );
        let stopped = Status::Stopped(Ending::Rejected {
            code: RejectCode::GameMismatch,
            message: String::new(),
        });
        assert_eq!(
            banner_text(&stopped, 0.0),
            Some(("Version mismatch — reload the page".into(), Tone::Error))
        );
        let kicked = Status::Stopped(Ending::Closed {
            code: CloseCode::Kicked,
            reason: "x".repeat(500),
        });
        assert!(text(&kicked).chars().count() <= 130);
        assert_eq!(banner_text(&Status::Connected, 0.0), None);
        // Never "0 s".
        let due = Status::Waiting {
            ending: Ending::Lost,
            retry_at_ms: 0.0,
        };
        assert!(text(&due).ends_with("in 1 s"));
    }

    #[test]
    fn feed_keeps_the_newest_lines_for_a_while() {
        let mut feed = KillFeed::new();
        for i in 0..7 {
            feed.push(f64::from(i) * 1000.0, format!("line {i}"));
        }
        let lines: Vec<_> = feed.lines(6500.0).map(str::to_owned).collect();
        assert_eq!(lines, ["line 2", "line 3", "line 4", "line 5", "line 6"]);
        assert_eq!(feed.lines(10_500.0).count(), 2);
        assert_eq!(feed.lines(99_000.0).count(), 0);
    }

    #[test]
    fn overlay_has_fixed_labels() {
        let text = net_overlay(&NetFigures {
            transport: Some("webtransport"),
            rtt_ms: Some(41.6),
            snapshots_per_sec: 30.0,
            bytes_per_sec: 12_345.0,
            tick: Some(999),
            corrections_per_sec: 0.0,
            fps: 59.9,
            interp_delay_ms: 66.7,
        });
        assert_eq!(
            text,
            "via      webtransport\nrtt      42 ms\nsnaps    30/s\ndown     12.3 KB/s\ntick     999\n\
             interp   67 ms\nfixes    0/s\nfps      60"
        );
        assert!(net_overlay(&NetFigures::default()).starts_with("via      –\nrtt      –\n"));
    }
}
