#!/bin/bash
# idle.sh bin seconds: CPU of an idle collector (default config, pinned to CPU 0) over seconds, after 10 s
bin=$1; secs=${2:-20}
cfg=$(mktemp -d)/c.yaml
sed -e 's/4317/14317/; s/4318/14318/' /work/main/config/default.yaml > $cfg 2>/dev/null || cp /work/main/config/default.yaml $cfg
taskset -c 0 $bin --config $cfg > /tmp/q12/idle.log 2>&1 &
pid=$!
sleep 10
t0=$(awk '{print $14+$15}' /proc/$pid/stat); sleep $secs; t1=$(awk '{print $14+$15}' /proc/$pid/stat)
v=0; for f in /proc/$pid/task/*/status; do v=$((v+$(awk '/^voluntary_ctxt/{print $2}' $f))); done
kill $pid; wait $pid 2>/dev/null
echo "$bin: $(( (t1-t0)*10 )) ms CPU in $secs s; voluntary switches total $v"
