//! `kube-emulator --port N --kubeconfig-out FILE`: runs the emulator until Ctrl-C.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Parser;
use kube_emulator::{Emulator, EmulatorOptions};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "In-memory Kubernetes API server for tests")]
struct Flags {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write a kubeconfig for kubectl, helm or kube clients.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let flags = Flags::parse();
    let emulator = Emulator::start_with(EmulatorOptions {
        port: flags.port,
        ..EmulatorOptions::default()
    })
    .await?;
    if let Some(path) = &flags.kubeconfig_out {
        emulator.write_kubeconfig(path)?;
        eprintln!("kubeconfig written to {}", path.display());
    }
    println!("kube-emulator listening on {}", emulator.url());
    tokio::signal::ctrl_c().await?;
    emulator.stop().await;
    Ok(())
}
