# syntax=docker/dockerfile:1
#
# The mcp-director image: the one binary on debian:bookworm-slim, run as uid 10001.
#
#   docker build -t mcp-director .
#   docker run --rm -p 127.0.0.1:3000:3000 -v mcp-director:/data mcp-director
#
# Defaults baked in (each can be overridden with `-e`, or with the matching flag):
#   MCP_DIRECTOR_DATA_DIR=/data       (--data-dir)  the volume: SQLite store and, without --config,
#                                                   the configuration file /data/mcp-director.toml
#   MCP_DIRECTOR_BIND=0.0.0.0:3000    (--bind)      takes precedence over [settings] bind
# For several replicas see README "Running several replicas" and deploy/kubernetes/.

# Any Rust 1.x from 1.88 on (Cargo.toml: rust-version = "1.88", edition 2024).
ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace (see .dockerignore): the members (., xtask, generated/*), build.rs, which
# embeds spec/openapi.yaml, and migrations/, which src/store.rs embeds with include_str!.
COPY . .
# The binary is copied out of the cached target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin mcp-director \
 && install -D -m 0755 target/release/mcp-director /out/mcp-director

FROM debian:bookworm-slim
# ca-certificates: HTTPS upstreams and OpenID Connect providers are verified against the system
# roots. Nothing else: no curl, so no HEALTHCHECK here (orchestrators probe GET /health).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 director \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin director \
 && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /out/mcp-director /usr/local/bin/mcp-director
ENV MCP_DIRECTOR_DATA_DIR=/data \
    MCP_DIRECTOR_BIND=0.0.0.0:3000
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# The director handles SIGTERM itself (open streams get notifications/shutdown, stdio upstreams'
# process groups are stopped). With stdio upstreams, run with `docker run --init` so that
# processes they leave behind are reaped.
ENTRYPOINT ["/usr/local/bin/mcp-director"]
CMD ["serve"]
