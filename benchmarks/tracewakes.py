# tracewakes.py FILE: from `go tool trace -d=parsed trace.out > FILE` (a runtime/trace taken from
# the pprof extension: curl .../debug/pprof/trace?seconds=5), how often a second the process's P
# went from idle to running and each goroutine blocked, by where it blocked. Fast path, round 3
# in README.md.
import re,collections,sys
lines=open(sys.argv[1]).read().split('\n')
ev=[];cur=None
for l in lines:
    if l.startswith('M='):
        cur=[l,[]];ev.append(cur)
    elif l.startswith('\t') and cur and not l.startswith('\t\t'):
        cur[1].append(l.strip().split(' @')[0])
t0=None;t1=None
block=collections.Counter();pidle=0
for h,st in ev:
    m=re.search(r'Time=(\d+)',h)
    if m:
        t=int(m.group(1)); t0=t if t0 is None else t0; t1=t
    if 'ProcID=' in h and 'Idle->Running' in h: pidle+=1
    if 'GoID=' in h and 'Running->Waiting' in h:
        fr=[f for f in st if not f.startswith('runtime.') and not f.startswith('internal/') and not f.startswith('sync.')]
        key=' < '.join(f.split('/')[-1] for f in fr[:2])
        block[key]+=1
dur=(t1-t0)/1e9
print(f'{sys.argv[1]}: {dur:.1f} s, P idle->running {pidle/dur:.1f}/s, goroutine blocks {sum(block.values())/dur:.1f}/s')
for k,v in block.most_common(9): print(f'{v/dur:7.1f} {k}')
