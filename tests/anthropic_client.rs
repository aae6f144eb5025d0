//! The Messages API client against the scripted model server on loopback: real HTTP, real headers,
//! real retries. Retry policies are shortened so the suite stays fast.

use std::time::{Duration, Instant};

use incident_operator::anthropic::{
    ANTHROPIC_VERSION, ApiError, ApiUsage, ClientConfig, ContentBlock, Message, MessagesClient,
    MessagesRequest, RetryPolicy, Role, StopReason, SystemBlock, ToolDefinition,
    apply_cache_breakpoints,
};
use scripted_model::{ScriptedModel, Step, reply, validate};
use serde_json::json;

const API_KEY: &str = "sk-ant-test-0123456789-not-a-real-key";

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(2),
        total_budget: Duration::from_secs(20),
    }
}

fn client_for(base_url: String, retry: RetryPolicy) -> MessagesClient {
    let config = ClientConfig {
        api_key: API_KEY.to_owned(),
        base_url,
        request_timeout: Duration::from_secs(30),
        retry,
    };
    MessagesClient::new(config).expect("client builds")
}

fn client(model: &ScriptedModel, retry: RetryPolicy) -> MessagesClient {
    client_for(model.base_url(), retry)
}

fn shell_tool() -> ToolDefinition {
    ToolDefinition {
        name: "shell".into(),
        description: "Run a read-only shell command in the cluster".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"]
        }),
        cache_control: None,
    }
}

fn question() -> MessagesRequest {
    MessagesRequest {
        model: "claude-sonnet-4-6".into(),
        max_tokens: 1024,
        system: vec![SystemBlock::text(
            "You are an SRE investigating an incident.",
        )],
        messages: vec![Message {
            role: Role::User,
            content: vec![ContentBlock::text("Why is checkout returning 502?")],
        }],
        tools: vec![shell_tool()],
        tool_choice: None,
    }
}

/// Asserts the error (or the last error of an exhausted retry) never shows the key.
fn assert_key_hidden(error: &ApiError) {
    assert!(!error.to_string().contains(API_KEY), "{error}");
    assert!(!format!("{error:?}").contains(API_KEY), "{error:?}");
}

fn exhausted_last(error: ApiError) -> (u32, ApiError) {
    match error {
        ApiError::RetriesExhausted { attempts, last } => (attempts, *last),
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn sends_the_documented_headers_and_body() {
    let model = ScriptedModel::start(vec![Step::Reply(reply::text("Looking."))]).await;
    let mut request = question();
    request.tool_choice = Some(json!({"type": "auto"}));
    apply_cache_breakpoints(&mut request);

    let reply = client(&model, fast_retry(1))
        .create_message(&request)
        .await
        .expect("reply");

    assert_eq!(reply.attempts, 1);
    assert_eq!(reply.request_id.as_deref(), Some("req_scripted_0001"));
    assert_eq!(reply.response.content, vec![ContentBlock::text("Looking.")]);
    assert_eq!(reply.response.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(reply.response.model, "claude-sonnet-4-6");

    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(API_KEY));
    assert_eq!(sent.header("anthropic-version"), Some(ANTHROPIC_VERSION));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-sonnet-4-6",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are an SRE investigating an incident.",
                        "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Why is checkout returning 502?", "cache_control": {"type": "ephemeral"}}]}],
            "tools": [{
                "name": "shell",
                "description": "Run a read-only shell command in the cluster",
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
                "cache_control": {"type": "ephemeral"}
            }],
            "tool_choice": {"type": "auto"}
        })
    );
}

