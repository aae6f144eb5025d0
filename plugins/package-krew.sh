#!/usr/bin/env bash
# Builds kubectl-incident, packs it as a krew archive and writes a manifest whose sha256 is that
# archive's: dist/kubectl-incident-<os>-<arch>.tar.gz and dist/incident.yaml.
#   PROFILE=release (default) or debug; URI_BASE= where the archive will be published
#   (default: this version's GitHub release).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile="${PROFILE:-release}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
if [ "$profile" = release ]; then
    cargo build --release --bin kubectl-incident
else
    cargo build --bin kubectl-incident
fi

mkdir -p dist
archive="kubectl-incident-$os-$arch.tar.gz"
tar -czf "dist/$archive" -C "target/$profile" kubectl-incident
sha256="$(sha256sum "dist/$archive" | cut -d' ' -f1)"
uri="${URI_BASE:-https://github.com/sre-agentlab/incident-operator/releases/download/v$version}/$archive"
sed -e "s|@VERSION@|$version|" -e "s|@OS@|$os|" -e "s|@ARCH@|$arch|" \
    -e "s|@URI@|$uri|" -e "s|@SHA256@|$sha256|" \
    -e '/^# krew plugin manifest/,/^#   kubectl krew install/d' \
    plugins/incident.yaml.in > dist/incident.yaml
echo "dist/$archive (sha256 $sha256)"
echo "dist/incident.yaml"
