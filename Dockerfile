# syntax=docker/dockerfile:1
# The operator image: a static-ish Rust binary on distroless (glibc, CA certificates, no shell),
# running as the distroless "nonroot" user 65532.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace is needed: Cargo resolves every member listed in the root Cargo.toml.
COPY . .
# The binary allocates with jemalloc (src/main.rs), which is built for the page size it is told:
# 64 KiB on arm64, whose kernels may use 16 or 64 KiB pages (a jemalloc built for 4 KiB pages
# fails to start there); a larger page than the kernel's works.
ARG TARGETARCH
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ "$TARGETARCH" = "arm64" ]; then export JEMALLOC_SYS_WITH_LG_PAGE=16; fi \
 && cargo build --release --locked -p hdinsight-topic-operator \
 && install -m 0755 target/release/hdinsight-topic-operator /hdinsight-topic-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="hdinsight-topic-operator" \
      org.opencontainers.image.description="Manages Kafka topics on Azure HDInsight through the cluster's Kafka REST proxy" \
      org.opencontainers.image.source="https://github.com/hdinsight-topic-operator/hdinsight-topic-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /hdinsight-topic-operator /hdinsight-topic-operator
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/hdinsight-topic-operator", "run"]
