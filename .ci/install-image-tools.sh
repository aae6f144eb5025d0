#!/usr/bin/env bash
# Installs the Debian packages the image tests (tests/images.rs) need: buildah (builds the
# Dockerfiles, no daemon), mmdebstrap (makes the local base images from Debian's packages), umoci
# (unpacks a built image into a root filesystem) and uidmap (buildah wants newuidmap present).
# Idempotent: packages already installed are not fetched again. Needs root (CI runs as root).
# Usage: bash .ci/install-image-tools.sh
set -euo pipefail

packages=(buildah mmdebstrap umoci uidmap)
commands=(buildah mmdebstrap umoci newuidmap)

missing=()
for i in "${!commands[@]}"; do
    command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-image-tools: buildah, mmdebstrap, umoci already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-image-tools: ERROR: ${missing[*]} missing and not root; install them with apt-get" >&2
    exit 1
fi
echo "install-image-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
for c in "${commands[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { echo "install-image-tools: ERROR: $c still missing" >&2; exit 1; }
done
echo "install-image-tools: $(buildah --version); $(mmdebstrap --version); $(umoci --version)"
