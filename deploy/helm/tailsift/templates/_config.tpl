{{/*
The collector configurations, as YAML. Each is the chart's base deep-merged
with the tier's configOverride. The deploy/test chart test runs
`otelcol-tailsift validate` on both.
*/}}

{{- define "tailsift.gatewayConfig" -}}
{{- $g := .Values.gateway -}}
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
  {{- if $g.store.enabled }}
  tailsift:
    endpoint: 0.0.0.0:{{ $g.store.port }}
    directory: {{ $g.store.mountPath }}
    retention: {{ $g.store.retention }}
    max_bytes: {{ $g.store.maxBytes }}
  {{- end }}
receivers:
  tailsift:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
    completion:
      quiet: {{ $g.completion.quiet }}
      max_wait: {{ $g.completion.maxWait }}
    buffer:
      max_bytes: {{ $g.bufferMiB }}MiB
    output:
      # The drain runs within it (at most half of it), then the flush.
      shutdown_timeout: {{ include "tailsift.gatewayShutdownSeconds" . }}s
    {{- if $g.store.enabled }}
    # Record spans and decisions in the extension's store (durability across
    # restarts, late errors, the retrieval API).
    storage: tailsift
    {{- end }}
    policies:
      {{- toYaml $g.policies | nindent 6 }}
    cluster:
      self: ${env:POD_IP}:4317
      members:
        dns:
          hostname: {{ include "tailsift.gatewayDNS" . }}
          port: 4317
      drain: {{ $g.drainSeconds }}s
      # Gateways forward to each other's receivers, which serve plain gRPC
      # here, as the agents' exporter does (the client defaults to TLS).
      grpc:
        tls:
          insecure: true
exporters:
  {{- toYaml $g.exporters | nindent 2 }}
service:
  extensions: [health_check{{ if $g.store.enabled }}, tailsift{{ end }}]
  telemetry:
    {{- include "tailsift.telemetry" . | nindent 4 }}
  pipelines:
    traces:
      receivers: [tailsift]
      exporters: {{ toJson $g.pipelineExporters }}
{{- end -}}

{{- define "tailsift.agentConfig" -}}
{{- $a := .Values.agent -}}
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: {{ $a.memoryLimiter.limitPercentage }}
    spike_limit_percentage: {{ $a.memoryLimiter.spikeLimitPercentage }}
  batch:
    send_batch_size: 1024
    timeout: 200ms
exporters:
  tailsift:
    members:
      dns:
        hostname: {{ include "tailsift.gatewayDNS" . }}
        port: 4317
        interval: {{ $a.dnsInterval }}
    grpc:
      tls:
        insecure: true
    sending_queue:
      sizer: bytes
      queue_size: {{ int64 $a.sendingQueueBytes }}
service:
  extensions: [health_check]
  telemetry:
    {{- include "tailsift.telemetry" . | nindent 4 }}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [tailsift]
{{- end -}}
