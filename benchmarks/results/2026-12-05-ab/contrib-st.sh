#!/bin/sh
GODEBUG="${GODEBUG:+$GODEBUG,}schedtrace=2000000000" exec "${CONTRIB:-/work/main/bin/otelcol-contrib-bench}" "$@"
