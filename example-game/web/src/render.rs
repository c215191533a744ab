//! Drawing the arena on a 2D canvas.
//!
//! [`Camera`] maps world units (x right, y down, the arena spanning
//! `(0, 0)..size`) to CSS pixels: it fits the whole arena when that keeps
//! players readable, and otherwise follows the local player at a readable
//! zoom, clamped to the arena's edges. [`Renderer`] draws a [`Scene`] that the
//! client filled for this frame; it holds no game state.

use glam::Vec2;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, Window};

/// Empty space kept around the arena when it fits, in CSS pixels.
const MARGIN_PX: f32 = 24.0;
/// Players are never drawn smaller than this radius, in CSS pixels: when
/// the whole arena would make them smaller, the camera zooms in and follows.
const MIN_PLAYER_PX: f32 = 10.0;

/// The page's colours: a dark palette with one accent.
mod palette {
    pub(super) const BACKGROUND: &str = "#0b0e13";
    pub(super) const FLOOR: &str = "#11161d";
    pub(super) const GRID: &str = "#18202a";
    pub(super) const BORDER: &str = "#2a3543";
    pub(super) const WALL: &str = "#1d2531";
    pub(super) const WALL_EDGE: &str = "#334155";
    pub(super) const TEXT: &str = "#d8dee9";
    pub(super) const MUTED: &str = "#6b778a";
    pub(super) const ACCENT: &str = "#2ee6a6";
    pub(super) const OTHER: &str = "#9fb0c3";
    pub(super) const OTHER_EDGE: &str = "#5d6b7d";
    pub(super) const SHOT: &str = "#f1f5f9";
    pub(super) const BAR_BACK: &str = "#262f3b";
    pub(super) const DANGER: &str = "#ef5b5b";
}

/// World ↔ screen mapping for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// The world point at the centre of the view.
    pub center: Vec2,
    /// CSS pixels per world unit.
    pub scale: f32,
    /// The view size in CSS pixels.
    pub view: Vec2,
}

impl Camera {
    /// The camera for a `view`-sized canvas showing an arena of `arena`
    /// size, following `focus` when the whole arena would be too small.
    #[must_use]
    pub fn follow(view: Vec2, focus: Option<Vec2>, arena: Vec2, player_radius: f32) -> Self {
        let view = view.max(Vec2::ONE);
        let usable = (view - Vec2::splat(2.0 * MARGIN_PX)).max(Vec2::ONE);
        let fit = (usable.x / arena.x).min(usable.y / arena.y);
        let readable = MIN_PLAYER_PX / player_radius.max(f32::EPSILON);
        let scale = fit.max(readable);
        let half = view / (2.0 * scale);
        let focus = focus.unwrap_or(arena / 2.0);
        let axis = |f: f32, half: f32, size: f32| {
            if 2.0 * half >= size {
                size / 2.0
            } else {
                f.clamp(half, size - half)
            }
        };
        Self {
            center: Vec2::new(
                axis(focus.x, half.x, arena.x),
                axis(focus.y, half.y, arena.y),
            ),
            scale,
            view,
        }
    }

    /// A world point in CSS pixels.
    #[must_use]
    pub fn to_screen(&self, world: Vec2) -> Vec2 {
        (world - self.center) * self.scale + self.view / 2.0
    }

    /// A CSS pixel position in world units.
    #[must_use]
    pub fn to_world(&self, screen: Vec2) -> Vec2 {
        (screen - self.view / 2.0) / self.scale + self.center
    }
}

/// A player to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerSprite {
    /// Where.
    pub pos: Vec2,
    /// Aim, radians.
    pub angle: f32,
    /// Display name.
    pub name: std::sync::Arc<str>,
    /// Health in `[0, 1]`.
    pub health: f32,
    /// False while waiting to respawn.
    pub alive: bool,
    /// The local player.
    pub is_me: bool,
}

/// A projectile to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShotSprite {
    /// Where.
    pub pos: Vec2,
    /// Heading, radians.
    pub angle: f32,
    /// Fired by the local player.
    pub mine: bool,
}

