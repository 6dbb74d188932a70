{{/* Names and labels. */}}
{{- define "tailsift.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tailsift.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one tier: include with (list $ "gateway"). */}}
{{- define "tailsift.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ $.Chart.Name }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "tailsift.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tailsift.gatewayName" -}}
{{ include "tailsift.fullname" . }}-gateway
{{- end -}}

{{/* The headless Service whose DNS name lists every ready gateway. */}}
{{- define "tailsift.gatewayHeadless" -}}
{{ include "tailsift.fullname" . }}-gateway-headless
{{- end -}}

{{- define "tailsift.gatewayDNS" -}}
{{ include "tailsift.gatewayHeadless" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* Prometheus scrape annotations for a pod template. */}}
{{- define "tailsift.scrapeAnnotations" -}}
{{- if .Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* The collector's own telemetry: Prometheus on every interface. */}}
{{- define "tailsift.telemetry" -}}
metrics:
  readers:
    - pull:
        exporter:
          prometheus:
            host: 0.0.0.0
            port: {{ .Values.metrics.port }}
{{- end -}}

{{/*
Gateway memory, in MiB, from the sizing rule of docs/kubernetes.md:
request = idle + 1.2 x buffer.max_bytes; limit = request + headroom %.
*/}}
{{- define "tailsift.gatewayMemoryRequestMiB" -}}
{{- add .Values.gateway.idleMemoryMiB (div (mul 12 .Values.gateway.bufferMiB) 10) -}}
{{- end -}}

{{- define "tailsift.gatewayMemoryLimitMiB" -}}
{{- $req := include "tailsift.gatewayMemoryRequestMiB" . | int -}}
{{- add $req (div (mul $req .Values.gateway.memoryLimitHeadroomPercent) 100) -}}
{{- end -}}

{{/*
output.shutdown_timeout of the gateways: the tailsift receiver's shutdown
runs within it, the drain included, which gets at most half of it; so it is
twice the drain, or the drain plus shutdownSeconds for the flush if more.
*/}}
{{- define "tailsift.gatewayShutdownSeconds" -}}
{{- with .Values.gateway -}}
{{- max (mul 2 .drainSeconds) (add .drainSeconds .shutdownSeconds) -}}
{{- end -}}
{{- end -}}

{{- define "tailsift.gatewayGraceSeconds" -}}
{{- add .Values.gateway.preStopSeconds (include "tailsift.gatewayShutdownSeconds" . | int) .Values.gateway.graceMarginSeconds -}}
{{- end -}}
