# Jaeger (v2, all in one, in-memory storage) for the compose profile
# "observe": built from its Go module, so that no image of its own is
# needed. It receives OTLP/HTTP on 127.0.0.1:4318 and serves its UI on
# 127.0.0.1:16686 (jaeger.yaml).
# Build context: deploy/observability/ (docker-compose.yml sets it).
FROM golang:1.26 AS build
ARG JAEGER_VERSION=v1.76.0
# A module of its own: Jaeger's go.mod has a replace directive, which
# `go install pkg@version` refuses.
WORKDIR /src
RUN go mod init jaeger-build \
 && go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@${JAEGER_VERSION} \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /go/bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

FROM busybox:stable
COPY --from=build /go/bin/jaeger /jaeger
COPY jaeger.yaml /etc/jaeger/jaeger.yaml
USER 65532:65532
ENTRYPOINT ["/jaeger", "--config", "/etc/jaeger/jaeger.yaml"]
