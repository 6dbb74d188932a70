#!/bin/bash
# The host's speed seen by each vCPU, on an idle machine (nothing else running):
# 8 MiB of random updates per sample on CPU 0 and CPU 1 at once (samples offset
# by half a second), then compute only on CPU 0.
set -e
D=$(dirname "$0"); B=${HOSTSPEED:-/tmp/q11/hostspeed}
taskset -c 0 $B -n 150 -mem 8 > $D/mem-cpu0.txt 2> $D/mem-cpu0.sum &
sleep 0.5
taskset -c 1 $B -n 150 -mem 8 > $D/mem-cpu1.txt 2> $D/mem-cpu1.sum
wait
taskset -c 0 $B -n 90 -mem 0 > $D/compute-cpu0.txt 2> $D/compute-cpu0.sum
python3 $D/correlate.py $D/mem-cpu0.txt $D/mem-cpu1.txt > $D/correlation.txt
