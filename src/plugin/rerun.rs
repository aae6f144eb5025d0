//! `kubectl incident rerun NAME`: asks the controller to run the agent again by giving the
//! `sre.agentlab.dev/rerun` annotation a new value, exactly as `kubectl annotate` would
//! (`src/controller/rerun.rs` honours each new value once, when the Incident is finished).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::render::RenderOptions;
use super::{GlobalArgs, PluginError};
use crate::controller::keys::ANNOTATION_RERUN;

#[derive(Args, Debug)]
pub struct RerunArgs {
    /// The Incident.
    pub name: String,
    /// Why, kept in the annotation value after the time (the value only has to be new).
    #[arg(long)]
    pub reason: Option<String>,
}

pub async fn run(
    global: &GlobalArgs,
    args: &RerunArgs,
    options: &RenderOptions,
    out: &mut impl Write,
) -> Result<ExitCode, PluginError> {
    let connection = Connection::open(global).await?;
    let value = rerun_value(options.now, args.reason.as_deref());
    let incident = connection
        .annotate(&args.name, ANNOTATION_RERUN, &value)
        .await?;
    let finished = incident
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_finished());
    let when = if finished {
        "the controller starts a new run"
    } else {
        "the controller starts a new run when the current one finishes"
    };
    writeln!(
        out,
        "incident {}/{} rerun requested ({ANNOTATION_RERUN}={value}): {when}",
        connection.namespace, args.name
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A value the controller has not seen: the request time, and the reason if given.
pub fn rerun_value(now: jiff::Timestamp, reason: Option<&str>) -> String {
    let time = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => format!("{time} {reason}"),
        None => time,
    }
}
