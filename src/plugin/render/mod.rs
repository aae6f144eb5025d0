//! Pure renderers: an Incident (and its Events) in, text out. No IO, no clock: the caller passes
//! the width, whether to colour and "now", so golden tests pin the output exactly.
//!
//! - [`style`]: colour on a terminal, plain text otherwise.
//! - [`text`]: cleaning untrusted text, wrapping, durations, money.
//! - [`story`]: the `show` screen.
//! - [`table`]: the `list` table.

pub mod story;
pub mod style;
pub mod table;
pub mod text;

use std::io::IsTerminal;

use super::GlobalArgs;
pub use style::Painter;

/// Width when neither `--width`, COLUMNS nor a terminal says.
pub const DEFAULT_WIDTH: usize = 100;
/// Narrowest layout the renderers support.
pub const MIN_WIDTH: usize = 40;

/// `--color`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How to render: fixed before anything is drawn.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub width: usize,
    pub painter: Painter,
    pub now: jiff::Timestamp,
}

impl RenderOptions {
    /// From the flags and the environment: `--width`, else COLUMNS, else the terminal's width;
    /// colour per `--color` (auto: stdout is a terminal and NO_COLOR is unset or empty).
    pub fn from_environment(global: &GlobalArgs) -> RenderOptions {
        let stdout = std::io::stdout();
        let width = global
            .width
            .map(usize::from)
            .or_else(|| {
                std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.trim().parse::<usize>().ok())
            })
            .or_else(|| terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0)))
            .unwrap_or(DEFAULT_WIDTH)
            .max(MIN_WIDTH);
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout.is_terminal() && !no_color,
        };
        RenderOptions {
            width,
            painter: Painter::new(colour),
            now: global.now.unwrap_or_else(jiff::Timestamp::now),
        }
    }

    /// Plain text at `width`, rendered as of `now`: what tests use.
    pub fn plain(width: usize, now: jiff::Timestamp) -> RenderOptions {
        RenderOptions {
            width: width.max(MIN_WIDTH),
            painter: Painter::new(false),
            now,
        }
    }
}
