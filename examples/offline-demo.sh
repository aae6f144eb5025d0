#!/usr/bin/env bash
# Runs `incident-operator investigate` on the example incident against the scripted Messages API
# server on loopback (the one the tests use), for machines with no route to the Anthropic API.
# Everything but the model is real: the client (incl. a 429 retry), the commands, the audit files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release -p incident-operator -p scripted-model
audit_dir="${INCIDENT_AUDIT_DIR:-$(mktemp -d)}"
url_file="$(mktemp)"
./target/release/scripted-model --script examples/demo-script.json >"$url_file" 2>/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$url_file"' EXIT
for _ in $(seq 50); do [ -s "$url_file" ] && break; sleep 0.1; done
ANTHROPIC_API_KEY="${ANTHROPIC_API_KEY:-offline-demo-key}" \
ANTHROPIC_BASE_URL="$(head -n 1 "$url_file")" \
  ./target/release/incident-operator investigate --file examples/incident.yaml --audit-dir "$audit_dir" "$@"
