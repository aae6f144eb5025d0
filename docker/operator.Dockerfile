# The operator image: `incident-operator controller` on distroless (glibc, CA certificates, user
# 65532, no shell, no package manager). Build from the repository root:
#
#   docker build -f docker/operator.Dockerfile -t incident-operator:0.1.0 .
#
# The agent image (docker/agent.Dockerfile) holds the same binary plus the tools the agent's shell
# runs; the operator needs none of them.

ARG RUST_VERSION=1

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
    ./target/release/incident-operator --version

# ---- runtime: distroless, non-root. No shell: the operator only talks to the API server.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/incident-operator /usr/local/bin/incident-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/incident-operator"]
CMD ["controller"]