#[tokio::test]
async fn a_tool_loop_keeps_at_most_four_breakpoints_and_the_server_accepts_every_turn() {
    let turns = 12;
    let model = ScriptedModel::start_with(|recorded| {
        let turn = recorded.body["messages"].as_array().map_or(0, Vec::len) / 2;
        Step::Reply(reply::tool_use(
            format!("toolu_{turn}"),
            "shell",
            json!({"command": format!("kubectl logs checkout-{turn}")}),
        ))
    })
    .await;
    let client = client(&model, fast_retry(1));
    let mut request = question();
    for _ in 0..turns {
        apply_cache_breakpoints(&mut request);
        let reply = client
            .create_message(&request)
            .await
            .expect("turn accepted");
        let ContentBlock::ToolUse { id, .. } = &reply.response.content[0] else {
            panic!("expected tool_use, got {:?}", reply.response.content);
        };
        let id = id.clone();
        request.messages.push(Message {
            role: Role::Assistant,
            content: reply.response.content.clone(),
        });
        request.messages.push(Message {
            role: Role::User,
            content: vec![ContentBlock::tool_result(
                id,
                "Back-off restarting failed container",
                false,
            )],
        });
    }
    let requests = model.requests();
    assert_eq!(requests.len(), turns);
    for (turn, sent) in requests.iter().enumerate() {
        let breakpoints = validate::count_cache_breakpoints(&sent.body);
        assert!(breakpoints <= 4, "turn {turn}: {breakpoints} breakpoints");
        let messages = sent.body["messages"].as_array().expect("messages");
        let last_block = messages[messages.len() - 1]["content"]
            .as_array()
            .and_then(|blocks| blocks.last())
            .expect("last block");
        assert_eq!(
            last_block["cache_control"],
            json!({"type": "ephemeral"}),
            "turn {turn}"
        );
    }
    assert_eq!(
        validate::count_cache_breakpoints(&requests[turns - 1].body),
        4
    );
}

