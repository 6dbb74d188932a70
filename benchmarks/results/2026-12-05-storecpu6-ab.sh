#!/bin/bash
# interleaved old/new, paced, both paths; $1 = out dir, $2 = rounds, $3 = benchtime
D=$1; R=$2; N=$3
cd /work/wt/storecpu6/internal/tracebuf
for r in $(seq 1 $R); do
  if [ $((r%2)) = 1 ]; then order="old new"; else order="new old"; fi
  for v in $order; do
    echo "# round $r $v $(date -u +%T) $(uptime)" >> $D/log
    (cd /work/wt/storecpu6/internal/tracebuf && /tmp/storecpu6/tb-$v.test -test.run '^$' -test.bench 'IngestStorePaced' -test.benchtime ${N}x -test.cpu 1 -test.benchmem | grep ^Bench >> $D/fast-$v.txt)
    (cd /work/wt/storecpu6/processor/tailsiftprocessor && /tmp/storecpu6/proc-$v.test -test.run '^$' -test.bench 'ConsumeTracesStorePaced' -test.benchtime ${N}x -test.cpu 1 -test.benchmem | grep ^Bench >> $D/proc-$v.txt)
  done
done
echo finished >> $D/log
