//! Keyboard and mouse state → the arena's [`PlayerInput`].
//!
//! WASD and the arrow keys move, the left mouse button or Space fires, and
//! the aim follows the pointer. Keys are matched by `KeyboardEvent.code`
//! (the physical key), so WASD works on every keyboard layout.

use arena::{PlayerInput, buttons};
use glam::Vec2;
use tickwire_shared::quantize::Angle16;

/// The button bit a key code controls, if any.
#[must_use]
pub fn key_bit(code: &str) -> Option<u8> {
    Some(match code {
        "KeyW" | "ArrowUp" => buttons::UP,
        "KeyS" | "ArrowDown" => buttons::DOWN,
        "KeyA" | "ArrowLeft" => buttons::LEFT,
        "KeyD" | "ArrowRight" => buttons::RIGHT,
        "Space" => buttons::FIRE,
        _ => return None,
    })
}

/// What the player is holding and pointing at.
#[derive(Debug, Clone, Default)]
pub struct InputState {
    keys: u8,
    mouse_fire: bool,
    /// A press seen since the last sampled input, so a click shorter than a
    /// tick still fires.
    fire_latched: bool,
    pointer: Option<Vec2>,
}

impl InputState {
    /// A key went down (`true`) or up; returns true when the key is a game
    /// key (the page should not scroll for it).
    pub fn key(&mut self, code: &str, down: bool) -> bool {
        let Some(bit) = key_bit(code) else {
            return false;
        };
        if down {
            self.keys |= bit;
        } else {
            self.keys &= !bit;
        }
        true
    }

    /// The primary mouse button went down or up.
    pub fn mouse_button(&mut self, down: bool) {
        self.mouse_fire = down;
        self.fire_latched |= down;
    }

    /// Samples this tick's buttons (held, plus a click since the last
    /// sample) and clears the click latch.
    pub fn take_buttons(&mut self) -> u8 {
        let b = self.buttons() | if self.fire_latched { buttons::FIRE } else { 0 };
        self.fire_latched = false;
        b
    }

    /// The pointer moved to `screen` (CSS pixels in the canvas).
    pub fn pointer(&mut self, screen: Vec2) {
        self.pointer = Some(screen);
    }

    /// Where the pointer is, in CSS pixels.
    #[must_use]
    pub fn pointer_position(&self) -> Option<Vec2> {
        self.pointer
    }

    /// Everything released (the window lost focus).
    pub fn release_all(&mut self) {
        self.keys = 0;
        self.mouse_fire = false;
        self.fire_latched = false;
    }

    /// The held buttons.
    #[must_use]
    pub fn buttons(&self) -> u8 {
        self.keys | if self.mouse_fire { buttons::FIRE } else { 0 }
    }

    /// This tick's input: the held buttons and the aim from `from` (the
    /// player, in world units) towards `target` (the pointer, in world
    /// units); without a pointer the aim stays `previous`.
    #[must_use]
    pub fn to_input(&mut self, from: Vec2, target: Option<Vec2>, previous: Angle16) -> PlayerInput {
        let aim = match target.map(|t| t - from) {
            Some(d) if d.length_squared() > 1e-6 => Angle16::from_radians(d.y.atan2(d.x)),
            _ => previous,
        };
        PlayerInput {
            buttons: self.take_buttons(),
            aim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_mouse_map_to_buttons() {
        let mut s = InputState::default();
        assert!(s.key("KeyW", true));
        assert!(s.key("ArrowRight", true));
        assert!(!s.key("KeyQ", true));
        assert_eq!(s.buttons(), buttons::UP | buttons::RIGHT);
        s.mouse_button(true);
        assert_eq!(s.buttons(), buttons::UP | buttons::RIGHT | buttons::FIRE);
        s.key("KeyW", false);
        s.mouse_button(false);
        assert_eq!(s.buttons(), buttons::RIGHT);
        s.release_all();
        assert_eq!(s.buttons(), 0);
    }

    #[test]
    fn a_click_shorter_than_a_tick_still_fires_once() {
        let mut s = InputState::default();
        s.mouse_button(true);
        s.mouse_button(false);
        assert_eq!(s.take_buttons(), buttons::FIRE, "the click is latched");
        assert_eq!(s.take_buttons(), 0, "and fires once");
    }

    #[test]
    fn aim_points_at_the_pointer_with_y_down() {
        let mut s = InputState::default();
        let from = Vec2::new(100.0, 100.0);
        let down = s.to_input(from, Some(Vec2::new(100.0, 200.0)), Angle16(0));
        assert_eq!(down.aim, Angle16(16_384));
        let left = s.to_input(from, Some(Vec2::new(0.0, 100.0)), Angle16(0));
        assert_eq!(left.aim, Angle16(32_768));
        let same = s.to_input(from, Some(from), Angle16(77));
        assert_eq!(same.aim, Angle16(77));
    }
}
