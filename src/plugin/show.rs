//! `kubectl incident show NAME`: reads the Incident and its Events, renders the story screen.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::render::{RenderOptions, story};
use super::{GlobalArgs, PluginError};

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The Incident.
    pub name: String,
}

pub async fn run(
    global: &GlobalArgs,
    args: &ShowArgs,
    options: &RenderOptions,
    out: &mut impl Write,
) -> Result<ExitCode, PluginError> {
    let connection = Connection::open(global).await?;
    let incident = connection.incident(&args.name).await?;
    // Events are context, not the story: without permission to list them the rest still shows.
    let events = connection.recent_events(&incident).await;
    let view = match &events {
        Ok(events) => story::EventsView::Events(events),
        Err(e) => story::EventsView::Unavailable(e.to_string()),
    };
    out.write_all(story::render(&incident, view, options).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
