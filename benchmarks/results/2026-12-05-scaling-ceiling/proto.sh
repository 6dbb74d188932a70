#!/bin/bash
# Same binary, same session: each configuration in its own process (fresh) against
# -test.cpu 1,2 / 2,1 in one process (shared, quiet run 7's D).
T=/tmp/q9/recv.test; OUT=/tmp/q9/proto; mkdir -p $OUT; cd /work/main/receiver/tailsiftreceiver
R="-test.run ^$ -test.bench ParallelIngest/ids=fresh -test.benchtime ${BT:-20000x}"
for r in $(seq 1 ${ROUNDS:-6}); do
  uptime >> $OUT/uptime.txt
  if [ $((r%2)) = 1 ]; then
    $T $R -test.cpu 1 > $OUT/r$r-fresh1.txt 2>&1; $T $R -test.cpu 2 > $OUT/r$r-fresh2.txt 2>&1
    $T $R -test.cpu 1,2 > $OUT/r$r-shared12.txt 2>&1; $T $R -test.cpu 2,1 > $OUT/r$r-shared21.txt 2>&1
  else
    $T $R -test.cpu 2,1 > $OUT/r$r-shared21.txt 2>&1; $T $R -test.cpu 1,2 > $OUT/r$r-shared12.txt 2>&1
    $T $R -test.cpu 2 > $OUT/r$r-fresh2.txt 2>&1; $T $R -test.cpu 1 > $OUT/r$r-fresh1.txt 2>&1
  fi
done
