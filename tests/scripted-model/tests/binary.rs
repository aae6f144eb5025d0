//! The `scripted-model` binary: serves a script file and prints its URL first, as demos rely on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one HTTP/1.1 request and returns the raw response (the server closes after `Connection: close`).
fn post(address: &str, path: &str, body: &str, with_key: bool) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let key = if with_key { "x-api-key: test\r\n" } else { "" };
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\n{key}anthropic-version: 2023-06-01\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

fn json_body(response: &str) -> serde_json::Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("header end");
    serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("body is not JSON ({error}): {response}"))
}

#[test]
fn serves_a_script_file_and_prints_its_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("script.json");
    std::fs::write(
        &script,
        r#"[
            {"error": {"status": 529, "error_type": "overloaded_error", "message": "Overloaded", "retry_after": "2"}},
            {"reply": {"content": [{"type": "text", "text": "The disk is full."}]}}
        ]"#,
    )
    .expect("write script");

    let child = Command::new(env!("CARGO_BIN_EXE_scripted-model"))
        .arg("--script")
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scripted-model");
    let mut server = Server(child);
    let stdout = server.0.stdout.take().expect("stdout");
    let mut url = String::new();
    BufReader::new(stdout)
        .read_line(&mut url)
        .expect("first line");
    let address = url
        .trim()
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("first line is not a URL: {url:?}"))
        .to_owned();

    let body = r#"{"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "why?"}]}"#;
    let unauthenticated = post(&address, "/v1/messages", body, false);
    assert!(
        unauthenticated.starts_with("HTTP/1.1 401"),
        "{unauthenticated}"
    );
    assert!(
        unauthenticated.contains("authentication_error"),
        "{unauthenticated}"
    );

    let overloaded = post(&address, "/v1/messages", body, true);
    assert!(overloaded.starts_with("HTTP/1.1 529"), "{overloaded}");
    assert!(overloaded.contains("retry-after: 2"), "{overloaded}");
    let error = json_body(&overloaded);
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert_eq!(error["error"]["message"], "Overloaded");

    let answered = post(&address, "/v1/messages", body, true);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    let reply = json_body(&answered);
    assert_eq!(reply["content"][0]["text"], "The disk is full.");
    assert_eq!(reply["model"], "claude-sonnet-4-6");
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["stop_reason"], "end_turn");
    assert!(
        reply["usage"]["input_tokens"]
            .as_u64()
            .is_some_and(|tokens| tokens > 0)
    );
    assert!(
        reply["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_"))
    );

    let exhausted = post(&address, "/v1/messages", body, true);
    assert!(exhausted.starts_with("HTTP/1.1 500"), "{exhausted}");
    assert!(
        exhausted.contains("script exhausted after 2 steps"),
        "{exhausted}"
    );
}

#[test]
fn refuses_an_invalid_script() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("bad.json");
    std::fs::write(&script, r#"[{"explode": {}}]"#).expect("write script");
    let output = Command::new(env!("CARGO_BIN_EXE_scripted-model"))
        .arg("--script")
        .arg(&script)
        .output()
        .expect("run scripted-model");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a valid list of steps"), "{stderr}");
    assert!(stderr.contains("explode"), "{stderr}");
}
