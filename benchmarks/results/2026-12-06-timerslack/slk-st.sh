#!/bin/sh
GODEBUG="${GODEBUG:+$GODEBUG,}schedtrace=2000000000" exec /tmp/ab/otelcol-slk "$@"