/// Everything one frame shows. The client refills it every frame.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The camera.
    pub camera: Camera,
    /// Arena size in world units.
    pub arena: Vec2,
    /// Walls as `(min, max)` corners.
    pub walls: Vec<(Vec2, Vec2)>,
    /// Players, local one last.
    pub players: Vec<PlayerSprite>,
    /// Projectiles.
    pub shots: Vec<ShotSprite>,
    /// Player radius in world units.
    pub player_radius: f32,
    /// Projectile radius in world units.
    pub shot_radius: f32,
    /// A large centred message ("Respawning…"), if any.
    pub notice: Option<String>,
}

/// Draws scenes on one canvas.
#[derive(Debug)]
pub struct Renderer {
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    css_size: Vec2,
    dpr: f64,
}

impl Renderer {
    /// A renderer for `canvas`.
    ///
    /// # Errors
    /// When the canvas has no 2D context.
    pub fn new(canvas: HtmlCanvasElement) -> Result<Self, JsValue> {
        let ctx = canvas
            .get_context("2d")?
            .ok_or_else(|| JsValue::from_str("the canvas has no 2d context"))?
            .dyn_into::<CanvasRenderingContext2d>()?;
        Ok(Self {
            canvas,
            ctx,
            css_size: Vec2::ZERO,
            dpr: 1.0,
        })
    }

    /// Matches the backing store to the window size and pixel ratio; returns
    /// the view size in CSS pixels.
    pub fn fit_to(&mut self, window: &Window) -> Vec2 {
        let w = window
            .inner_width()
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(800.0);
        let h = window
            .inner_height()
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(600.0);
        let dpr = window.device_pixel_ratio().clamp(1.0, 3.0);
        let css = Vec2::new(w as f32, h as f32);
        if css != self.css_size || dpr != self.dpr {
            self.css_size = css;
            self.dpr = dpr;
            self.canvas.set_width((w * dpr).round() as u32);
            self.canvas.set_height((h * dpr).round() as u32);
        }
        css
    }

    /// Draws `scene`.
    ///
    /// # Errors
    /// When the canvas refuses a call (it does not in practice).
    pub fn draw(&self, scene: &Scene) -> Result<(), JsValue> {
        let ctx = &self.ctx;
        let cam = &scene.camera;
        ctx.set_transform(self.dpr, 0.0, 0.0, self.dpr, 0.0, 0.0)?;
        ctx.set_fill_style_str(palette::BACKGROUND);
        ctx.fill_rect(0.0, 0.0, f64::from(cam.view.x), f64::from(cam.view.y));

        self.draw_floor(scene)?;
        for &(min, max) in &scene.walls {
            let a = cam.to_screen(min);
            let b = cam.to_screen(max);
            ctx.set_fill_style_str(palette::WALL);
            ctx.fill_rect(
                f64::from(a.x),
                f64::from(a.y),
                f64::from(b.x - a.x),
                f64::from(b.y - a.y),
            );
            ctx.set_stroke_style_str(palette::WALL_EDGE);
            ctx.set_line_width(1.0);
            ctx.stroke_rect(
                f64::from(a.x) + 0.5,
                f64::from(a.y) + 0.5,
                f64::from(b.x - a.x) - 1.0,
                f64::from(b.y - a.y) - 1.0,
            );
        }
        for shot in &scene.shots {
            self.draw_shot(scene, shot)?;
        }
        for p in &scene.players {
            self.draw_player(scene, p)?;
        }
        if let Some(notice) = &scene.notice {
            ctx.set_font("600 20px ui-sans-serif, system-ui, sans-serif");
            ctx.set_text_align("center");
            ctx.set_text_baseline("middle");
            ctx.set_fill_style_str(palette::TEXT);
            ctx.fill_text(
                notice,
                f64::from(cam.view.x / 2.0),
                f64::from(cam.view.y * 0.3),
            )?;
        }
        Ok(())
    }

