import sys,collections
# ctxrate.py FILE: from ctxsample.sh's samples, per collector process (binaries named
# bin/otelcol-tailsift-<build>, and the otlp -> nop baseline of bench-e2e): voluntary and
# involuntary context switches a second and CPU ticks a second, without its first 6 s
# (start, warm-up) and last 4 s (drain, shutdown). Fast path, round 3 in README.md.
rows=collections.defaultdict(list)
for line in open(sys.argv[1]):
    f=line.split(None,5)
    if len(f)<6: continue
    t,pid,v,n,cpu,cmd=f
    rows[pid].append((float(t),int(v),int(n),int(cpu),cmd.strip()))
for pid,r in sorted(rows.items(), key=lambda kv: kv[1][0][0]):
    cmd=r[0][4]
    if 'bin/otelcol-tailsift-' not in cmd and 'pair1-baseline' not in cmd: continue
    # skip the first 6 s (start, warm-up) and the last 4 (drain, shutdown)
    t0=r[0][0]
    r=[x for x in r if x[0]>=r[0][0]+6 and x[0]<=r[-1][0]-4]
    if len(r)<2: continue
    dt=r[-1][0]-r[0][0]
    kind=[w for w in cmd.split('/') if w.startswith('pair') or w.startswith('profile')]
    print(f"{__import__('time').strftime('%H:%M:%S', __import__('time').gmtime(t0))} {cmd.split()[0].split('/')[-1]:28s} {(kind or ['?'])[0]:16s} {pid:>7s} {dt:5.1f}s vol/s {(r[-1][1]-r[0][1])/dt:7.1f} invol/s {(r[-1][2]-r[0][2])/dt:6.1f} cpu-ticks/s {(r[-1][3]-r[0][3])/dt:5.2f}")
