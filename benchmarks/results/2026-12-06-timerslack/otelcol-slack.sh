#!/bin/sh
# The collector with a timer slack of 1 ms for all its threads (set before exec; inherited).
export SLACK_NS="${SLACK_NS:-1000000}"
: "${SLACK_BIN:?the collector binary}"
exec python3 -c '
import ctypes,os,sys
libc=ctypes.CDLL(None,use_errno=True)
if libc.prctl(29, int(os.environ["SLACK_NS"]), 0, 0, 0) != 0: sys.exit("prctl failed")
os.execv(sys.argv[1], sys.argv[1:])' "$SLACK_BIN" "$@"
