#!/bin/bash
# Each configuration in its own process: 1 core, 2 cores, and two 1-core processes at once.
T=/tmp/q9/recv.test; OUT=/tmp/q9/fresh; mkdir -p $OUT; cd /work/main/receiver/tailsiftreceiver
R="-test.run ^$ -test.bench ParallelIngest/ids=fresh -test.benchtime ${BT:-20000x}"
solo() { $T $R -test.cpu 1 > $OUT/r$1-solo.txt 2>&1; }
pair() { $T $R -test.cpu 1 > $OUT/r$1-pairA.txt 2>&1 & $T $R -test.cpu 1 > $OUT/r$1-pairB.txt 2>&1 & wait; }
two()  { $T $R -test.cpu 2 > $OUT/r$1-two.txt 2>&1; }
for r in $(seq 1 ${ROUNDS:-16}); do
  uptime >> $OUT/uptime.txt
  case $((r%3)) in 1) solo $r; two $r; pair $r;; 2) two $r; pair $r; solo $r;; 0) pair $r; solo $r; two $r;; esac
done