    fn draw_floor(&self, scene: &Scene) -> Result<(), JsValue> {
        let ctx = &self.ctx;
        let cam = &scene.camera;
        let a = cam.to_screen(Vec2::ZERO);
        let b = cam.to_screen(scene.arena);
        ctx.set_fill_style_str(palette::FLOOR);
        ctx.fill_rect(
            f64::from(a.x),
            f64::from(a.y),
            f64::from(b.x - a.x),
            f64::from(b.y - a.y),
        );
        // A grid every four player radii, only where visible.
        let step = (scene.player_radius * 4.0).max(1.0);
        let lo = cam.to_world(Vec2::ZERO).max(Vec2::ZERO);
        let hi = cam.to_world(cam.view).min(scene.arena);
        ctx.begin_path();
        let mut x = (lo.x / step).ceil() * step;
        while x < hi.x {
            let s = cam.to_screen(Vec2::new(x, 0.0)).x.round() + 0.5;
            ctx.move_to(f64::from(s), f64::from(a.y));
            ctx.line_to(f64::from(s), f64::from(b.y));
            x += step;
        }
        let mut y = (lo.y / step).ceil() * step;
        while y < hi.y {
            let s = cam.to_screen(Vec2::new(0.0, y)).y.round() + 0.5;
            ctx.move_to(f64::from(a.x), f64::from(s));
            ctx.line_to(f64::from(b.x), f64::from(s));
            y += step;
        }
        ctx.set_stroke_style_str(palette::GRID);
        ctx.set_line_width(1.0);
        ctx.stroke();
        ctx.set_stroke_style_str(palette::BORDER);
        ctx.set_line_width(2.0);
        ctx.stroke_rect(
            f64::from(a.x),
            f64::from(a.y),
            f64::from(b.x - a.x),
            f64::from(b.y - a.y),
        );
        Ok(())
    }

    fn draw_shot(&self, scene: &Scene, shot: &ShotSprite) -> Result<(), JsValue> {
        let ctx = &self.ctx;
        let cam = &scene.camera;
        let c = cam.to_screen(shot.pos);
        let r = (scene.shot_radius * cam.scale).max(2.0);
        let tail = c - Vec2::from_angle(shot.angle) * r * 3.0;
        let colour = if shot.mine {
            palette::ACCENT
        } else {
            palette::SHOT
        };
        ctx.set_stroke_style_str(colour);
        ctx.set_global_alpha(0.35);
        ctx.set_line_width(f64::from(r));
        ctx.begin_path();
        ctx.move_to(f64::from(tail.x), f64::from(tail.y));
        ctx.line_to(f64::from(c.x), f64::from(c.y));
        ctx.stroke();
        ctx.set_global_alpha(1.0);
        ctx.set_fill_style_str(colour);
        ctx.begin_path();
        ctx.arc(
            f64::from(c.x),
            f64::from(c.y),
            f64::from(r),
            0.0,
            std::f64::consts::TAU,
        )?;
        ctx.fill();
        Ok(())
    }

