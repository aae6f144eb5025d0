//! `kubectl incident list`: one line per Incident, or the objects as JSON/YAML.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::client::Connection;
use super::render::{RenderOptions, table};
use super::{GlobalArgs, PluginError};
use crate::incident::Incident;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// List Incidents of every namespace.
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Label selector, as kubectl takes it (`app=checkout,severity!=info`).
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// Output format: the table (default), or the Incidents as a `List`.
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<ObjectFormat>,
}

/// `-o`: objects as kubectl prints them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectFormat {
    Json,
    Yaml,
}

pub async fn run(
    global: &GlobalArgs,
    args: &ListArgs,
    options: &RenderOptions,
    out: &mut impl Write,
) -> Result<ExitCode, PluginError> {
    let connection = Connection::open(global).await?;
    let incidents = connection
        .list(args.all_namespaces, args.selector.as_deref())
        .await?;
    let text = match args.output {
        None => table::render(&incidents, args.all_namespaces, options),
        Some(format) => objects(&incidents, format)?,
    };
    out.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The Incidents as a `v1` `List`, the shape `kubectl get -o json|yaml` prints.
pub fn objects(incidents: &[Incident], format: ObjectFormat) -> Result<String, PluginError> {
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": incidents,
    });
    match format {
        ObjectFormat::Json => serde_json::to_string_pretty(&list)
            .map(|text| text + "\n")
            .map_err(|e| PluginError::Encode(e.to_string())),
        ObjectFormat::Yaml => {
            serde_saphyr::to_string(&list).map_err(|e| PluginError::Encode(e.to_string()))
        }
    }
}
