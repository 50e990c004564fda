# syntax=docker/dockerfile:1
#
# Parley container image. Needs BuildKit (the default builder since Docker 23):
#   docker build -t parley .
# or, with Kafka and Prometheus beside it, see deploy/README.md:
#   docker compose up --build

############################
# Build stage
############################
FROM rust:1.95-bookworm AS build

# cmake: librdkafka (rdkafka "cmake-build"); clang/libclang-dev: RocksDB's bindgen;
# libcurl4-openssl-dev + pkg-config: librdkafka's optional HTTP/OIDC support.
# (libssl-dev for rdkafka's "ssl" feature is already in the rust image.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake clang libclang-dev libcurl4-openssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Build inputs only. Cargo.toml declares the lib and bin targets explicitly and no
# [[example]]/[[bench]] targets; there is no benches/ directory or build.rs, and
# examples/ holds data only. schemas/ is documentation and test data; kb/ is read
# at run time (copied into the runtime stage). (Add a build.rs here if one appears.)
COPY Cargo.toml Cargo.lock ./
COPY src ./src

# The registry and target directories are cache mounts, kept between builds; the
# binary is copied out of the target mount because mounts are not part of the image.
RUN --mount=type=cache,id=parley-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=parley-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=parley-target,target=/build/target,sharing=locked \
    cargo build --release --locked --bin parley \
 && install -D -m 0755 target/release/parley /out/parley

############################
# Runtime stage
############################
FROM debian:bookworm-slim AS runtime

# libopenblas0: fast CPU GEMM (loaded at run time; without it Parley falls back to
# a slower built-in GEMM). libcurl4: librdkafka. ca-certificates: TLS to brokers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libopenblas0 libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 parley \
 && useradd --system --uid 10001 --gid parley \
        --home-dir /var/lib/parley --no-create-home --shell /usr/sbin/nologin parley \
 && mkdir -p /var/lib/parley \
 && chown parley:parley /var/lib/parley \
 && chmod 0750 /var/lib/parley

COPY --from=build /out/parley /usr/local/bin/parley
COPY models/intent-en /opt/parley/models/intent-en
# Fetched by scripts/setup.sh (run it before `docker build`).
COPY models/bge-small-en-v1.5 /opt/parley/models/bge-small-en-v1.5
COPY kb /opt/parley/kb
# Demo content, published by docker-compose's demo-content service only.
COPY examples/kb /opt/parley/examples/kb

ENV PARLEY_MODEL=/opt/parley/models/intent-en \
    PARLEY_ENCODER=/opt/parley/models/bge-small-en-v1.5 \
    PARLEY_KB=/opt/parley/kb \
    PARLEY_STATE_DIR=/var/lib/parley \
    PARLEY_METRICS_ADDR=0.0.0.0:9898

# Declared after the directory is created and chowned, so a new named volume
# starts out owned by parley.
VOLUME ["/var/lib/parley"]
WORKDIR /var/lib/parley
USER parley:parley

EXPOSE 9898

# No curl in the image: bash's /dev/tcp sends a plain HTTP/1.0 GET to /healthz on
# the metrics port and expects a 200 status line.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PARLEY_METRICS_ADDR##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && [[ $status == HTTP/1.?' 200'* ]]"]

ENTRYPOINT ["parley"]
CMD ["run"]
