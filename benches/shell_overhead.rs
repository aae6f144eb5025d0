//! Spawn-to-result overhead of the `shell` tool, next to what other agents pay for the same.
//!
//! Runs `true` (which does no work) many times and reports p50, p99 and mean wall time per run:
//! - `run_shell`: our tool, with process group, bounded capture of both pipes and group check;
//! - raw tokio: `tokio::process::Command::output()` of `sh -c true`, the floor for a Rust agent;
//! - Python asyncio: `asyncio.create_subprocess_shell("true")` + `communicate()`, what
//!   Python agents (HolmesGPT and most LangChain tools) pay, measured by Python itself.
//!
//! `cargo bench --bench shell_overhead`; `SHELL_BENCH_RUNS=200` for a quicker run.

use std::process::Stdio;
use std::time::{Duration, Instant};

use incident_operator::shell::{ShellRequest, run_shell};
use serde::Deserialize;

const DEFAULT_RUNS: usize = 1000;
/// Runs before measuring, so page cache and allocator are warm for every contender alike.
const WARMUP_RUNS: usize = 20;

/// Times `RUNS` runs of `true` through asyncio; prints one JSON line of statistics in µs.
/// Percentiles use the same nearest-rank rule as `Stats::from_samples` below.
const PYTHON_BASELINE: &str = r#"
import asyncio, json, math, sys, time

async def once():
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_shell(
        "true",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await proc.communicate()
    return (time.perf_counter() - start) * 1e6

def rank(samples, percent):
    return samples[max(0, math.ceil(percent / 100 * len(samples)) - 1)]

async def main(runs, warmup):
    for _ in range(warmup):
        await once()
    samples = sorted([await once() for _ in range(runs)])
    print(json.dumps({
        "p50_us": rank(samples, 50),
        "p99_us": rank(samples, 99),
        "mean_us": sum(samples) / len(samples),
        "version": sys.version.split()[0],
    }))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"#;

/// Wall-time statistics of one contender, in microseconds.
#[derive(Debug, Deserialize)]
struct Stats {
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
}

impl Stats {
    fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
        let rank = |percent: f64| {
            let index = ((percent / 100.0 * samples.len() as f64).ceil() as usize).max(1) - 1;
            micros(samples[index])
        };
        let total: f64 = samples.iter().copied().map(micros).sum();
        Self {
            p50_us: rank(50.0),
            p99_us: rank(99.0),
            mean_us: total / samples.len() as f64,
        }
    }
}

#[derive(Debug, Deserialize)]
struct PythonReport {
    #[serde(flatten)]
    stats: Stats,
    version: String,
}

async fn time_runs<F, Fut>(runs: usize, mut once: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..WARMUP_RUNS {
        once().await;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        once().await;
        samples.push(start.elapsed());
    }
    Stats::from_samples(samples)
}

async fn bench_run_shell(runs: usize) -> Stats {
    let request = ShellRequest::new("true");
    time_runs(runs, || async {
        let outcome = run_shell(&request).await.expect("sh starts");
        assert_eq!(outcome.exit_code, Some(0), "`true` failed: {outcome:?}");
    })
    .await
}

async fn bench_raw_tokio(runs: usize) -> Stats {
    time_runs(runs, || async {
        let output = tokio::process::Command::new("sh")
            .args(["-c", "true"])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("sh starts");
        assert!(output.status.success());
    })
    .await
}

/// The Python row, or why there is none.
fn bench_python(runs: usize) -> Result<PythonReport, String> {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            PYTHON_BASELINE,
            &runs.to_string(),
            &WARMUP_RUNS.to_string(),
        ])
        .output()
        .map_err(|error| format!("python3 not runnable ({error})"))?;
    if !output.status.success() {
        return Err(format!(
            "python3 failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("unreadable python3 report ({error})"))
}

fn print_row(name: &str, stats: &Stats) {
    println!(
        "{name:<44} {:>10.3} {:>10.3} {:>10.3}",
        stats.p50_us / 1000.0,
        stats.p99_us / 1000.0,
        stats.mean_us / 1000.0
    );
}

fn main() {
    let runs = std::env::var("SHELL_BENCH_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|runs: &usize| *runs > 0)
        .unwrap_or(DEFAULT_RUNS);
    // The operator's agent runs on tokio's default multi-threaded runtime; measure there.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let ours = runtime.block_on(bench_run_shell(runs));
    let raw = runtime.block_on(bench_raw_tokio(runs));
    let python = bench_python(runs);

    println!(
        "shell tool spawn-to-result overhead: `true`, {runs} runs after {WARMUP_RUNS} warm-up"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "contender", "p50 ms", "p99 ms", "mean ms"
    );
    print_row("run_shell (group, capped pipes, group check)", &ours);
    print_row("raw tokio Command::output (sh -c true)", &raw);
    match python {
        Ok(report) => print_row(
            &format!("python {} asyncio create_subprocess_shell", report.version),
            &report.stats,
        ),
        Err(reason) => println!(
            "{:<44} skipped: {reason}",
            "python asyncio create_subprocess_shell"
        ),
    }
}
