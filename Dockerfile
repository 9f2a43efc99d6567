# ariflow: a static binary on a minimal, non-root runtime image.
#
#   docker build -t ariflow .
#   docker run --rm ariflow validate /etc/ariflow/flows
#
# The build context is the repository root; see .dockerignore.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that source edits reuse the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ariflow ./cmd/ariflow \
 && /out/ariflow validate flows/examples

# busybox rather than a shell-less image, so that the container can run a
# health check (wget); the binary is static and needs nothing else but the
# CA certificates for https ARI URLs and webhooks.
FROM busybox:stable
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/ariflow /ariflow
# The example flows, so that the image runs on its own; mount your flows
# over /etc/ariflow/flows.
COPY flows/examples/ /etc/ariflow/flows/
ENV ARIFLOW_FLOWS=/etc/ariflow/flows \
    ARIFLOW_HTTP_ADDR=0.0.0.0:8090
# No user of its own in /etc/passwd: a fixed unprivileged uid/gid.
USER 65532:65532
EXPOSE 8090
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8090/readyz"]
ENTRYPOINT ["/ariflow"]
CMD ["run"]
