# syntax=docker/dockerfile:1
# The evident image: a static binary (pure Go, CGO off: the SQLite store is
# modernc.org/sqlite) on distroless's static base, running as nonroot
# (65532). docs/deploy.md says how to build and run it.
#
#   docker build -t evident:dev .
#
# The build is reproducible: -trimpath and an empty build ID leave no path
# or random ID of the build machine in the binary, and -buildvcs=false keeps
# the checkout's state out of it (the .git directory is not in the build
# context), so the same source and Go version give the same binary.
# Pin the base images by digest (name@sha256:...) in a release pipeline.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o /out/evident ./cmd/evident
# The data directory (vulnerability database, SQLite store), owned by the
# runtime user: the static base has no shell to make it. vulndb/ is there
# so that a volume mounted on it starts owned by that user too.
RUN mkdir -p /out/data/vulndb

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/evident /usr/local/bin/evident
COPY --from=build --chown=65532:65532 /out/data /var/lib/evident
ENV EVIDENT_DATA=/var/lib/evident
USER 65532:65532
# API (/healthz, /readyz, /metrics), OTLP/gRPC, OTLP/HTTP, Pyroscope.
EXPOSE 8080 4317 4318 4040
ENTRYPOINT ["/usr/local/bin/evident"]
CMD ["serve", "--config", "/etc/evident/evident.yaml"]
