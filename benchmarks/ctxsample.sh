#!/bin/bash
# ctxsample.sh OUT: once a second, for every otelcol process, the sum of its
# threads' voluntary and involuntary context switches and its CPU ticks.
out=$1
while :; do
  for p in $(pgrep -f 'otelcol-'); do
    [ -r /proc/$p/cmdline ] || continue
    exe=$(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-160)
    v=0; n=0
    for f in /proc/$p/task/*/status; do
      while read -r k val; do
        case $k in voluntary_ctxt_switches:) v=$((v+val));; nonvoluntary_ctxt_switches:) n=$((n+val));; esac
      done < "$f" 2>/dev/null
    done
    cpu=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null)
    echo "$(date +%s.%N) $p $v $n $cpu $exe"
  done >> "$out"
  sleep 1
done
