#!/usr/bin/env bash
# Installs Debian's Prometheus and Alertmanager for tests/alertmanager_flapping.rs, which runs both
# binaries directly on loopback with temporary configs (no systemd, no service is started here).
#
# Idempotent: when both binaries are on PATH nothing is done. Needs root (CI runs as root) and
# Debian's package archive. Usage: bash .ci/install-alerting.sh
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have prometheus && have prometheus-alertmanager; then
    echo "install-alerting: prometheus and prometheus-alertmanager already installed"
    exit 0
fi

if ! have apt-get; then
    echo "install-alerting: ERROR: apt-get not found; install Prometheus and Alertmanager by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The packages' maintainer scripts try to start services; without systemd that only prints a warning.
apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager

for binary in prometheus prometheus-alertmanager; do
    have "$binary" || { echo "install-alerting: ERROR: $binary missing after install" >&2; exit 1; }
done
echo "install-alerting: $(prometheus --version 2>&1 | head -1)"
echo "install-alerting: $(prometheus-alertmanager --version 2>&1 | head -1)"
