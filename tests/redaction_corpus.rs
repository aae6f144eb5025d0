//! The redaction corpus (issue 9 §3): every secret shape the security review fed the redactor, as a
//! table. Each row is a piece of tool output (and the command that printed it); the listed secret
//! values must not survive, and a marker must take their place. The first rows are the 32 forms that
//! already held before the review, the rest the 41 that leaked and the new ones found while fixing
//! them. A second table holds ordinary output that must come back unchanged.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use incident_operator::audit::Redactor;

/// The configured secrets every row runs with: the API key and a `--secret-env` value.
const API_KEY: &str = "sk-ant-api03-Corpus0123456789_AbCdEfGhIjKlMnOpQrStUv-wxyzAA";
const ENV_SECRET: &str = "corpus-env-secret-Value-77";

struct Row {
    form: &'static str,
    command: &'static str,
    output: String,
    /// Substrings that must be gone after redaction.
    secrets: Vec<String>,
}

fn row(form: &'static str, output: impl Into<String>, secrets: &[&str]) -> Row {
    Row {
        form,
        command: "",
        output: output.into(),
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
    }
}

fn after(command: &'static str, mut row: Row) -> Row {
    row.command = command;
    row
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

fn wrapped(encoded: &str, width: usize) -> String {
    encoded
        .as_bytes()
        .chunks(width)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn unicode_escaped(text: &str) -> String {
    text.chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect()
}

const PEM_BODY: &str = "MIIEpAIBAAKCAQEAcorpusKeyBody0123456789abcdef";

fn held_before() -> Vec<Row> {
    vec![
        row(
            "bearer token",
            "Authorization: Bearer abc123.DEF-456_ghi~jkl",
            &["abc123.DEF-456_ghi~jkl"],
        ),
        row(
            "basic auth header",
            "authorization: basic dXNlcjpwYXNzd29yZA==",
            &["dXNlcjpwYXNzd29yZA"],
        ),
        row(
            "PEM RSA key",
            format!("-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"),
            &[PEM_BODY],
        ),
        row(
            "PEM encrypted EC key",
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\nMHcCAQEEcorpus\n-----END EC PRIVATE KEY-----",
            &["MHcCAQEEcorpus"],
        ),
        row(
            "PEM OpenSSH key cut off",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAcorpus",
            &["b3BlbnNzaC1rZXktdjEAAAAcorpus"],
        ),
        row(
            "AWS access key id",
            "aws_access_key_id = AKIAIOSFODNN7CORPUS1",
            &["AKIAIOSFODNN7CORPUS1"],
        ),
        row(
            "AWS session key id",
            "\"AccessKeyId\": \"ASIAY34FZKBOKMUTVV7A\"",
            &["ASIAY34FZKBOKMUTVV7A"],
        ),
        row(
            "AWS secret key",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYCORPUSKEY",
            &["wJalrXUtnFEMI/K7MDENG"],
        ),
        row(
            "AWS secret key JSON",
            "\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYCORPUSKEY\"",
            &["wJalrXUtnFEMI/K7MDENG"],
        ),
        row(
            "GitHub PAT classic",
            "GH=ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            &["ghp_16C7e42F292c6912E7710c838347Ae178B4a"],
        ),
        row(
            "GitHub OAuth token",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            &["gho_16C7e42F292c6912E7710c838347Ae178B4a"],
        ),
        row(
            "GitHub server token",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            &["ghs_16C7e42F292c6912E7710c838347Ae178B4a"],
        ),
        row(
            "GitHub fine-grained PAT",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789",
            &["github_pat_11ABCDEFG0123456789_abcdefghij"],
        ),
        row(
            "Slack bot token",
            "SLACK xoxb-2345678901-3456789012345-AbCdEfGhIjKlMnOpQrStUvWx",
            &["xoxb-2345678901-3456789012345"],
        ),
        row(
            "Slack user token",
            "xoxp-1234567890-abcdef",
            &["xoxp-1234567890-abcdef"],
        ),
        row(
            "Anthropic key shape",
            "key sk-ant-api03-AbCdEf0123456789_GhIjKlMnOpQrStUvWxYz-0123456789AA",
            &["sk-ant-api03-AbCdEf0123456789"],
        ),
        row(
            "OpenAI project key",
            "OPENAI sk-proj-Ab3dEf0123456789GhIjKlMnOpQrStUv",
            &["sk-proj-Ab3dEf0123456789GhIjKlMnOpQrStUv"],
        ),
        row(
            "OpenAI legacy key",
            "sk-0123456789abcdefABCDEF0123456789abcdefABCDEF01",
            &["0123456789abcdefABCDEF"],
        ),
        row(
            "GCP service account key",
            r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgcorpus\n-----END PRIVATE KEY-----\n"}"#,
            &["MIIEvQIBADANBgcorpus"],
        ),
        row(
            "JWT",
            "token is eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzIiwic3ViIjoic2EifQ.c2lnbmF0dXJlLWJ5dGVz.",
            &["eyJpc3MiOiJrdWJlcm5ldGVzIiwic3ViIjoic2EifQ"],
        ),
        row(
            "env PASSWORD",
            "DB_PASSWORD=hunter2\nHOME=/root",
            &["hunter2"],
        ),
        row("yaml passwd", "passwd: s3cret!corpus", &["s3cret!corpus"]),
        row("quoted secret", "secret: 'a b c corpus'", &["a b c corpus"]),
        row(
            "query token",
            "url?token=abc123corpus&x=1",
            &["abc123corpus"],
        ),
        row(
            "JSON apiKey",
            r#"{"apiKey": "k-123 456corpus", "user": "bob"}"#,
            &["k-123 456corpus"],
        ),
        row(
            "mysql --password",
            "mysql --password s3cr3tcorpus --user bob",
            &["s3cr3tcorpus"],
        ),
        row(
            "container env yaml",
            "    env:\n    - name: DB_PASSWORD\n      value: hunter22corpus\n",
            &["hunter22corpus"],
        ),
        row(
            "container env json",
            "{\n  \"name\": \"API_TOKEN\",\n  \"value\": \"t0k3n-corpus\"\n}",
            &["t0k3n-corpus"],
        ),
        row(
            "Secret yaml data",
            "apiVersion: v1\ndata:\n  password: aHVudGVyMg==\nkind: Secret\n",
            &["aHVudGVyMg=="],
        ),
        row(
            "configured API key",
            format!("x-api-key: {API_KEY}"),
            &[API_KEY],
        ),
        row(
            "configured value base64",
            format!("value: {}", b64(ENV_SECRET)),
            &[&b64(ENV_SECRET)],
        ),
        row(
            "configured value base64 with newline",
            format!("value: {}", b64(&format!("{ENV_SECRET}\n"))),
            &[&b64(&format!("{ENV_SECRET}\n"))],
        ),
    ]
}

fn leaked_before() -> Vec<Row> {
    let docker_auth = b64("robot:registry-pass-corpus");
    let dockerconfig = b64(&format!(
        r#"{{"auths":{{"r.io":{{"auth":"{docker_auth}"}}}}}}"#
    ));
    let pem =
        format!("-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n");
    let pem_b64 = b64(&pem);
    let api_key_b64 = b64(API_KEY);
    let api_key_b64_wrapped = wrapped(&b64(&format!("ANTHROPIC_API_KEY={API_KEY}\nOTHER=1\n")), 76);
    vec![
        row(
            "postgres URL",
            "DATABASE_URL=postgres://app:pg-pass-corpus@db:5432/shop",
            &["pg-pass-corpus"],
        ),
        row(
            "postgres URL in a log",
            "connecting to postgres://app:pg-pass-corpus2@db:5432/shop failed",
            &["pg-pass-corpus2"],
        ),
        row(
            "mysql URL",
            "mysql://root:my-pass-corpus@mysql:3306/db",
            &["my-pass-corpus"],
        ),
        row(
            "redis URL without user",
            "redis://:redis-pass-corpus@redis:6379/0",
            &["redis-pass-corpus"],
        ),
        row(
            "mongodb+srv URL",
            "mongodb+srv://svc:mongo-pass-corpus@cluster0.x.mongodb.net/db",
            &["mongo-pass-corpus"],
        ),
        row(
            "amqp URL",
            "amqp://guest:amqp-pass-corpus@rabbit:5672/",
            &["amqp-pass-corpus"],
        ),
        row(
            "proxy URL",
            "https_proxy=http://proxyuser:proxy-pass-corpus@proxy:3128",
            &["proxy-pass-corpus"],
        ),
        row(
            "curl -u",
            "curl -u admin:curl-pass-corpus https://api/health",
            &["curl-pass-corpus"],
        ),
        row(
            "curl --user=",
            "curl --user=admin:curl-pass-corpus2 https://api",
            &["curl-pass-corpus2"],
        ),
        row(
            "dockerconfig auth",
            format!(r#"{{"auths":{{"r.io":{{"auth":"{docker_auth}"}}}}}}"#),
            &[&docker_auth],
        ),
        row(
            "dockerconfigjson base64",
            format!("  .dockerconfigjson: {dockerconfig}"),
            &[&dockerconfig[12..]],
        ),
        after(
            "kubectl get secret db -o jsonpath='{.data.password}'",
            row(
                "raw base64 Secret value (jsonpath)",
                "aHVudGVyMi1jb3JwdXM=",
                &["aHVudGVyMi1jb3JwdXM="],
            ),
        ),
        after(
            "kubectl get secret db -o jsonpath='{.data.password}' | base64 -d",
            row(
                "decoded Secret value",
                "hunter2-corpus",
                &["hunter2-corpus"],
            ),
        ),
        after(
            "kubectl get secret db -o go-template='{{.data.password | base64decode}}'",
            row(
                "decoded Secret value (go-template)",
                "hunter3-corpus",
                &["hunter3-corpus"],
            ),
        ),
        after(
            "cat /etc/secrets/db/password",
            row(
                "mounted Secret file",
                "mounted-pass-corpus",
                &["mounted-pass-corpus"],
            ),
        ),
        row(
            "kubeconfig client-key-data",
            "    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBY29ycHVz",
            &["UFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBY29ycHVz"],
        ),
        row(
            "base64-encoded private key",
            format!("key.pem: {pem_b64}"),
            &[&pem_b64[20..]],
        ),
        row(
            "base64-encoded private key, wrapped",
            wrapped(&pem_b64, 64),
            &[&pem_b64[40..60]],
        ),
        row(
            "Azure AccountKey",
            "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=azKeyCorpus0123456789abcdefABCDEF==;EndpointSuffix=core.windows.net",
            &["azKeyCorpus0123456789abcdefABCDEF=="],
        ),
        row(
            "Azure SAS sig",
            "https://shop.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=SasSigCorpus0123%2Babc%3D&se=2026",
            &["SasSigCorpus0123%2Babc%3D"],
        ),
        row(
            "PEM with kubectl logs --timestamps",
            format!(
                "2026-12-01T09:00:00.000000001Z -----BEGIN RSA PRIVATE KEY-----\n2026-12-01T09:00:00.000000002Z {PEM_BODY}\n2026-12-01T09:00:00.000000003Z -----END RSA PRIVATE KEY-----\n"
            ),
            &[PEM_BODY],
        ),
        row(
            "PEM with cat -A",
            format!("-----BEGIN PRIVATE KEY-----$\n{PEM_BODY}$\n-----END PRIVATE KEY-----$\n"),
            &[PEM_BODY],
        ),
        row(
            "PEM with a log prefix and no footer",
            format!("app | -----BEGIN PRIVATE KEY-----\napp | {PEM_BODY}\n"),
            &[PEM_BODY],
        ),
        row(
            "env *_PWD",
            "MYSQL_ROOT_PWD=pwd-corpus-1",
            &["pwd-corpus-1"],
        ),
        row("env *_PASS", "REDIS_PASS=pass-corpus-2", &["pass-corpus-2"]),
        row("env *_PW", "ADMIN_PW=pw-corpus-3", &["pw-corpus-3"]),
        row("env *_KEY", "SIGNING_KEY=key-corpus-4", &["key-corpus-4"]),
        row(
            "env *_CREDENTIALS",
            "AWS_CREDENTIALS=cred-corpus-5",
            &["cred-corpus-5"],
        ),
        row(
            "env *_DSN",
            "SENTRY_DSN=https://abcdef0123@o1.ingest.sentry.io/42",
            &["abcdef0123"],
        ),
        row(
            "env *_SECRET*",
            "APP_SECRET_KEY_BASE=secret-base-corpus-6",
            &["secret-base-corpus-6"],
        ),
        row(
            "env SECRET_* value",
            "SECRET_VALUE_FOR_JWT=secret-corpus-7",
            &["secret-corpus-7"],
        ),
        row(
            "Stripe live key",
            "stripe: sk_live_51HcorpusABCDEFGHIJKLmnopqrst",
            &["sk_live_51HcorpusABCDEFGHIJKLmnopqrst"],
        ),
        row(
            "GitLab PAT",
            "GITLAB=glpat-CorpusAbCdEfGhIj0123",
            &["glpat-CorpusAbCdEfGhIj0123"],
        ),
        row(
            "Google API key",
            "maps key AIzaSyCorpus0123456789abcdefghijklmnopq",
            &["AIzaSyCorpus0123456789abcdefghijklmnopq"],
        ),
        row(
            "Slack webhook URL",
            "https://hooks.slack.com/services/T00CORPUS/B00CORPUS/XXXXcorpusXXXXXXXXXXXX",
            &["T00CORPUS/B00CORPUS/XXXXcorpus"],
        ),
        row(
            "htpasswd apr1",
            "admin:$apr1$corpus$abcdefghijklmnopqrstuv",
            &["$apr1$corpus$abcdefghijklmnopqrstuv"],
        ),
        row(
            "htpasswd bcrypt",
            "ops:$2y$05$corpusCorpusCorpusCorpuO8ZmFJp3uLjY0h7Oq5Yt8yTq",
            &["corpusCorpusCorpusCorpuO8ZmFJp3uLjY0h7Oq5Yt8yTq"],
        ),
        row(
            "htpasswd SHA",
            "dev:{SHA}corpusCorpus0123456789ab=",
            &["corpusCorpus0123456789ab="],
        ),
        row(
            "value with spaces",
            "password=correct horse battery corpus",
            &["horse battery corpus"],
        ),
        row(
            "value with ;",
            "DB_PASSWORD=abc;def-corpus",
            &["def-corpus"],
        ),
        row(
            "yaml value with spaces",
            "  password: two words corpus",
            &["words corpus"],
        ),
        row(
            "mysql -pX",
            "mysql -h db -u root -pMysqlCorpus1 shop",
            &["MysqlCorpus1"],
        ),
        row(
            "mysqldump -p'X'",
            "mysqldump -u root -p'Mysql Corpus2' shop",
            &["Mysql Corpus2"],
        ),
        row(
            "sshpass -p X",
            "sshpass -p SshCorpus3 ssh ops@host",
            &["SshCorpus3"],
        ),
        row(
            "redis-cli -a X",
            "redis-cli -h redis -a RedisCorpus4 ping",
            &["RedisCorpus4"],
        ),
        row(
            "API key base64",
            format!("encoded: {api_key_b64}"),
            &[&api_key_b64],
        ),
        row(
            "API key base64 wrapped at 76",
            api_key_b64_wrapped.clone(),
            &[&api_key_b64_wrapped[20..40]],
        ),
        row(
            "API key base64url",
            format!("k={}", URL_SAFE_NO_PAD.encode(API_KEY)),
            &[&URL_SAFE_NO_PAD.encode(API_KEY)],
        ),
        row(
            "API key inside longer base64",
            b64(&format!("export ANTHROPIC_API_KEY={API_KEY}")),
            &[&b64(&format!("export ANTHROPIC_API_KEY={API_KEY}"))[40..]],
        ),
        row(
            "API key hex",
            format!("xxd: {}", hex::encode(API_KEY)),
            &[&hex::encode(API_KEY)],
        ),
        row(
            "API key HEX",
            hex::encode_upper(API_KEY),
            &[&hex::encode_upper(API_KEY)],
        ),
        row(
            "API key JSON \\u escapes",
            format!(r#"{{"k":"{}"}}"#, unicode_escaped(API_KEY)),
            &[&unicode_escaped(API_KEY)],
        ),
        row(
            "secret-env value upper-cased",
            format!("VALUE={}", ENV_SECRET.to_uppercase()),
            &[&ENV_SECRET.to_uppercase()],
        ),
        row(
            "secret-env value lower-cased",
            ENV_SECRET.to_lowercase(),
            &[&ENV_SECRET.to_lowercase()],
        ),
        row(
            "secret-env value in a query string",
            "q=corpus-env-secret-Value-77%20",
            &[ENV_SECRET],
        ),
        row(
            "secret cut at a head/tail omission",
            "ok\nDB_PASSWORD=hunter2-cor\n[... 4096 bytes omitted ...]\npus-tail rest\n",
            &["hunter2-cor", "pus-tail"],
        ),
        row(
            "key block cut by an omission",
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n[... 4096 bytes omitted ...]\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\nafter"
            ),
            &["MIIEpAIB", PEM_BODY],
        ),
    ]
}

/// Ordinary output that must come back byte for byte.
const UNTOUCHED: &[&str] = &[
    "NAME                        READY   STATUS    RESTARTS   AGE\ncheckout-api-7d9f8b6c4-x2x9z   1/1     Running   0          3d",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "uid: 2886f5df-6a3b-4c1e-9d2a-0b1c2d3e4f50",
    "image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
    "caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=",
    "apiVersion: v1\ndata:\n  port: \"8080\"\nkind: ConfigMap\n",
    "The password policy requires rotation; tokens expire after 1h.",
    "secretName: db-creds\ntokenRef: x\nPWD=/home/agent\nOLDPWD=/root\npassword: ${DB_PASSWORD}",
    "https://example.com/path?query=1&page=2",
    "postgres://db:5432/shop (no credentials)",
    "http://user@host/ (a user, no password)",
    "NAME   TYPE     DATA   AGE\ndb     Opaque   2      3d",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "résumé — ünïcödé text with no secrets, 日本語",
    "time=12:30:00 level=info msg=\"GET /healthz 200\"",
];

fn redactor() -> Redactor {
    Redactor::new([API_KEY.to_string(), ENV_SECRET.to_string()])
}

fn check(rows: &[Row]) -> Vec<String> {
    let r = redactor();
    let mut failures = Vec::new();
    for row in rows {
        let out = r.redact_command_output(row.command, &row.output);
        let leaked: Vec<&String> = row
            .secrets
            .iter()
            .filter(|s| out.contains(s.as_str()))
            .collect();
        if !leaked.is_empty() || !out.contains("[REDACTED:") {
            failures.push(format!("{}: {leaked:?} survived in {out:?}", row.form));
            continue;
        }
        // Idempotent: redacting the redacted output again changes nothing.
        let again = r.redact_command_output(row.command, &out);
        if again != out {
            failures.push(format!(
                "{}: a second pass changed {out:?} into {again:?}",
                row.form
            ));
        }
    }
    failures
}

#[test]
fn forms_that_held_before_the_review_still_hold() {
    let rows = held_before();
    assert_eq!(rows.len(), 32);
    let failures = check(&rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forms_that_leaked_in_the_review_are_hidden() {
    let rows = leaked_before();
    assert!(rows.len() >= 41, "{}", rows.len());
    let failures = check(&rows);
    assert!(
        failures.is_empty(),
        "{} of {} forms leak:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn ordinary_output_is_untouched() {
    let r = redactor();
    for text in UNTOUCHED {
        assert_eq!(r.redact(text), *text);
    }
}
