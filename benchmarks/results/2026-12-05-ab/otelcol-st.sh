#!/bin/sh
GODEBUG="${GODEBUG:+$GODEBUG,}schedtrace=2000000000" exec "${TAILSIFT_A:-/tmp/q12/otelcol-tailsift-base}" "$@"
