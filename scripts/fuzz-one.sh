#!/bin/sh
# fuzz-one.sh: go test -fuzz ARGS..., again (up to three runs) when the run
# failed only on Go's fuzzing coordinator race at the end of a duration
# -fuzztime (a bare "context deadline exceeded" and no failing input
# written: golang/go#75804, #51484). Any other failure fails at once. With
# 15 targets in make fuzz, two runs left about a 1-in-25 chance that some
# target lost both to the race on a loaded machine (2 races in one run of
# 15 here).
# Usage: scripts/fuzz-one.sh <go test arguments>
set -u
GO=${GO:-go}
for try in 1 2 3; do
	out=$("$GO" test "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ $rc -eq 0 ] && exit 0
	if printf '%s\n' "$out" | grep -q 'context deadline exceeded' &&
		! printf '%s\n' "$out" | grep -q 'Failing input written'; then
		echo "fuzz-one.sh: the fuzzing coordinator's deadline race (no failing input written); run $try of 3" >&2
		continue
	fi
	exit $rc
done
exit 1
