//! One agent session: the bounded tool-use loop between the model and the shell.
//!
//! Each turn is: check the limits → ask the model → answer every `tool_use` block it sent (run
//! `shell`, accept `report`, refuse anything else with an `is_error` result) → repeat. The session
//! ends when a report is filed, a limit is hit, the model refuses, or an error makes going on
//! pointless. Every step is recorded by the [`SessionAuditor`] *before* the loop moves on, so the
//! audit on disk is never behind what the agent did; a step that cannot be audited is not taken.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::anthropic::wire::{
    ContentBlock, Message, MessagesRequest, MessagesResponse, Role, StopReason, SystemBlock,
};
use crate::anthropic::{MessagesClient, apply_cache_breakpoints};
use crate::audit::{
    AuditError, AuditEvent, AuditRecord, ExecutionStart, FinishedAudit, IncidentRef, Redacted,
    Redactor, SessionAuditor, SessionLimits, StepAction, ToolUseSummary, new_session_id,
};
use crate::errors::error_chain;
use crate::incident::{AuditStatusEntry, IncidentSpec, Mode, Outcome, Report, Usage};
use crate::plan::approved::{ApprovedPlan, ExecutionRequest};
use crate::plan::gate::{Allowed, ExecutionGate};
use crate::shell::{ShellOutcome, ShellRequest, run_shell};

use super::execution::{ExecutedAction, actions_from_audit, check_proposed_plan};
use super::policy::check_read_only;
use super::prompt::{execution_brief, execution_system_prompt, incident_brief, system_prompt};
use super::settings::AgentSettings;
use super::tool_result::format_shell_result;
use super::tools::{self, ToolRequest};

/// How many replies in a row may end without a tool call (or be cut at `max_tokens`) before the
/// session gives up: the model is nudged, not allowed to idle through the turn budget.
const MAX_IDLE_REPLIES: u32 = 2;
/// Status entries kept in [`SessionResult::status_entries`]: the latest few, bounded in bytes so
/// the Incident object stays far below etcd's object size limit.
const STATUS_ENTRIES_MAX: usize = 20;
const STATUS_ENTRIES_MAX_BYTES: usize = 12 * 1024;

/// Receives every audit record as soon as it is on disk: live progress on a terminal, status
/// patches in a pod.
pub trait SessionObserver: Send {
    fn observe(&mut self, record: &AuditRecord);
}

/// An observer that ignores everything.
impl SessionObserver for () {
    fn observe(&mut self, _record: &AuditRecord) {}
}

/// What a session needs from its caller.
pub struct SessionInput {
    pub namespace: Option<String>,
    pub name: String,
    pub spec: IncidentSpec,
    pub settings: AgentSettings,
    pub audit_dir: PathBuf,
    pub redactor: Redactor,
    pub client: MessagesClient,
    /// Flips to `true` to stop the session early (SIGTERM); the audit is still finished.
    pub cancel: Option<watch::Receiver<bool>>,
    /// Working directory of shell commands (the process's own when `None`).
    pub work_dir: Option<PathBuf>,
    /// An approved plan to execute (from [`crate::plan::env`] or `--approved-plan`); `None` for
    /// an investigation or a proposal. The session re-checks its hash before anything else and
    /// ends in an audited error when it does not match.
    pub execution: Option<ExecutionRequest>,
}

/// How a session ended, with everything the caller writes to status or prints. Every free-text
/// field is [`Redacted`]: this is the session's one exit, so no writer can reach unredacted text.
#[derive(Debug, Clone)]
pub struct SessionResult {
    pub session_id: String,
    pub outcome: Outcome,
    /// Which limit, which error, or a note on the report.
    pub message: Option<Redacted<String>>,
    pub report: Option<Redacted<Report>>,
    pub usage: Usage,
    /// The complete audit document, unless writing it failed (then `message` says so and the
    /// `.jsonl` still holds every record).
    pub audit: Option<FinishedAudit>,
    pub jsonl_path: PathBuf,
    pub status_entries: Redacted<Vec<AuditStatusEntry>>,
    pub status_entries_truncated: bool,
    pub duration: Duration,
}

