//! How the window's text looks: the type sizes, and the fonts behind them. egui's own fonts
//! cover Latin, Greek and Cyrillic only, so a chat line in Chinese or with an emoji showed empty
//! boxes (issue 21, defect 4); here the emoji come from egui's monochrome emoji fonts (built in,
//! the same on every machine) and every other script from the system's fonts, found through
//! fontconfig when a character first needs one.

use std::sync::Arc;

use eframe::egui::{self, FontFamily, FontId, TextStyle};

/// Body text in points: readable at arm's length on a laptop (egui's default is 13).
pub const BODY_SIZE: f32 = 16.0;

/// Sets the type sizes and adds the system's fonts as the last fallback. Idempotent in effect,
/// but each call adds a provider: call it once per context (`App` does, on its first frame).
pub fn install(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (
                TextStyle::Small,
                FontId::new(13.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Body,
                FontId::new(BODY_SIZE, FontFamily::Proportional),
            ),
            (
                TextStyle::Button,
                FontId::new(BODY_SIZE, FontFamily::Proportional),
            ),
            (
                TextStyle::Heading,
                FontId::new(24.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Monospace,
                FontId::new(15.0, FontFamily::Monospace),
            ),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(10.0, 8.0);
        style.spacing.button_padding = egui::vec2(10.0, 5.0);
        style.spacing.interact_size.y = 28.0;
    });
    // Enumerates the system's fonts on a thread of its own; a character no built-in font has
    // waits for that (a few hundred ms, once), then gets the font fontconfig names for its script.
    ctx.add_font_provider(Arc::new(
        egui_system_font_provider::SystemFontProvider::new(),
    ));
}
