# syntax=docker/dockerfile:1
# The `porthole-collector` sidecar.
# Build from the repository root:
#   docker build -f deploy/docker/collector.Dockerfile -t porthole-collector:0.1.0 .
# The final image has no shell and no package manager; it runs as uid/gid 65532 and works
# with a read-only root filesystem (the buffer directory is a volume). Built with the
# size-optimised `sidecar` profile (Cargo.toml): resident code pages are most of its memory.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile sidecar --locked -p porthole-collector \
    && install -D -m 0755 target/sidecar/porthole-collector /out/usr/local/bin/porthole-collector \
    && install -d -m 0750 /out/var/lib/porthole-collector

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/usr/local/bin/porthole-collector /usr/local/bin/porthole-collector
COPY --from=builder --chown=65532:65532 /out/var/lib/porthole-collector /var/lib/porthole-collector
USER 65532:65532
ENV PORTHOLE_COLLECTOR_BUFFER_DIR=/var/lib/porthole-collector
VOLUME ["/var/lib/porthole-collector"]
# 8686: the collector's own /healthz and /metrics (--http-addr). Its OTLP receivers for the
# app's SDK listen on 127.0.0.1:4317/4318 inside the pod and are not exposed.
EXPOSE 8686
ENTRYPOINT ["/usr/local/bin/porthole-collector"]
