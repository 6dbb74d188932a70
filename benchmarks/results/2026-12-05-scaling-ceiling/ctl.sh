#!/bin/bash
# Machine ceiling for BenchmarkParallelIngest/ids=fresh: one process on 1 core alone,
# two independent 1-core processes at once, one process on 2 cores.
T=/tmp/q9/recv.test; OUT=/tmp/q9/ctl; mkdir -p $OUT; cd /work/main/receiver/tailsiftreceiver
R="-test.run ^$ -test.bench ParallelIngest/ids=fresh -test.benchtime ${BT:-20000x}"
solo() { $T $R -test.cpu 1 > $OUT/r$1-solo.txt 2>&1; }
pair() { $T $R -test.cpu 1 > $OUT/r$1-pairA.txt 2>&1 & $T $R -test.cpu 1 > $OUT/r$1-pairB.txt 2>&1 & wait; }
two()  { $T $R -test.cpu 2 > $OUT/r$1-two.txt 2>&1; }
for r in $(seq 1 ${ROUNDS:-4}); do
  uptime >> $OUT/uptime.txt
  if [ $((r%2)) = 1 ]; then solo $r; pair $r; two $r; else two $r; pair $r; solo $r; fi
done