/// Errors that prevent a session from starting at all.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot start the audit log")]
    Audit(#[from] AuditError),
}

/// How the loop stops.
struct Ending {
    outcome: Outcome,
    message: Option<String>,
}

impl Ending {
    fn limit(message: String) -> Self {
        Self {
            outcome: Outcome::LimitReached,
            message: Some(message),
        }
    }
    fn error(message: String) -> Self {
        Self {
            outcome: Outcome::Error,
            message: Some(message),
        }
    }
}

/// Runs one session to its end. Fails only when the audit cannot even be started; every later
/// failure becomes the session's outcome.
pub async fn run_session(
    input: SessionInput,
    observer: &mut dyn SessionObserver,
) -> Result<SessionResult, SessionError> {
    let started = Instant::now();
    let session_id = new_session_id(jiff::Timestamp::now());
    let auditor = SessionAuditor::create(&input.audit_dir, &session_id, input.redactor.clone())?;
    let mut run = Run {
        deadline: started + input.settings.session_timeout,
        started,
        auditor,
        observer,
        usage: Usage::default(),
        report: None,
        messages: Vec::new(),
        idle_replies: 0,
        gate: None,
        executed: Vec::new(),
        report_note: None,
        input,
    };
    let ending = run.drive().await;
    Ok(run.finish(session_id, ending))
}

struct Run<'o> {
    input: SessionInput,
    started: Instant,
    deadline: Instant,
    auditor: SessionAuditor,
    observer: &'o mut dyn SessionObserver,
    usage: Usage,
    report: Option<Report>,
    messages: Vec<Message>,
    idle_replies: u32,
    /// The allow-list of an execution session; `None` means the read-only gate.
    gate: Option<ExecutionGate>,
    /// Plan steps and rollbacks that ran, in order: the source of the report's `actionsTaken`.
    executed: Vec<ExecutedAction>,
    /// What the session changed in the filed report (execution: claims the audit does not show).
    report_note: Option<String>,
}

/// What answering one reply's tool calls produced.
struct ToolRound {
    results: Vec<ContentBlock>,
    report_filed: bool,
}

