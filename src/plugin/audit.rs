//! `kubectl incident audit NAME [--follow] [-o json|jsonl]`: the complete audit through the
//! aggregated audit API ([`crate::audit_api`]), as the kubeconfig's user — so whoever may get the
//! Incident reads it, with no PVC access. The body is copied to stdout as it arrives; `--follow`
//! keeps printing while the session runs and ends when it does.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::{GlobalArgs, PluginError};
use crate::audit_api::fetch::{AuditFormat, AuditRequest, copy_audit};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The Incident.
    pub name: String,
    /// Keep printing records while the session runs; ends when it does.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// `jsonl`: the records as on disk, one a line; `json`: one IncidentAudit object.
    #[arg(long, short = 'o', value_enum, default_value_t = AuditFormat::Jsonl)]
    pub output: AuditFormat,
}

pub async fn run(
    global: &GlobalArgs,
    args: &AuditArgs,
    out: &mut impl Write,
) -> Result<ExitCode, PluginError> {
    let connection = Connection::open(global).await?;
    let request = AuditRequest {
        namespace: connection.namespace.clone(),
        name: args.name.clone(),
        format: args.output,
        follow: args.follow,
    };
    copy_audit(&connection.client, &request, out).await?;
    Ok(ExitCode::SUCCESS)
}