    fn draw_player(&self, scene: &Scene, p: &PlayerSprite) -> Result<(), JsValue> {
        let ctx = &self.ctx;
        let cam = &scene.camera;
        let c = cam.to_screen(p.pos);
        let r = (scene.player_radius * cam.scale).max(4.0);
        let (fill, edge) = if p.is_me {
            (palette::ACCENT, palette::ACCENT)
        } else {
            (palette::OTHER, palette::OTHER_EDGE)
        };
        ctx.set_global_alpha(if p.alive { 1.0 } else { 0.3 });

        // Aim line.
        if p.alive {
            let tip = c + Vec2::from_angle(p.angle) * r * 1.9;
            ctx.set_stroke_style_str(fill);
            ctx.set_line_width(f64::from((r * 0.28).max(2.0)));
            ctx.set_line_cap("round");
            ctx.begin_path();
            ctx.move_to(f64::from(c.x), f64::from(c.y));
            ctx.line_to(f64::from(tip.x), f64::from(tip.y));
            ctx.stroke();
        }

        ctx.begin_path();
        ctx.arc(
            f64::from(c.x),
            f64::from(c.y),
            f64::from(r),
            0.0,
            std::f64::consts::TAU,
        )?;
        ctx.set_fill_style_str(if p.is_me { palette::FLOOR } else { fill });
        ctx.fill();
        ctx.set_stroke_style_str(edge);
        ctx.set_line_width(if p.is_me { 3.0 } else { 1.5 });
        ctx.stroke();
        if p.is_me {
            ctx.begin_path();
            ctx.arc(
                f64::from(c.x),
                f64::from(c.y),
                f64::from(r * 0.45),
                0.0,
                std::f64::consts::TAU,
            )?;
            ctx.set_fill_style_str(fill);
            ctx.fill();
        }

        // Name and health bar above.
        ctx.set_font(if p.is_me {
            "600 12px ui-sans-serif, system-ui, sans-serif"
        } else {
            "12px ui-sans-serif, system-ui, sans-serif"
        });
        ctx.set_text_align("center");
        ctx.set_text_baseline("bottom");
        ctx.set_fill_style_str(if p.is_me {
            palette::ACCENT
        } else {
            palette::TEXT
        });
        let bar_w = (r * 2.2).max(28.0);
        let bar_y = c.y - r - 8.0;
        ctx.fill_text(&p.name, f64::from(c.x), f64::from(bar_y - 3.0))?;
        if p.alive {
            let x = c.x - bar_w / 2.0;
            ctx.set_fill_style_str(palette::BAR_BACK);
            ctx.fill_rect(f64::from(x), f64::from(bar_y), f64::from(bar_w), 4.0);
            let health = p.health.clamp(0.0, 1.0);
            ctx.set_fill_style_str(if health <= 0.3 {
                palette::DANGER
            } else if p.is_me {
                palette::ACCENT
            } else {
                palette::TEXT
            });
            ctx.fill_rect(
                f64::from(x),
                f64::from(bar_y),
                f64::from(bar_w * health),
                4.0,
            );
        } else {
            ctx.set_fill_style_str(palette::MUTED);
            ctx.fill_text("down", f64::from(c.x), f64::from(c.y + r + 16.0))?;
        }
        ctx.set_global_alpha(1.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARENA: Vec2 = Vec2::new(1600.0, 1000.0);

    #[test]
    fn a_large_window_fits_the_whole_arena_centred() {
        let cam = Camera::follow(
            Vec2::new(1280.0, 800.0),
            Some(Vec2::new(100.0, 100.0)),
            ARENA,
            16.0,
        );
        assert_eq!(cam.center, ARENA / 2.0);
        let tl = cam.to_screen(Vec2::ZERO);
        let br = cam.to_screen(ARENA);
        assert!(tl.x >= 23.9 && tl.y >= 23.9, "{tl}");
        assert!(br.x <= 1256.1 && br.y <= 776.1, "{br}");
        let p = Vec2::new(321.0, 654.0);
        assert!((cam.to_world(cam.to_screen(p)) - p).length() < 1e-3);
    }

    #[test]
    fn a_small_window_follows_the_player_within_the_arena() {
        let view = Vec2::new(390.0, 700.0);
        let cam = Camera::follow(view, Some(Vec2::new(800.0, 500.0)), ARENA, 16.0);
        // Readable: a player is at least 10 px in radius.
        assert!(cam.scale * 16.0 >= 10.0 - 1e-3);
        assert_eq!(cam.center.x, 800.0);
        // Near a corner the view stops at the arena's edge; the arena's
        // height fits, so it is centred vertically.
        let cam = Camera::follow(view, Some(Vec2::new(5.0, 5.0)), ARENA, 16.0);
        let tl = cam.to_screen(Vec2::ZERO);
        assert!(tl.x.abs() < 1e-3, "{tl}");
        let br = cam.to_screen(ARENA);
        assert!((tl.y - (700.0 - br.y)).abs() < 1e-3, "{tl} {br}");
    }
}
