# The tailsift container image: the static collector binary on an empty
# base, run as a numeric non-root user, with no shell and no package manager.
#
# Build it with `make image`: it compiles bin/otelcol-tailsift on the host
# (CGO_ENABLED=0, -trimpath), copies the host's CA bundle next to it, and
# runs `podman build` (or docker) from the repository root. Nothing is
# pulled from a registry, so the build works offline.
#
#   podman run --rm -p 4317:4317 -p 4318:4318 -p 13133:13133 -p 8888:8888 localhost/tailsift:0.1.0
FROM scratch

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="tailsift" \
      org.opencontainers.image.description="tailsift, a tail-based sampling OpenTelemetry Collector distribution" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/tailsift/tailsift" \
      org.opencontainers.image.documentation="https://github.com/tailsift/tailsift#readme" \
      org.opencontainers.image.base.name="scratch"

# TLS to backends (otlp_grpc, otlp_http) verifies against these.
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/otelcol-tailsift /otelcol-tailsift
COPY config/container.yaml /etc/tailsift/config.yaml
# The only writable path: kept traces (data/) and the durable store (store/).
COPY --chown=10001:10001 deploy/image/state/ /var/lib/tailsift/

USER 10001:10001
WORKDIR /var/lib/tailsift

# OTLP gRPC, OTLP HTTP, health_check, the tailsift extension (status page,
# retrieval API), self-metrics (Prometheus).
EXPOSE 4317 4318 13133 13134 8888

ENTRYPOINT ["/otelcol-tailsift"]
CMD ["--config", "/etc/tailsift/config.yaml"]
