//! `kubectl incident approve NAME` / `reject NAME`: the decision on a proposed remediation plan,
//! through the approval module's library call ([`crate::approval::command::decide_plan`], the same
//! one `incident-operator approve` uses) with the user's own kubeconfig identity.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::error::{Target, classify};
use super::{GlobalArgs, PluginError};
use crate::approval::command::{CommandError, DecisionRequest, decide_plan, render};
use crate::plan::Decision;

#[derive(Args, Debug)]
pub struct DecideArgs {
    /// The Incident whose plan is decided.
    pub name: String,
    /// Why: kept in the IncidentApproval and the Incident's status.
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
}

pub async fn run(
    global: &GlobalArgs,
    args: &DecideArgs,
    decision: Decision,
    out: &mut impl Write,
) -> Result<ExitCode, PluginError> {
    let connection = Connection::open(global).await?;
    let request = DecisionRequest {
        namespace: connection.namespace.clone(),
        incident: args.name.clone(),
        decision,
        comment: args.comment.clone(),
    };
    let decided = decide_plan(&connection.client, &request)
        .await
        .map_err(|e| decision_error(e, &connection, &args.name))?;
    out.write_all(render(&decided).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// API failures worded like every other plugin error; refusals (no plan, expired, already
/// decided) as the approval module says them.
fn decision_error(error: CommandError, connection: &Connection, name: &str) -> PluginError {
    let server = &connection.server;
    match error {
        CommandError::GetIncident { source, .. } => classify(
            source,
            server,
            Target::Incident {
                namespace: &connection.namespace,
                name,
            },
        ),
        CommandError::WhoAmI(source) | CommandError::Create(source) => {
            classify(source, server, Target::Other)
        }
        other => PluginError::Decision(crate::errors::error_chain(&other)),
    }
}
