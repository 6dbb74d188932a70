#!/bin/sh
# tailsift-loadgen dispatching every request at its scheduled time (-tick 1ms) instead of in 50 ms clumps
exec /tmp/q8/tailsift-loadgen -tick 1ms "$@"
