# raftmq container image.
#
# No registry is reachable from where this is built, so both stages start FROM
# local images made by deploy/mkbase.sh (Debian bookworm via debootstrap):
#
#   deploy/mkbase.sh && docker build -t raftmq:local .
#
# The build needs the network only for Go modules. It takes the module proxy
# and checksum database from the build environment, so this file names no
# host: pass --build-arg GOPROXY="$(go env GOPROXY)" (GOSUMDB, GONOSUMDB,
# GOPRIVATE likewise); left empty, each means Go's own default.
# The legacy builder and BuildKit both accept this file (no BuildKit-only syntax).

ARG BUILDER_IMAGE=raftmq-base/builder:bookworm
ARG RUNTIME_IMAGE=raftmq-base/runtime:bookworm

FROM ${BUILDER_IMAGE} AS build
ARG GOPROXY=
ARG GOSUMDB=
ARG GONOSUMDB=
ARG GOPRIVATE=
ENV GOPROXY=${GOPROXY} GOSUMDB=${GOSUMDB} GONOSUMDB=${GONOSUMDB} GOPRIVATE=${GOPRIVATE} \
    GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS=-mod=readonly
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/raftmq ./cmd/raftmq \
 && /out/raftmq --help >/dev/null

FROM ${RUNTIME_IMAGE}
# A fixed uid outside the host's system range, so bind-mount ownership is clear.
RUN groupadd --gid 10001 raftmq \
 && useradd --uid 10001 --gid raftmq --no-log-init --no-create-home \
            --home-dir /var/lib/raftmq --shell /usr/sbin/nologin raftmq \
 && install -d -o raftmq -g raftmq -m 0750 /var/lib/raftmq \
 && install -d -m 0755 /etc/raftmq
COPY --from=build /out/raftmq /usr/local/bin/raftmq
USER raftmq:raftmq
WORKDIR /var/lib/raftmq
# A named volume mounted here starts with this directory's owner (raftmq); a
# bind mount must be made writable for uid 10001 by hand.
VOLUME /var/lib/raftmq
# 5550: clients (JSON over ZeroMQ), 5560: Raft peers, 9550: HTTP /metrics,
# /healthz and /readyz (deploy/prometheus.yml scrapes it).
ENV RAFTMQ_METRICS_LISTEN=0.0.0.0:9550
EXPOSE 5550 5560 9550
# raftmq serve stops gracefully on SIGTERM (leadership transfer, DBs closed) and
# exits 0; give it more than ShutdownTimeout with `docker stop -t`.
STOPSIGNAL SIGTERM
# Healthy = this node answers GET status (local, never blocks). It says nothing
# about the cluster having a leader: that is `raftmq status` across --servers.
HEALTHCHECK --interval=5s --timeout=4s --start-period=5s --retries=3 \
    CMD ["raftmq", "status", "--servers", "127.0.0.1:5550", "--timeout", "3s"]
ENTRYPOINT ["raftmq"]
CMD ["serve", "--data-dir", "/var/lib/raftmq", "--listen-ip", "0.0.0.0"]
