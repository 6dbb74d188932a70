#!/bin/sh
# the same binary with output.batch_timeout 200ms: rewrites the fast path's --config
cfg=$2
sed 's#output: {exporter: tailsift/sink}#output: {exporter: tailsift/sink, batch_timeout: 200ms}#' "$cfg" > "$cfg.bt200.yaml"
exec "${TAILSIFT_A:-/tmp/q12/otelcol-tailsift-base}" --config "$cfg.bt200.yaml"
