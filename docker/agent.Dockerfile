# The agent image: `incident-operator agent` (the same binary as the operator image) plus the
# tools the agent's shell runs — kubectl, curl, jq, dig, ip, ss, ps, nc, git — on Debian
# bookworm-slim, as user 65532, with tini as PID 1. Build from the repository root:
#
#   docker build -f docker/agent.Dockerfile -t incident-operator-agent:0.1.0 .
#
# Size estimate and contents: docs/images.md. The builder stage is docker/operator.Dockerfile's,
# line for line (tests/dockerfiles.rs checks it).

ARG RUST_VERSION=1
# Where the binary comes from: `build` compiles it in the builder stage below (a plain `docker build`
# needs nothing else); `prebuilt` takes one built by cargo outside the image from the build context
# named `prebuilt`, checked against INCIDENT_OPERATOR_SHA256 (the pattern of kube-rs' reference
# controller, and how tests/images.rs builds here without a rust image):
#   --build-arg BINARY_SOURCE=prebuilt --build-arg INCIDENT_OPERATOR_SHA256=<sha256> \
#   --build-context prebuilt=<dir holding incident-operator>
ARG BINARY_SOURCE=build
# Where kubectl comes from: `download` (dl.k8s.io) or `prebuilt` (see the kubectl stages below).
ARG KUBECTL_SOURCE=download
# Keep in step with .ci/install-tools.sh; the checksums are in the `kubectl` stage below.
ARG KUBECTL_VERSION=v1.37.1

# ---- builder: dependencies first, in their own layer, so a source change rebuilds only our crate.
FROM rust:${RUST_VERSION}-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_LTO=thin

# Manifests of every workspace member (cargo refuses a workspace with one missing).
COPY Cargo.toml Cargo.lock ./
COPY tests/kube-emulator/Cargo.toml tests/kube-emulator/Cargo.toml
COPY tests/scripted-model/Cargo.toml tests/scripted-model/Cargo.toml
# Stub sources for every member and bench target, then build: this layer holds the compiled
# dependencies and is reused until Cargo.toml or Cargo.lock change.
RUN set -eux; \
    for dir in . tests/kube-emulator tests/scripted-model; do \
        mkdir -p "$dir/src"; \
        echo 'fn main() {}' > "$dir/src/main.rs"; \
        : > "$dir/src/lib.rs"; \
    done; \
    mkdir -p benches; \
    awk '/^\[\[bench\]\]/ {b = 1; next} b && /^name *=/ {gsub(/.*= *"|"/, ""); print; b = 0}' Cargo.toml \
        | while read -r bench; do echo 'fn main() {}' > "benches/$bench.rs"; done; \
    cargo build --release --locked --bin incident-operator; \
    rm -rf src benches

COPY src src
COPY benches benches
# COPY keeps the files' old modification times; make sure cargo sees the real sources as newer
# than the stubs it just compiled.
RUN set -eux; \
    find src -name '*.rs' -exec touch {} +; \
    cargo build --release --locked --bin incident-operator; \
    install -D -m 0755 target/release/incident-operator /out/incident-operator; \
    /out/incident-operator --version

FROM builder AS binary-build

# ---- prebuilt: the binary from the `prebuilt` build context, verified before it is used.
FROM debian:bookworm-slim AS binary-prebuilt
ARG INCIDENT_OPERATOR_SHA256
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# `prebuilt` is a named build context (--build-context), not a stage of this file.
# hadolint ignore=DL3022
COPY --from=prebuilt incident-operator /out/incident-operator
RUN set -eux; \
    if [ -z "${INCIDENT_OPERATOR_SHA256:-}" ]; then \
        echo "BINARY_SOURCE=prebuilt needs --build-arg INCIDENT_OPERATOR_SHA256" >&2; exit 1; \
    fi; \
    echo "${INCIDENT_OPERATOR_SHA256}  /out/incident-operator" | sha256sum --check --strict -; \
    chmod 0755 /out/incident-operator; \
    /out/incident-operator --version

