#!/bin/sh
SLACK_BIN=/work/main/bin/otelcol-contrib-bench exec /work/main/benchmarks/results/2026-12-06-timerslack/otelcol-slack.sh "$@"