impl Run<'_> {
    /// Appends an event to the audit and shows it to the observer. An audit failure ends the
    /// session: an agent that cannot record what it does must not do more.
    fn record(&mut self, event: AuditEvent) -> Result<(), Ending> {
        match self.auditor.record(event) {
            Ok(record) => {
                self.observer.observe(record);
                Ok(())
            }
            Err(e) => Err(Ending::error(format!(
                "audit write failed, session stopped: {}",
                error_chain(&e)
            ))),
        }
    }

    fn cancelled(&self) -> bool {
        self.input.cancel.as_ref().is_some_and(|rx| *rx.borrow())
    }

    async fn drive(&mut self) -> Ending {
        match self.drive_inner().await {
            Ok(ending) | Err(ending) => ending,
        }
    }

    async fn drive_inner(&mut self) -> Result<Ending, Ending> {
        let settings = self.input.settings.clone();
        let mode = self.input.spec.mode;
        let (approved, refused) = match self
            .input
            .execution
            .take()
            .map(|r| r.and_then(|i| i.verify(mode)))
        {
            None => (None, None),
            Some(Ok(approved)) => (Some(approved), None),
            Some(Err(e)) => (None, Some(e)),
        };
        self.record(AuditEvent::SessionStart {
            incident: IncidentRef {
                namespace: self.input.namespace.clone(),
                name: self.input.name.clone(),
                title: self.input.spec.title.clone(),
                severity: self.input.spec.severity,
                recalled: self
                    .input
                    .spec
                    .predecessors
                    .iter()
                    .map(|predecessor| predecessor.name.clone())
                    .collect(),
            },
            model: settings.model.clone(),
            mode: self.input.spec.mode,
            limits: SessionLimits {
                max_turns: settings.max_turns,
                session_timeout_seconds: settings.session_timeout.as_secs(),
                command_timeout_seconds: settings.command_timeout.as_secs(),
                max_tokens: settings.token_budget,
            },
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            execution: approved
                .as_ref()
                .map(|approved| Box::new(execution_start(approved))),
        })?;
        if let Some(refused) = refused {
            let message = format!("the execution session did not start: {refused}");
            self.record(AuditEvent::Error {
                message: message.clone(),
                kind: refused.kind().into(),
            })?;
            return Ok(Ending::error(message));
        }

        let system_text = match &approved {
            Some(approved) => execution_system_prompt(approved, &settings),
            None => system_prompt(mode, &settings),
        };
        let system = vec![SystemBlock::text(system_text)];
        let tool_defs = tools::definitions(settings.command_timeout);
        let (namespace, name, spec) = (
            self.input.namespace.as_deref(),
            &self.input.name,
            &self.input.spec,
        );
        let brief = match &approved {
            Some(approved) => execution_brief(namespace, name, spec, approved.plan.steps.len()),
            None => incident_brief(namespace, name, spec),
        };
        self.gate = approved.map(|approved| ExecutionGate::new(approved.plan));
        self.messages.push(Message {
            role: Role::User,
            content: vec![ContentBlock::text(self.input.redactor.redact(&brief))],
        });

        loop {
            if let Some(ending) = self.limit_hit() {
                return Ok(ending);
            }
            self.usage.turns += 1;
            let turn = self.usage.turns;
            let mut request = MessagesRequest {
                model: settings.model.clone(),
                max_tokens: settings.max_response_tokens,
                system: system.clone(),
                messages: self.messages.clone(),
                tools: tool_defs.clone(),
                tool_choice: None,
            };
            apply_cache_breakpoints(&mut request);
            self.record(AuditEvent::ModelRequest {
                turn,
                message_count: request.messages.len(),
            })?;

            let response = self.call_model(turn, &request).await?;
            let stop = response.stop_reason;
            let content: Vec<ContentBlock> = response
                .content
                .into_iter()
                .filter(|b| !matches!(b, ContentBlock::Unsupported))
                .collect();
            let has_tool_use = content
                .iter()
                .any(|b| matches!(b, ContentBlock::ToolUse { .. }));
            if !content.is_empty() {
                self.messages.push(Message {
                    role: Role::Assistant,
                    content: content.clone(),
                });
            }

            match stop {
                Some(StopReason::Refusal) => {
                    return Ok(Ending {
                        outcome: Outcome::Refused,
                        message: Some(
                            "the model declined to continue (stop_reason: refusal)".into(),
                        ),
                    });
                }
                Some(StopReason::ModelContextWindowExceeded) => {
                    return Ok(Ending::limit(
                        "context window of the model exhausted".into(),
                    ));
                }
                Some(StopReason::MaxTokens) => {
                    // A reply cut at max_tokens may hold a tool call with half its input: never
                    // run it, tell the model to be shorter.
                    self.idle(turn)?;
                    let note = format!(
                        "Your reply was cut off at the max_tokens limit ({}). Any tool call in it \
                         was not run. Be more concise: one command at a time, and keep the report short.",
                        settings.max_response_tokens
                    );
                    let mut blocks = refuse_all_tool_uses(&content, &note);
                    blocks.push(ContentBlock::text(note));
                    self.push_user(blocks);
                }
                _ if has_tool_use => {
                    self.idle_replies = 0;
                    let round = self.answer_tools(turn, &content).await?;
                    if round.report_filed {
                        return Ok(Ending {
                            outcome: Outcome::Reported,
                            message: None,
                        });
                    }
                    self.push_user(round.results);
                }
                Some(StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn)
                | None => {
                    self.idle(turn)?;
                    self.push_user(vec![ContentBlock::text(
                        "Continue the investigation with the shell tool, or file your findings \
                         with the report tool. A text answer alone is not recorded as a report.",
                    )]);
                }
                Some(reason @ (StopReason::ToolUse | StopReason::Other)) => {
                    let reason = wire_name(reason);
                    self.record(AuditEvent::Error {
                        message: format!("model reply with stop_reason {reason} but no tool call"),
                        kind: "malformed_reply".into(),
                    })?;
                    self.idle(turn)?;
                    self.push_user(vec![ContentBlock::text(
                        "Your last reply had no usable content. Use the shell or report tool.",
                    )]);
                }
            }
        }
    }

    /// Counts a reply that did not move the investigation on; too many in a row end the session.
    fn idle(&mut self, turn: u32) -> Result<(), Ending> {
        self.idle_replies += 1;
        if self.idle_replies > MAX_IDLE_REPLIES {
            let message = format!(
                "the model stopped {} times in a row without a tool call or report (turn {turn})",
                self.idle_replies
            );
            self.record(AuditEvent::Error {
                message: message.clone(),
                kind: "no_progress".into(),
            })?;
            return Err(Ending::error(message));
        }
        Ok(())
    }

    fn push_user(&mut self, content: Vec<ContentBlock>) {
        self.messages.push(Message {
            role: Role::User,
            content,
        });
    }

    /// Returns the ending if a turn, time, token or cancellation limit has been reached.
    fn limit_hit(&self) -> Option<Ending> {
        let s = &self.input.settings;
        if self.cancelled() {
            return Some(Ending::error(
                "session cancelled (the agent was asked to stop)".into(),
            ));
        }
        if self.usage.turns >= s.max_turns {
            return Some(Ending::limit(format!(
                "max turns reached ({})",
                s.max_turns
            )));
        }
        if Instant::now() >= self.deadline {
            return Some(Ending::limit(format!(
                "session deadline reached ({} s)",
                s.session_timeout.as_secs()
            )));
        }
        let spent = self.usage.total_tokens();
        if spent >= s.token_budget {
            return Some(Ending::limit(format!(
                "token budget exhausted ({spent} of {} tokens)",
                s.token_budget
            )));
        }
        None
    }

    async fn call_model(
        &mut self,
        turn: u32,
        request: &MessagesRequest,
    ) -> Result<MessagesResponse, Ending> {
        let began = Instant::now();
        let remaining = self.deadline.saturating_duration_since(began);
        let client = self.input.client.clone();
        let call = client.create_message(request);
        let mut cancel = self.input.cancel.clone();
        let outcome = tokio::select! {
            r = tokio::time::timeout(remaining, call) => r,
            _ = wait_cancel(&mut cancel) => {
                return Err(Ending::error("session cancelled during a model call".into()));
            }
        };
        let reply = match outcome {
            Err(_elapsed) => {
                return Err(Ending::limit(format!(
                    "session deadline reached ({} s) while waiting for the model",
                    self.input.settings.session_timeout.as_secs()
                )));
            }
            Ok(Err(api_error)) => {
                let message = format!("Messages API: {}", error_chain(&api_error));
                self.record(AuditEvent::Error {
                    message: message.clone(),
                    kind: "model_api".into(),
                })?;
                return Err(Ending::error(message));
            }
            Ok(Ok(reply)) => reply,
        };
        let response = reply.response;
        let mut turn_usage = Usage {
            turns: 0,
            tool_calls: 0,
            input_tokens: response.usage.input_tokens,
            output_tokens: response.usage.output_tokens,
            cache_read_tokens: response.usage.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: response.usage.cache_creation_input_tokens.unwrap_or(0),
            cost_usd: None,
        };
        let prices = &self.input.settings.prices;
        let model = &self.input.settings.model;
        turn_usage.cost_usd = prices.cost(model, &turn_usage);
        self.usage.input_tokens += turn_usage.input_tokens;
        self.usage.output_tokens += turn_usage.output_tokens;
        self.usage.cache_read_tokens += turn_usage.cache_read_tokens;
        self.usage.cache_write_tokens += turn_usage.cache_write_tokens;
        self.usage.cost_usd = prices.cost(model, &self.usage);
        let text = response
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let tool_uses = response
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolUse { id, name, input } => Some(ToolUseSummary {
                    id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                }),
                _ => None,
            })
            .collect();
        self.record(AuditEvent::ModelResponse {
            turn,
            stop_reason: response
                .stop_reason
                .map(wire_name)
                .unwrap_or_else(|| "none".into()),
            text,
            tool_uses,
            usage: turn_usage,
            duration_ms: millis(began.elapsed()),
            attempts: reply.attempts,
        })?;
        Ok(response)
    }

    /// Answers every tool_use block of one reply, in order. A valid report ends the round; the
    /// calls after it are answered as skipped (and audited), never run.
    async fn answer_tools(
        &mut self,
        turn: u32,
        content: &[ContentBlock],
    ) -> Result<ToolRound, Ending> {
        let settings = self.input.settings.clone();
        let mut round = ToolRound {
            results: Vec::new(),
            report_filed: false,
        };
        for block in content {
            let ContentBlock::ToolUse { id, name, input } = block else {
                continue;
            };
            if round.report_filed {
                self.tool_error(turn, id, name, "skipped: the session ended with the report")?;
                continue;
            }
            let request = match tools::parse(name, input, settings.command_timeout) {
                Ok(request) => request,
                Err(e) => {
                    let message = e.to_string();
                    self.tool_error(turn, id, name, &message)?;
                    round
                        .results
                        .push(ContentBlock::tool_result(id.clone(), message, true));
                    continue;
                }
            };
            match request {
                ToolRequest::Report(mut report) => {
                    if let Err(message) = self.accept_report(&mut report) {
                        self.tool_error(turn, id, name, &message)?;
                        round
                            .results
                            .push(ContentBlock::tool_result(id.clone(), message, true));
                        continue;
                    }
                    self.record(AuditEvent::Report {
                        report: (*report).clone(),
                    })?;
                    self.report = Some(*report);
                    round.report_filed = true;
                }
                ToolRequest::Shell { command, timeout } => {
                    let block = self
                        .run_shell_tool(turn, id, name, command, timeout)
                        .await?;
                    round.results.push(block);
                }
            }
        }
        Ok(round)
    }

    async fn run_shell_tool(
        &mut self,
        turn: u32,
        id: &str,
        name: &str,
        command: String,
        timeout: Duration,
    ) -> Result<ContentBlock, Ending> {
        let allowed = match &self.gate {
            Some(gate) => match gate.check(&command) {
                Ok(allowed) => allowed,
                Err(violation) => {
                    let message = violation.to_string();
                    self.record(AuditEvent::PlanViolation {
                        turn,
                        tool_use_id: id.to_string(),
                        command,
                        reason: violation.reason,
                    })?;
                    return Ok(ContentBlock::tool_result(id.to_string(), message, true));
                }
            },
            None => {
                if let Err(violation) = check_read_only(&command) {
                    let message = violation.to_string();
                    self.tool_error(turn, id, name, &message)?;
                    return Ok(ContentBlock::tool_result(id.to_string(), message, true));
                }
                Allowed::ReadOnly
            }
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Ending::limit(format!(
                "session deadline reached ({} s)",
                self.input.settings.session_timeout.as_secs()
            )));
        }
        let mut request = ShellRequest::new(command.clone());
        request.timeout = timeout.min(remaining);
        request.max_stream_bytes = self.input.settings.shell_capture_bytes;
        request.cwd = self.input.work_dir.clone();
        let mut cancel = self.input.cancel.clone();
        let outcome = tokio::select! {
            r = run_shell(&request) => r,
            _ = wait_cancel(&mut cancel) => {
                // A plan step may have changed something before it was stopped: audit it.
                self.record_plan_action(turn, id, allowed, &command, None)?;
                return Err(Ending::error("session cancelled during a command".into()));
            }
        };
        self.usage.tool_calls += 1;
        match outcome {
            Ok(mut outcome) => {
                // The model never sees what the audit would hide.
                let redactor = &self.input.redactor;
                outcome.stdout = redactor
                    .redact_command_output(&command, &outcome.stdout)
                    .into_owned();
                outcome.stderr = redactor
                    .redact_command_output(&command, &outcome.stderr)
                    .into_owned();
                let result = serde_json::to_value(&outcome)
                    .unwrap_or_else(|e| serde_json::json!({ "serializationError": e.to_string() }));
                self.record(AuditEvent::ToolCall {
                    turn,
                    tool_use_id: id.to_string(),
                    tool: name.to_string(),
                    command: command.clone(),
                    timeout_seconds: request.timeout.as_secs(),
                    result,
                })?;
                let mut text =
                    format_shell_result(&outcome, self.input.settings.tool_result_max_bytes);
                let is_error = outcome.exit_code != Some(0);
                if let Some(note) =
                    self.record_plan_action(turn, id, allowed, &command, Some(&outcome))?
                {
                    text.push_str(&note);
                }
                Ok(ContentBlock::tool_result(id.to_string(), text, is_error))
            }
            Err(e) => {
                let message = format!("the command could not be started: {}", error_chain(&e));
                self.tool_error(turn, id, name, &message)?;
                Ok(ContentBlock::tool_result(id.to_string(), message, true))
            }
        }
    }

    /// After a plan step or rollback ran (or was interrupted: `outcome` None): advances the gate,
    /// audits the step with its index, and returns the line that tells the model where the plan
    /// stands. Nothing for read-only commands.
    fn record_plan_action(
        &mut self,
        turn: u32,
        id: &str,
        allowed: Allowed,
        command: &str,
        outcome: Option<&ShellOutcome>,
    ) -> Result<Option<String>, Ending> {
        let (index, action) = match allowed {
            Allowed::Step(i) => (i, StepAction::Run),
            Allowed::Rollback(i) => (i, StepAction::Rollback),
            Allowed::ReadOnly => return Ok(None),
        };
        let Some(gate) = self.gate.as_mut() else {
            return Ok(None);
        };
        let exit_code = outcome.and_then(|o| o.exit_code);
        let succeeded = outcome.is_some_and(|o| o.exit_code == Some(0) && !o.timed_out);
        gate.record(allowed, succeeded);
        let summary = gate.summary();
        let step = u32::try_from(index + 1).unwrap_or(u32::MAX);
        self.executed.push(ExecutedAction {
            step,
            action,
            command: command.to_string(),
            exit_code,
            succeeded,
        });
        self.record(AuditEvent::PlanStep {
            turn,
            tool_use_id: id.to_string(),
            step,
            action,
            command: command.to_string(),
            exit_code,
            succeeded,
        })?;
        let next = if succeeded && action == StepAction::Run {
            "verify its effect before the next step"
        } else {
            "stop: verify, roll back only if the plan allows it, and file the report"
        };
        Ok(Some(format!(
            "--- plan: {} {step} {} ({summary}); {next} ---\n",
            match action {
                StepAction::Run => "step",
                StepAction::Rollback => "rollback of step",
            },
            if succeeded { "succeeded" } else { "FAILED" },
        )))
    }

    /// Checks a filed report before it ends the session; `Err` goes back to the model.
    /// A plan is accepted only in the proposal session of remediate mode, only when the
    /// execution gate could run it, and never with a secret in it. In an execution session
    /// `actionsTaken` is replaced by what the audit shows ran.
    fn accept_report(&mut self, report: &mut Report) -> Result<(), String> {
        if self.gate.is_some() {
            if report.plan.is_some() {
                return Err(
                    "the execution session reports what ran; it does not propose a new \
                            plan (remove `plan`: a new plan needs a new investigation and approval)"
                        .into(),
                );
            }
            let (actions, note) = actions_from_audit(&self.executed, &report.actions_taken);
            report.actions_taken = actions;
            self.report_note = note;
            return Ok(());
        }
        if let Some(plan) = &report.plan {
            if self.input.spec.mode != Mode::Remediate {
                return Err(
                    "`plan` is for remediate mode only; in investigate mode put the \
                            fixes in `recommendations`"
                        .into(),
                );
            }
            check_proposed_plan(plan, &self.input.redactor)?;
        }
        Ok(())
    }

    fn tool_error(&mut self, turn: u32, id: &str, name: &str, error: &str) -> Result<(), Ending> {
        self.record(AuditEvent::ToolError {
            turn,
            tool_use_id: id.to_string(),
            tool: name.to_string(),
            error: error.to_string(),
        })
    }

    /// Records the end and writes the complete audit document.
    fn finish(mut self, session_id: String, ending: Ending) -> SessionResult {
        let duration = self.started.elapsed();
        let mut message = ending.message;
        if let Some(gate) = &self.gate {
            message = Some(append(message, &gate.summary()));
        }
        if let Some(note) = self.report_note.take() {
            message = Some(append(message, &note));
        }
        let end = AuditEvent::SessionEnd {
            outcome: ending.outcome,
            message: message.clone(),
            usage: self.usage,
            duration_ms: millis(duration),
        };
        if let Err(e) = self.auditor.record(end) {
            message = Some(append(message, &format!("audit: {}", error_chain(&e))));
        } else if let Some(last) = self.auditor.records().last() {
            self.observer.observe(last);
        }
        let (status_entries, status_entries_truncated) = self
            .auditor
            .status_entries(STATUS_ENTRIES_MAX, STATUS_ENTRIES_MAX_BYTES);
        let jsonl_path = self.auditor.jsonl_path().to_path_buf();
        let audit = match self.auditor.finish() {
            Ok(done) => Some(done),
            Err(e) => {
                message = Some(append(
                    message,
                    &format!(
                        "the final audit document could not be written ({}); {} holds every record",
                        error_chain(&e),
                        jsonl_path.display()
                    ),
                ));
                None
            }
        };
        let redactor = &self.input.redactor;
        let report = self
            .report
            .as_ref()
            .and_then(|report| match redactor.seal(report) {
                Ok(sealed) => Some(sealed),
                Err(e) => {
                    message = Some(append(
                        message.clone(),
                        &format!("report: {}", error_chain(&e)),
                    ));
                    None
                }
            });
        let status_entries = redactor.seal(&status_entries).unwrap_or_else(|e| {
            message = Some(append(
                message.clone(),
                &format!("audit entries: {}", error_chain(&e)),
            ));
            Redacted::empty()
        });
        SessionResult {
            session_id,
            outcome: ending.outcome,
            message: message.map(|m| redactor.seal_text(&m)),
            report,
            usage: self.usage,
            audit,
            jsonl_path,
            status_entries,
            status_entries_truncated,
            duration,
        }
    }
}

