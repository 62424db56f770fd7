# syntax=docker/dockerfile:1
# Porthole: `porthole` (the client commands; every other command runs `porthole-server`,
# installed beside it) and `porthole-server` (serve | ingest | query | compact | demo).
# Build from the repository root:
#   docker build -f deploy/docker/porthole.Dockerfile -t porthole:0.1.0 .
# The final image has no shell and no package manager; it runs as uid/gid 65532 and works
# with a read-only root filesystem (every writable path is a volume: --data-dir, TMPDIR).

# The web UI, built once with npm; cli/build.rs embeds it from PORTHOLE_WEB_DIST.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
COPY --from=web /web/dist /web-dist
ENV PORTHOLE_WEB_DIST=/web-dist
# The registry and target caches make rebuilds incremental; the binary is copied out of the
# cache mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p porthole \
    && install -D -m 0755 target/release/porthole /out/usr/local/bin/porthole \
    && install -D -m 0755 target/release/porthole-server /out/usr/local/bin/porthole-server \
    && install -d -m 0750 /out/var/lib/porthole

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/usr/local/bin/porthole /usr/local/bin/porthole
COPY --from=builder /out/usr/local/bin/porthole-server /usr/local/bin/porthole-server
COPY --from=builder --chown=65532:65532 /out/var/lib/porthole /var/lib/porthole
USER 65532:65532
WORKDIR /var/lib/porthole
ENV PORTHOLE_DATA_DIR=/var/lib/porthole/data \
    TMPDIR=/tmp
VOLUME ["/var/lib/porthole"]
# 4317 OTLP/gRPC (and the live-tail service), 4318 OTLP/HTTP, 8080 API, /healthz, /readyz, /metrics.
EXPOSE 4317 4318 8080
ENTRYPOINT ["/usr/local/bin/porthole"]
CMD ["serve"]
