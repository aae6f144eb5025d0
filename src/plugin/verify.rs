//! `kubectl incident verify NAME [--file PATH]`: checks the audit (the `.jsonl`, and optionally
//! the final `.json`) against the chain head and document hash in the Incident's status, with
//! [`crate::audit::verify`]. Without `--file` the records are streamed from the audit API
//! (`incidentaudits/NAME/log`, byte for byte what is on the claim). Exit 0 when intact,
//! [`super::EXIT_TAMPERED`] otherwise.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kube::ResourceExt;

use super::client::Connection;
use super::{EXIT_TAMPERED, GlobalArgs, PluginError};
use crate::audit::verify::{ChainAnchor, DocumentAgreement, StatusAgreement, Verdict, verify};
use crate::audit_api::fetch::{AuditFormat, AuditRequest, open_audit};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The Incident whose status anchors the chain.
    pub name: String,
    /// A local copy of the audit's JSONL records (`<session-id>.jsonl`) [default: fetched
    /// through the audit API].
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The final audit document (`<session-id>.json`), checked against `status.audit.sha256`.
    #[arg(long, value_name = "PATH")]
    pub document: Option<PathBuf>,
}

pub async fn run(
    global: &GlobalArgs,
    args: &VerifyArgs,
    out: &mut impl Write,
) -> Result<ExitCode, PluginError> {
    let connection = Connection::open(global).await?;
    let incident = connection.incident(&args.name).await?;
    let anchor = ChainAnchor::from_status(incident.status.as_ref());
    let document = args.document.as_deref().map(open).transpose()?;
    let verdict = match &args.file {
        Some(file) => verify(BufReader::new(open(file)?), document, &anchor)?,
        None => verify_through_api(&connection, &args.name, document, anchor.clone()).await?,
    };
    let name = format!(
        "{}/{}",
        incident.namespace().unwrap_or_default(),
        incident.name_any()
    );
    out.write_all(describe(&name, &anchor, &verdict).as_bytes())?;
    Ok(if verdict.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_TAMPERED)
    })
}

/// Streams the records from the audit API into the (synchronous) chain check, never holding the
/// whole audit.
async fn verify_through_api(
    connection: &Connection,
    name: &str,
    document: Option<File>,
    anchor: ChainAnchor,
) -> Result<Verdict, PluginError> {
    use futures::TryStreamExt;
    let request = AuditRequest {
        namespace: connection.namespace.clone(),
        name: name.to_string(),
        format: AuditFormat::Jsonl,
        follow: false,
    };
    let body = open_audit(&connection.client, &request)
        .await?
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
    let checked =
        tokio::task::spawn_blocking(move || verify(BufReader::new(reader), document, &anchor))
            .await
            .map_err(|e| PluginError::Encode(format!("the chain check stopped: {e}")))?;
    Ok(checked?)
}

fn open(path: &Path) -> Result<File, PluginError> {
    File::open(path).map_err(|source| PluginError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// The verdict as a few lines: the answer first, then what agreed and what did not.
pub fn describe(name: &str, anchor: &ChainAnchor, verdict: &Verdict) -> String {
    let answer = if verdict.is_intact() {
        "intact"
    } else if verdict.finding.is_none() && verdict.status == StatusAgreement::NotRecorded {
        "UNVERIFIED"
    } else {
        "TAMPERED"
    };
    let session = anchor.session_id.as_deref().unwrap_or("unknown session");
    let mut lines = vec![format!("audit of {name} ({session}): {answer}")];
    lines.push(format!(
        "  records   {} read, chain head {}",
        verdict.records, verdict.head
    ));
    if let Some(finding) = &verdict.finding {
        lines.push(format!("  problem   {finding}"));
    }
    if verdict.torn_tail {
        lines.push("  note      a torn last line was skipped (a crash mid-write)".to_string());
    }
    lines.push(match &verdict.status {
        StatusAgreement::Agrees => "  status    agrees (chain head and record count)".to_string(),
        StatusAgreement::NotRecorded => "  status    records no chain head: the session is still running, \
             was killed before its last status patch, or predates the hash chain"
            .to_string(),
        StatusAgreement::Differs {
            status_head,
            file_head,
            status_records,
            file_records,
        } => format!(
            "  status    differs: status head {status_head} ({} records), file head {file_head} ({file_records} records)",
            status_records.map_or("?".to_string(), |n| n.to_string())
        ),
    });
    lines.push(match &verdict.document {
        DocumentAgreement::NotGiven => "  document  not checked (pass --document)".to_string(),
        DocumentAgreement::Agrees => {
            "  document  agrees (sha256 as in status, same chain head and count)".to_string()
        }
        DocumentAgreement::Sha256Differs { status, document } => {
            format!("  document  changed: sha256 {document}, status says {status}")
        }
        DocumentAgreement::HeadDiffers {
            document_head,
            document_records,
            ..
        } => {
            format!("  document  ends elsewhere: head {document_head} ({document_records} records)")
        }
        DocumentAgreement::Unreadable { error } => {
            format!("  document  is not an audit document: {error}")
        }
    });
    let mut text = lines.join("\n");
    text.push('\n');
    text
}