/// What `session_start` records of an execution session.
fn execution_start(approved: &ApprovedPlan) -> ExecutionStart {
    ExecutionStart {
        plan_hash: approved.plan_hash.clone(),
        steps: u32::try_from(approved.plan.steps.len()).unwrap_or(u32::MAX),
        approval: approved.approval.clone(),
        continues_session: approved.proposing_session.clone(),
    }
}

/// `is_error` results for every tool_use of a reply that will not be run.
fn refuse_all_tool_uses(content: &[ContentBlock], why: &str) -> Vec<ContentBlock> {
    content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { id, .. } => {
                Some(ContentBlock::tool_result(id.clone(), why.to_string(), true))
            }
            _ => None,
        })
        .collect()
}

/// A stop reason as the API spells it (`tool_use`, `max_tokens`, …).
fn wire_name(reason: StopReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{reason:?}"))
}

/// Resolves when the cancel flag turns true; never, without one.
async fn wait_cancel(cancel: &mut Option<watch::Receiver<bool>>) {
    match cancel {
        Some(rx) => {
            if rx.wait_for(|stop| *stop).await.is_err() {
                // The sender is gone: nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn append(message: Option<String>, more: &str) -> String {
    match message {
        Some(m) => format!("{m}; {more}"),
        None => more.to_string(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
