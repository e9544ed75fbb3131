# syntax=docker/dockerfile:1
# The operator image: a static-ish Rust binary on distroless (glibc, CA certificates, no shell),
# running as the distroless "nonroot" user 65532.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace is needed: Cargo resolves every member listed in the root Cargo.toml.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p hdinsight-topic-operator \
 && install -m 0755 target/release/hdinsight-topic-operator /hdinsight-topic-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="hdinsight-topic-operator" \
      org.opencontainers.image.description="Manages Kafka topics on Azure HDInsight through the cluster's Kafka REST proxy" \
      org.opencontainers.image.source="https://github.com/hdinsight-topic-operator/hdinsight-topic-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /hdinsight-topic-operator /hdinsight-topic-operator
USER 65532:65532
# glibc gives each thread that allocates under contention an arena of its own, and keeps what
# each arena once held: after a burst of status writes that is 15 MiB of the 116 MiB peak at
# 10,000 topics (docs/benchmarks.md). Two arenas serve the two runtime workers.
ENV MALLOC_ARENA_MAX=2
EXPOSE 8080 8081
ENTRYPOINT ["/hdinsight-topic-operator", "run"]
