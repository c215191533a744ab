//! Player names and chat lines: untrusted text made safe to show and bounded
//! in size before it enters the world or the kill feed.

use crate::{BOT_ID_BASE, is_bot};

/// The longest player name, in characters.
pub const MAX_NAME_CHARS: usize = 16;
/// The longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 160;

/// A displayable name: control and bidi-override characters dropped (so a
/// name cannot reorder the kill feed around it), runs of whitespace
/// collapsed to one space, trimmed, at most [`MAX_NAME_CHARS`] characters.
/// May be empty (then [`ArenaSim::add_player`](crate::ArenaSim::add_player)
/// picks a default).
///
/// ```
/// assert_eq!(arena::sanitize_name("  ada\n\u{7}  lovelace "), "ada lovelace");
/// assert_eq!(arena::sanitize_name(&"x".repeat(100)).chars().count(), arena::MAX_NAME_CHARS);
/// ```
#[must_use]
pub fn sanitize_name(raw: &str) -> String {
    clean(raw, MAX_NAME_CHARS)
}

/// A displayable chat line, cleaned like [`sanitize_name`] and cut at
/// [`MAX_CHAT_CHARS`] characters. Empty when nothing printable is left; the
/// server should drop such a line.
#[must_use]
pub fn sanitize_chat(raw: &str) -> String {
    clean(raw, MAX_CHAT_CHARS)
}

/// The name of a player who did not give a usable one.
pub(crate) fn default_name(client: u32) -> String {
    if is_bot(client) {
        format!("bot-{}", client - BOT_ID_BASE)
    } else {
        format!("player-{client}")
    }
}

/// Reads at most `max` kept characters' worth of `raw`, so the work is
/// bounded by the output, not the input.
fn clean(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = kept > 0;
        } else if !c.is_control() && !is_bidi_control(c) {
            if kept + usize::from(pending_space) >= max {
                break;
            }
            if pending_space {
                out.push(' ');
                kept += 1;
                pending_space = false;
            }
            out.push(c);
            kept += 1;
        }
    }
    out
}

/// Unicode's explicit directional formatting characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_bounded() {
        assert_eq!(sanitize_name(""), "");
        assert_eq!(sanitize_name(" \t\r\n\u{0}"), "");
        assert_eq!(sanitize_name("a\u{202e}b\u{2066}"), "ab");
        assert_eq!(sanitize_name("a\u{1b}[31mb"), "a[31mb");
        assert_eq!(sanitize_name("ab   cd  "), "ab cd");
        let long = sanitize_name(&"é".repeat(1000));
        assert_eq!(long.chars().count(), MAX_NAME_CHARS);
        // A space is never left dangling at the cut.
        assert_eq!(sanitize_name("abcdefghijklmno pq"), "abcdefghijklmno");
        assert_eq!(
            sanitize_chat(&"gg ".repeat(500)).chars().count(),
            MAX_CHAT_CHARS
        );
    }

    #[test]
    fn default_names() {
        assert_eq!(default_name(7), "player-7");
        assert_eq!(default_name(BOT_ID_BASE + 2), "bot-2");
    }
}
