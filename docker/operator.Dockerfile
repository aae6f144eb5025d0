# The operator image: `incident-operator controller` on distroless (glibc, CA certificates, user
# 65532, no shell, no package manager). Build from the repository root:
#
#   docker build -f docker/operator.Dockerfile -t incident-operator:0.1.0 .
#
# The agent image (docker/agent.Dockerfile) holds the same binary plus the tools the agent's shell
# runs; the operator needs none of them.

ARG RUST_VERSION=1
# Where the binary comes from: `build` compiles it in the builder stage below (a plain `docker build`
# needs nothing else); `prebuilt` takes one built by cargo outside the image from the build context
# named `prebuilt`, checked against INCIDENT_OPERATOR_SHA256 (the pattern of kube-rs' reference
# controller, and how tests/images.rs builds here without a rust image):
#   --build-arg BINARY_SOURCE=prebuilt --build-arg INCIDENT_OPERATOR_SHA256=<sha256> \
#   --build-context prebuilt=<dir holding incident-operator>
ARG BINARY_SOURCE=build

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

# ---- runtime: distroless, non-root. No shell: the operator only talks to the API server.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=binary /out/incident-operator /usr/local/bin/incident-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/incident-operator"]
CMD ["controller"]
