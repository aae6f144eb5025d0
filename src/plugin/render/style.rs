//! Colour, only where it helps and only on a terminal: headings bold, phases and exit codes by
//! how good they are. With colour off every function returns its text unchanged, so width
//! computations on the plain text hold for the coloured one.

use anstyle::{AnsiColor, Style};

use crate::incident::{Outcome, Phase};

/// Paints text with ANSI styles, or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Painter {
    colour: bool,
}

/// How good a value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Waiting,
    Bad,
    Quiet,
}

impl Painter {
    pub fn new(colour: bool) -> Painter {
        Painter { colour }
    }

    pub fn colour(&self) -> bool {
        self.colour
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    /// A section heading.
    pub fn heading(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    /// A label before a value.
    pub fn label(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    pub fn tone(&self, tone: Tone, text: &str) -> String {
        let style = match tone {
            Tone::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Tone::Waiting => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Tone::Bad => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Quiet => Style::new().dimmed(),
        };
        self.paint(style, text)
    }
}

/// The tone of a phase.
pub fn phase_tone(phase: Option<Phase>) -> Tone {
    match phase {
        Some(Phase::Completed) => Tone::Good,
        Some(Phase::Failed) => Tone::Bad,
        Some(_) => Tone::Waiting,
        None => Tone::Quiet,
    }
}

/// The tone of an outcome.
pub fn outcome_tone(outcome: Option<Outcome>) -> Tone {
    match outcome {
        Some(Outcome::Reported) => Tone::Good,
        Some(Outcome::LimitReached | Outcome::ApprovalExpired | Outcome::Rejected) => Tone::Waiting,
        Some(Outcome::Refused | Outcome::Error) => Tone::Bad,
        None => Tone::Quiet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_colour_means_the_text_unchanged() {
        let plain = Painter::new(false);
        assert_eq!(plain.heading("Report"), "Report");
        assert_eq!(plain.tone(Tone::Bad, "exit 1"), "exit 1");
        let colour = Painter::new(true);
        let bold = colour.heading("Report");
        assert!(bold.starts_with('\u{1b}') && bold.contains("Report") && bold.ends_with('m'));
    }
}
