//! `scripted-model`: serves a script file on loopback for demos and manual runs.
//!
//! `scripted-model --script steps.json --port 8080` prints the base URL on its first line of stdout, then
//! serves until interrupted (Ctrl-C), and reports how many requests it answered on stderr.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use scripted_model::{ScriptedModel, script_file};

/// Serve a scripted Anthropic Messages API on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// JSON file holding an array of steps (see the `script_file` module docs).
    #[arg(long)]
    script: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("cannot read script {path}: {source}")]
    ReadScript {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("script {path} is not a valid list of steps: {source}")]
    ParseScript {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scripted-model: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), ServeError> {
    let text = std::fs::read_to_string(&args.script).map_err(|source| ServeError::ReadScript {
        path: args.script.clone(),
        source,
    })?;
    let steps = script_file::parse_script(&text).map_err(|source| ServeError::ParseScript {
        path: args.script.clone(),
        source,
    })?;
    let step_count = steps.len();
    let model = ScriptedModel::start_on_port(args.port, steps)
        .await
        .map_err(|source| ServeError::Bind {
            port: args.port,
            source,
        })?;
    println!("{}", model.base_url());
    // Scripts that start us read the URL from the first line; make sure it leaves the pipe buffer.
    let _ = std::io::stdout().flush();
    eprintln!(
        "scripted-model: serving {step_count} steps from {}",
        args.script.display()
    );
    tokio::signal::ctrl_c().await.map_err(ServeError::Signal)?;
    eprintln!(
        "scripted-model: answered {} requests",
        model.requests().len()
    );
    Ok(())
}
