//! Interest management: which entities a player is told about.

use glam::Vec2;

/// How far a player sees (and is sent entities), in world units.
pub const VIEW_RADIUS: f32 = 900.0;

/// Whether an entity at `target` is within [`VIEW_RADIUS`] of a viewer at
/// `viewer` (the server's visibility hook). Non-finite positions are never in
/// view.
///
/// ```
/// use arena::{in_view, VIEW_RADIUS};
/// use glam::Vec2;
/// assert!(in_view(Vec2::ZERO, Vec2::new(VIEW_RADIUS, 0.0)));
/// assert!(!in_view(Vec2::ZERO, Vec2::new(VIEW_RADIUS + 1.0, 0.0)));
/// ```
#[must_use]
pub fn in_view(viewer: Vec2, target: Vec2) -> bool {
    within(viewer, target, VIEW_RADIUS)
}

/// Whether `target` is within `radius` of `viewer`: [`in_view`] with another
/// radius (a server started with `arena-server --view-radius`). Non-finite
/// positions are never within.
///
/// ```
/// use arena::within;
/// use glam::Vec2;
/// assert!(within(Vec2::ZERO, Vec2::new(0.0, 125.0), 125.0));
/// assert!(!within(Vec2::ZERO, Vec2::new(0.0, 126.0), 125.0));
/// ```
#[must_use]
pub fn within(viewer: Vec2, target: Vec2, radius: f32) -> bool {
    viewer.distance_squared(target) <= radius * radius
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_is_a_disc() {
        let v = Vec2::new(100.0, 100.0);
        assert!(in_view(v, v));
        assert!(in_view(v, v + Vec2::new(600.0, 600.0)));
        assert!(!in_view(v, v + Vec2::new(700.0, 700.0)));
        assert!(!in_view(v, Vec2::new(f32::NAN, 0.0)));
        assert!(!in_view(v, Vec2::INFINITY));
    }

    #[test]
    fn a_smaller_radius_sees_less() {
        let v = Vec2::new(100.0, 100.0);
        assert!(within(v, v + Vec2::new(80.0, 80.0), 125.0));
        assert!(!within(v, v + Vec2::new(90.0, 90.0), 125.0));
        assert!(!within(v, Vec2::new(f32::NAN, 0.0), 125.0));
    }
}
