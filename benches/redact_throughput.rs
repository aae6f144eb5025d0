//! Redaction cost per megabyte of tool output, on ordinary and adversarial input. Prints a table;
//! run with `cargo bench --bench redact_throughput`.
//!
//! Rows:
//! - `clean kubectl`: a megabyte of `kubectl get pods -o wide` lines with nothing to hide;
//! - `mixed secrets`: the same with a credential, a bearer token and a PEM block every 50 lines;
//! - `adversarial: ...`: inputs built to make a backtracking matcher blow up (long runs of key
//!   words, `://` without `@`, an unterminated PEM block, base64 lines that never decode, a huge
//!   single line) — a linear redactor stays within a small factor of the clean row.

use std::time::{Duration, Instant};

use incident_operator::audit::Redactor;

const MB: usize = 1_000_000;
const ROUNDS: usize = 5;

fn repeat_to(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len() + 1)[..bytes].to_string()
}

fn inputs() -> Vec<(&'static str, String)> {
    let pod = "checkout-api-7d9f8b6c4-x2x9z   1/1   Running   0   3d   10.0.0.12   node-a\n";
    let mut mixed = String::new();
    while mixed.len() < MB {
        for _ in 0..50 {
            mixed.push_str(pod);
        }
        mixed.push_str(
            "DB_PASSWORD=hunter2-correct-horse\nAuthorization: Bearer abcdef0123456789\n",
        );
        mixed.push_str("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234abcd\n-----END RSA PRIVATE KEY-----\n");
    }
    vec![
        ("clean kubectl", repeat_to(pod, MB)),
        ("mixed secrets", mixed),
        (
            "adversarial: key words",
            repeat_to("password_token_secret_key ", MB),
        ),
        ("adversarial: ://", repeat_to("postgres://user:", MB)),
        (
            "adversarial: open PEM",
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}",
                repeat_to("QUJD\n", MB)
            ),
        ),
        (
            "adversarial: base64",
            repeat_to(&format!("{}\n", "A".repeat(76)), MB),
        ),
        ("adversarial: one line", repeat_to("a=b&", MB)),
    ]
}

fn main() {
    let redactor = Redactor::new([
        "sk-ant-api03-bench-0123456789abcdefghijklmnopqrstuvwxyz".to_string(),
        "env-secret-value-0123".to_string(),
    ]);
    println!("| input                      |   MB | ms/MB (best of {ROUNDS}) |");
    println!("|----------------------------|------|--------------------|");
    for (name, text) in inputs() {
        let mut best = Duration::MAX;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let out = redactor.redact(&text);
            std::hint::black_box(&out);
            best = best.min(started.elapsed());
        }
        let mb = text.len() as f64 / MB as f64;
        println!(
            "| {name:<26} | {mb:>4.1} | {:>18.1} |",
            best.as_secs_f64() * 1e3 / mb
        );
    }
}