# One of the two stages above, chosen by BINARY_SOURCE (a stage name, so no tag to pin).
# hadolint ignore=DL3006
FROM binary-${BINARY_SOURCE} AS binary

# ---- kubectl: the official release binary, pinned by version and SHA-256. `download` fetches it
# from dl.k8s.io; `prebuilt` takes the same file from the `prebuilt` build context (tests/images.rs
# passes the pinned copy .ci/install-tools.sh installed). The checksum is verified either way.
#   --build-arg KUBECTL_SOURCE=prebuilt --build-context prebuilt=<dir holding kubectl>
FROM debian:bookworm-slim AS kubectl-download
# Set by BuildKit from --platform; amd64 when building without it.
ARG TARGETARCH
ARG KUBECTL_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Versions are not pinned: bookworm's point releases replace them, and a pin would break the build
# on the next security update. The base image tag and the kubectl checksum are what is pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN arch="${TARGETARCH:-amd64}"; \
    curl -fsSL --proto '=https' --tlsv1.2 -o /usr/local/bin/kubectl \
        "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"

FROM debian:bookworm-slim AS kubectl-prebuilt
# `prebuilt` is a named build context (--build-context), not a stage of this file.
# hadolint ignore=DL3022
COPY --from=prebuilt kubectl /usr/local/bin/kubectl

# One of the two stages above, chosen by KUBECTL_SOURCE (a stage name, so no tag to pin).
# hadolint ignore=DL3006
FROM kubectl-${KUBECTL_SOURCE} AS kubectl
ARG TARGETARCH
# To update KUBECTL_VERSION: the new version's
# https://dl.k8s.io/release/<version>/bin/linux/<arch>/kubectl.sha256 for both architectures.
ARG KUBECTL_VERSION
ARG KUBECTL_SHA256_AMD64=65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8
ARG KUBECTL_SHA256_ARM64=ff749f4b78d9c4f1ec87307df9b50119ed819e2094aa9810cb9acffc3286c8c7
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN set -eux; \
    arch="${TARGETARCH:-amd64}"; \
    case "$arch" in \
        amd64) sha256="$KUBECTL_SHA256_AMD64" ;; \
        arm64) sha256="$KUBECTL_SHA256_ARM64" ;; \
        *) echo "no kubectl checksum for architecture $arch" >&2; exit 1 ;; \
    esac; \
    echo "${sha256}  /usr/local/bin/kubectl" | sha256sum --check --strict -; \
    chmod 0755 /usr/local/bin/kubectl; \
    /usr/local/bin/kubectl version --client

# ---- runtime
FROM debian:bookworm-slim
# The agent's toolbox (the system prompt names these tools): curl, jq, dig (bind9-dnsutils, what
# the dnsutils package installs), ip and ss (iproute2), ps (procps), nc (netcat-openbsd), git, CA
# certificates for the Messages API and curl, and tini. Unpinned for the reason given above.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bind9-dnsutils \
        ca-certificates \
        curl \
        git \
        iproute2 \
        jq \
        netcat-openbsd \
        procps \
        tini \
    && rm -rf /var/lib/apt/lists/*
# The same uid/gid as distroless `nonroot`, which the chart's securityContext and the agent pods
# expect. No login shell: the agent runs its commands through /bin/sh itself.
RUN groupadd --gid 65532 agent \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin agent \
    && mkdir -p /var/lib/incident-operator/audit \
    && chown 65532:65532 /var/lib/incident-operator/audit
COPY --from=kubectl /usr/local/bin/kubectl /usr/local/bin/kubectl
COPY --from=binary /out/incident-operator /usr/local/bin/incident-operator
ENV HOME=/tmp \
    INCIDENT_AUDIT_DIR=/var/lib/incident-operator/audit
USER 65532:65532
WORKDIR /tmp
# tini is PID 1: it forwards SIGTERM to the agent and reaps orphaned grandchildren of the shell
# commands (a `kubectl … &` whose parent exited), which would otherwise pile up as zombies.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/incident-operator"]
CMD ["agent"]