#[tokio::test]
async fn parses_parallel_tool_calls_with_leading_text() {
    let model = ScriptedModel::start(vec![Step::Reply(reply::with_leading_text(
        reply::tool_uses(vec![
            (
                "toolu_a",
                "shell",
                json!({"command": "kubectl get pods -n shop"}),
            ),
            (
                "toolu_b",
                "shell",
                json!({"command": "kubectl get events -n shop"}),
            ),
        ]),
        "I'll check the pods and recent events.",
    ))])
    .await;
    let reply = client(&model, fast_retry(1))
        .create_message(&question())
        .await
        .expect("reply");
    assert_eq!(reply.response.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(
        reply.response.content,
        vec![
            ContentBlock::text("I'll check the pods and recent events."),
            ContentBlock::ToolUse {
                id: "toolu_a".into(),
                name: "shell".into(),
                input: json!({"command": "kubectl get pods -n shop"}),
            },
            ContentBlock::ToolUse {
                id: "toolu_b".into(),
                name: "shell".into(),
                input: json!({"command": "kubectl get events -n shop"}),
            },
        ]
    );
}

#[tokio::test]
async fn reports_usage_including_cache_tokens() {
    let model = ScriptedModel::start(vec![
        Step::Reply(reply::with_usage(reply::text("cached"), 12, 34, 5000, 700)),
        Step::Reply(reply::text("estimated")),
    ])
    .await;
    let client = client(&model, fast_retry(1));
    let first = client.create_message(&question()).await.expect("reply");
    assert_eq!(
        first.response.usage,
        ApiUsage {
            input_tokens: 12,
            output_tokens: 34,
            cache_creation_input_tokens: Some(700),
            cache_read_input_tokens: Some(5000),
        }
    );
    let second = client.create_message(&question()).await.expect("reply");
    assert!(second.response.usage.input_tokens > 0);
    assert_eq!(second.response.usage.cache_read_input_tokens, None);
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let model = ScriptedModel::start(vec![
        Step::rate_limited("1"),
        Step::Reply(reply::text("ok")),
    ])
    .await;
    let started = Instant::now();
    let reply = client(&model, fast_retry(3))
        .create_message(&question())
        .await
        .expect("reply after one retry");
    let elapsed = started.elapsed();
    assert_eq!(reply.attempts, 2);
    assert_eq!(model.requests().len(), 2);
    // The computed backoff is at most 5 ms, so waiting this long proves retry-after was honoured.
    assert!(
        elapsed >= Duration::from_millis(950),
        "retried after only {elapsed:?}"
    );
}

#[tokio::test]
async fn retry_after_ms_takes_precedence() {
    let model = ScriptedModel::start(vec![
        Step::overloaded().with_header("retry-after-ms", "300"),
        Step::Reply(reply::text("ok")),
    ])
    .await;
    let started = Instant::now();
    let reply = client(&model, fast_retry(3))
        .create_message(&question())
        .await
        .expect("reply");
    assert_eq!(reply.attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn overloaded_then_success() {
    let model =
        ScriptedModel::start(vec![Step::overloaded(), Step::Reply(reply::text("ok"))]).await;
    let reply = client(&model, fast_retry(3))
        .create_message(&question())
        .await
        .expect("reply");
    assert_eq!(reply.attempts, 2);
    assert_eq!(reply.response.content, vec![ContentBlock::text("ok")]);
}

#[tokio::test]
async fn persistent_server_errors_exhaust_the_attempts_and_name_the_last_error() {
    let model = ScriptedModel::start(vec![Step::internal_error(); 4]).await;
    let error = client(&model, fast_retry(4))
        .create_message(&question())
        .await
        .expect_err("all attempts fail");
    assert!(error.to_string().contains("after 4 attempt(s)"), "{error}");
    assert!(
        error
            .to_string()
            .contains("Messages API returned 500 api_error: Internal server error"),
        "{error}"
    );
    assert!(!error.is_retryable());
    let (attempts, last) = exhausted_last(error);
    assert_eq!(attempts, 4);
    assert!(
        matches!(last, ApiError::Http { status: 500, ref error_type, .. } if error_type == "api_error")
    );
    assert_eq!(model.requests().len(), 4);
}

#[tokio::test]
async fn the_time_budget_caps_waiting_even_when_the_server_asks_for_more() {
    let model = ScriptedModel::start(vec![Step::rate_limited("30"); 10]).await;
    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(60),
        total_budget: Duration::from_millis(400),
    };
    let started = Instant::now();
    let error = client(&model, policy)
        .create_message(&question())
        .await
        .expect_err("budget runs out");
    // Generous bound: only proves the 30 s retry-after was not slept.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (attempts, last) = exhausted_last(error);
    assert_eq!(
        attempts, 2,
        "one retry at the end of the budget, then give up"
    );
    assert_eq!(last.status(), Some(429));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, error_type, message) in [
        (
            400,
            "invalid_request_error",
            "max_tokens: Input should be less than or equal to 64000",
        ),
        (401, "authentication_error", "invalid x-api-key"),
        (
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        (404, "not_found_error", "model: claude-nonexistent"),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
    ] {
        let model = ScriptedModel::start(vec![
            Step::error(status, error_type, message),
            Step::Reply(reply::text("never")),
        ])
        .await;
        let error = client(&model, fast_retry(5))
            .create_message(&question())
            .await
            .expect_err("client error");
        assert_eq!(model.requests().len(), 1, "{status} must not be retried");
        assert_eq!(
            error.to_string(),
            format!("Messages API returned {status} {error_type}: {message}")
        );
        match &error {
            ApiError::Http {
                status: got_status,
                error_type: got_type,
                message: got_message,
                request_id,
            } => {
                assert_eq!(
                    (*got_status, got_type.as_str(), got_message.as_str()),
                    (status, error_type, message)
                );
                assert_eq!(request_id.as_deref(), Some("req_scripted_0001"));
            }
            other => panic!("expected Http, got {other:?}"),
        }
        assert_key_hidden(&error);
    }
}

#[tokio::test]
async fn the_server_rejects_unanswered_tool_use_like_the_real_api() {
    let model = ScriptedModel::start(vec![Step::Reply(reply::text("never"))]).await;
    let mut request = question();
    request.messages.push(Message {
        role: Role::Assistant,
        content: vec![ContentBlock::ToolUse {
            id: "toolu_lost".into(),
            name: "shell".into(),
            input: json!({"command": "uptime"}),
        }],
    });
    request.messages.push(Message {
        role: Role::User,
        content: vec![ContentBlock::text("continue")],
    });
    let error = client(&model, fast_retry(5))
        .create_message(&request)
        .await
        .expect_err("invalid conversation");
    assert_eq!(model.requests().len(), 1);
    assert!(
        matches!(&error, ApiError::Http { status: 400, error_type, message, .. }
            if error_type == "invalid_request_error"
            && message.contains("`tool_use` ids were found without `tool_result` blocks immediately after: toolu_lost")),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_path_prefix_is_a_404_without_retry() {
    let model = ScriptedModel::start(vec![Step::Reply(reply::text("never"))]).await;
    let error = client_for(format!("{}/not-anthropic", model.base_url()), fast_retry(5))
        .create_message(&question())
        .await
        .expect_err("404");
    assert_eq!(model.requests()[0].path, "/not-anthropic/v1/messages");
    assert_eq!(model.requests().len(), 1);
    assert_eq!(
        error.to_string(),
        "Messages API returned 404 not_found_error: Not Found"
    );
}

#[tokio::test]
async fn an_html_502_from_a_proxy_gives_a_clear_error_and_is_retried() {
    let html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    let bad_gateway = Step::RawBody {
        status: 502,
        content_type: "text/html".into(),
        body: html.into(),
    };
    let model = ScriptedModel::start(vec![
        bad_gateway.clone(),
        bad_gateway,
        Step::Reply(reply::text("ok")),
    ])
    .await;
    let client = client(&model, fast_retry(2));
    let error = client
        .create_message(&question())
        .await
        .expect_err("two 502s");
    let (attempts, last) = exhausted_last(error);
    assert_eq!(attempts, 2);
    assert_eq!(
        last.to_string(),
        "Messages API returned 502 bad_gateway: response is not a Messages API error (text/html): \
         <html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> \
         <hr><center>nginx</center> </body> </html>"
    );
    let reply = client
        .create_message(&question())
        .await
        .expect("then the proxy recovers");
    assert_eq!(reply.attempts, 1);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let model =
        ScriptedModel::start(vec![Step::CloseConnection, Step::Reply(reply::text("ok"))]).await;
    let reply = client(&model, fast_retry(3))
        .create_message(&question())
        .await
        .expect("reply after reconnecting");
    assert_eq!(reply.attempts, 2);
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn a_dropped_connection_every_time_is_a_transport_error() {
    let model = ScriptedModel::start(vec![Step::CloseConnection; 2]).await;
    let error = client(&model, fast_retry(2))
        .create_message(&question())
        .await
        .expect_err("never answered");
    let (_, last) = exhausted_last(error);
    assert!(matches!(last, ApiError::Transport { .. }), "{last:?}");
    assert!(last.to_string().contains(&model.base_url()), "{last}");
}

#[tokio::test]
async fn a_refused_connection_names_the_url() {
    let unused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let base_url = format!("http://127.0.0.1:{unused_port}");
    let error = client_for(base_url.clone(), fast_retry(2))
        .create_message(&question())
        .await
        .expect_err("nothing listens there");
    assert_key_hidden(&error);
    let (attempts, last) = exhausted_last(error);
    assert_eq!(attempts, 2);
    let ApiError::Connect { url, .. } = &last else {
        panic!("expected Connect, got {last:?}");
    };
    assert_eq!(url, &format!("{base_url}/v1/messages"));
    let shown = last.to_string();
    assert!(
        shown.starts_with(&format!("cannot reach {base_url}/v1/messages: ")),
        "{shown}"
    );
    assert!(
        shown.to_lowercase().contains("refused"),
        "the cause chain is shown: {shown}"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let model = ScriptedModel::start(vec![
        Step::Reply(reply::text("too late")).after(Duration::from_secs(3)),
        Step::Reply(reply::text("ok")),
    ])
    .await;
    let client = MessagesClient::new(ClientConfig {
        api_key: API_KEY.into(),
        base_url: model.base_url(),
        request_timeout: Duration::from_millis(300),
        retry: fast_retry(3),
    })
    .expect("client");
    let reply = client
        .create_message(&question())
        .await
        .expect("second attempt");
    assert_eq!(reply.attempts, 2);
    assert_eq!(reply.response.content, vec![ContentBlock::text("ok")]);

    let model = ScriptedModel::start(vec![
        Step::Reply(reply::text("too late")).after(Duration::from_secs(3)),
    ])
    .await;
    let client = MessagesClient::new(ClientConfig {
        api_key: API_KEY.into(),
        base_url: model.base_url(),
        request_timeout: Duration::from_millis(200),
        retry: fast_retry(1),
    })
    .expect("client");
    let (_, last) = exhausted_last(
        client
            .create_message(&question())
            .await
            .expect_err("timeout"),
    );
    assert!(
        matches!(last, ApiError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)),
        "{last:?}"
    );
}

#[tokio::test]
async fn x_should_retry_overrides_the_status() {
    let model = ScriptedModel::start(vec![
        Step::overloaded().with_header("x-should-retry", "false"),
        Step::error(409, "conflict_error", "try again").with_header("x-should-retry", "true"),
        Step::Reply(reply::text("ok")),
    ])
    .await;
    let client = client(&model, fast_retry(3));
    let error = client
        .create_message(&question())
        .await
        .expect_err("server said no retry");
    assert_eq!(error.status(), Some(529));
    assert_eq!(model.requests().len(), 1);
    let reply = client
        .create_message(&question())
        .await
        .expect("409 retried because the server said so");
    assert_eq!(reply.attempts, 2);
}

#[tokio::test]
async fn unknown_content_blocks_are_ignored_and_never_sent_back() {
    let model = ScriptedModel::start(vec![
        Step::Reply(reply::with_block(
            reply::with_leading_text(
                reply::tool_use("toolu_1", "shell", json!({"command": "kubectl top pods"})),
                "Checking memory.",
            ),
            json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "OOMKilled"}}),
        )),
        Step::Reply(reply::with_block(
            reply::text("Memory limit too low."),
            json!({"type": "thinking", "thinking": "the limit is 64Mi", "signature": "c2ln"}),
        )),
    ])
    .await;
    let client = client(&model, fast_retry(1));
    let mut request = question();
    let first = client.create_message(&request).await.expect("first turn");
    assert_eq!(first.response.content.len(), 3);
    assert_eq!(first.response.content[2], ContentBlock::Unsupported);

    request.messages.push(Message {
        role: Role::Assistant,
        content: first.response.content.clone(),
    });
    request.messages.push(Message {
        role: Role::User,
        content: vec![ContentBlock::tool_result(
            "toolu_1",
            "checkout-1 63Mi/64Mi",
            false,
        )],
    });
    // The server rejects unknown block types, so acceptance proves the block was dropped.
    let second = client
        .create_message(&request)
        .await
        .expect("second turn accepted");
    assert_eq!(
        second.response.content,
        vec![
            ContentBlock::text("Memory limit too low."),
            ContentBlock::Unsupported
        ]
    );
    let resent = &model.requests()[1].body["messages"][1]["content"];
    assert_eq!(resent.as_array().map(Vec::len), Some(2), "{resent}");
}

#[tokio::test]
async fn a_success_status_with_a_broken_body_is_a_decode_error() {
    let model = ScriptedModel::start(vec![Step::RawBody {
        status: 200,
        content_type: "application/json".into(),
        body: "{\"id\": \"msg_1\", \"content\": [".into(),
    }])
    .await;
    let error = client(&model, fast_retry(3))
        .create_message(&question())
        .await
        .expect_err("truncated body");
    assert!(
        matches!(&error, ApiError::Decode { status: 200, body_snippet, .. } if body_snippet.starts_with("{\"id\"")),
        "{error:?}"
    );
    assert_eq!(model.requests().len(), 1, "decode errors are not retried");
}

#[tokio::test]
async fn an_exhausted_script_fails_loudly() {
    let model = ScriptedModel::start(vec![Step::Reply(reply::text("only one"))]).await;
    let client = client(&model, fast_retry(1));
    client.create_message(&question()).await.expect("first");
    let (_, last) = exhausted_last(
        client
            .create_message(&question())
            .await
            .expect_err("no more steps"),
    );
    assert_eq!(
        last.to_string(),
        "Messages API returned 500 api_error: script exhausted after 1 steps"
    );
}

#[test]
fn missing_api_key_is_a_clear_error() {
    let error = ClientConfig::from_lookup(|_| None).expect_err("no key");
    assert!(matches!(error, ApiError::MissingApiKey));
    assert_eq!(error.to_string(), "ANTHROPIC_API_KEY is not set");
    let error = ClientConfig::from_lookup(|name| (name == "ANTHROPIC_API_KEY").then(String::new))
        .expect_err("empty key");
    assert!(matches!(error, ApiError::MissingApiKey));
}

#[test]
fn a_blocking_server_serves_a_client_on_another_runtime() {
    let model =
        ScriptedModel::start_blocking(vec![Step::overloaded(), Step::Reply(reply::text("ok"))]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let reply = runtime
        .block_on(client(&model, fast_retry(3)).create_message(&question()))
        .expect("reply");
    assert_eq!(reply.attempts, 2);
    assert_eq!(model.requests().len(), 2);
}
