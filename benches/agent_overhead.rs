//! The agent loop's own cost per turn, against a scripted model on loopback that answers
//! instantly. Prints a table; run with `cargo bench --bench agent_overhead`.
//!
//! Rows:
//! - `http round trip`: one `create_message` call through the real client, nothing else — the floor.
//! - `turn, no command`: a full loop turn whose tool call is refused without running anything
//!   (request build, cache breakpoints, HTTP, parsing, three fsync'd audit records).
//! - `turn, shell true`: the same plus spawning `true` through the shell tool.
//!
//! The loop's overhead is the difference between a turn and the round trip.

use std::time::{Duration, Instant};

use incident_operator::agent::{AgentSettings, SessionInput, SessionObserver, run_session};
use incident_operator::anthropic::wire::{ContentBlock, Message, MessagesRequest, Role};
use incident_operator::anthropic::{ClientConfig, MessagesClient, RetryPolicy};
use incident_operator::audit::{AuditEvent, AuditRecord, Redactor};
use incident_operator::incident::IncidentSpec;
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::json;

const TURNS: u32 = 200;

fn client(url: String) -> MessagesClient {
    MessagesClient::new(ClientConfig {
        api_key: "sk-ant-bench".into(),
        base_url: url,
        request_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            total_budget: Duration::from_secs(1),
        },
    })
    .expect("client")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn row(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "| {name:<22} | {:>5} | {:>9.3} | {:>9.3} | {:>9.3} |",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
}

/// Notes when each turn's model request was recorded.
#[derive(Default)]
struct TurnClock(Vec<Instant>);

impl SessionObserver for TurnClock {
    fn observe(&mut self, record: &AuditRecord) {
        if matches!(record.event, AuditEvent::ModelRequest { .. }) {
            self.0.push(Instant::now());
        }
    }
}

/// Per-turn durations of one session whose every reply is `tool`'s call: the time between two
/// consecutive model requests, as the loop recorded them.
async fn session_turns(tool: &'static str, input: serde_json::Value) -> Vec<Duration> {
    let server =
        ScriptedModel::start_with(move |_| Step::Reply(reply::tool_use("t", tool, input.clone())))
            .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut clock = TurnClock::default();
    let mut settings = AgentSettings::new("bench");
    settings.max_turns = TURNS;
    settings.token_budget = u64::MAX;
    let spec: IncidentSpec = serde_json::from_value(json!({"title": "bench"})).expect("spec");
    let result = run_session(
        SessionInput {
            namespace: None,
            name: "bench".into(),
            spec,
            settings,
            audit_dir: dir.path().to_path_buf(),
            redactor: Redactor::new(Vec::<String>::new()),
            client: client(server.base_url()),
            cancel: None,
            work_dir: None,
            execution: None,
        },
        &mut clock,
    )
    .await
    .expect("session");
    assert_eq!(
        result.usage.turns, TURNS,
        "the session should use every turn"
    );
    clock.0.windows(2).map(|w| w[1] - w[0]).collect()
}

async fn round_trips() -> Vec<Duration> {
    let server =
        ScriptedModel::start_with(|_| Step::Reply(reply::tool_use("t", "nothing", json!({}))))
            .await;
    let client = client(server.base_url());
    let request = MessagesRequest {
        model: "bench".into(),
        max_tokens: 1024,
        system: vec![],
        messages: vec![Message {
            role: Role::User,
            content: vec![ContentBlock::text("hello")],
        }],
        tools: vec![],
        tool_choice: None,
    };
    let mut samples = Vec::new();
    for _ in 0..TURNS {
        let t = Instant::now();
        client.create_message(&request).await.expect("round trip");
        samples.push(t.elapsed());
    }
    samples
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "agent loop overhead per turn ({TURNS} turns, scripted model on loopback, audit fsync on)\n"
    );
    println!(
        "| {:<22} | {:>5} | {:>9} | {:>9} | {:>9} |",
        "what", "n", "p50 ms", "p99 ms", "mean ms"
    );
    println!(
        "|{:-<24}|{:-<7}|{:-<11}|{:-<11}|{:-<11}|",
        "", "", "", "", ""
    );
    row("http round trip", rt.block_on(round_trips()));
    row(
        "turn, no command",
        rt.block_on(session_turns("no_such_tool", json!({}))),
    );
    row(
        "turn, shell true",
        rt.block_on(session_turns("shell", json!({"command": "true"}))),
    );
}
