import re,glob,statistics as st,sys
d=sys.argv[1] if len(sys.argv)>1 else "ctl"
def get(f):
    s=open(f).read()
    m=re.search(r'ParallelIngest\S*\s+\d+\s+\d+ ns/op(.*)',s)
    if not m: return None
    kv=dict((b,float(a)) for a,b in re.findall(r'([\d.]+) (\S+)',m.group(1)))
    return kv
rows=[]
for r in range(1,20):
    fs={k:get(f'{d}/r{r}-{k}.txt') for k in ['solo','pairA','pairB','two']} if glob.glob(f'{d}/r{r}-two.txt') else None
    if not fs or None in fs.values(): continue
    solo=fs['solo']['ns/span']; a=fs['pairA']['ns/span']; b=fs['pairB']['ns/span']; two=fs['two']['ns/span']
    ceil=solo/a+solo/b; inproc=solo/two
    slow=(a+b)/2/solo
    cs=fs['solo']['cpu-ns/span']; cp=(fs['pairA']['cpu-ns/span']+fs['pairB']['cpu-ns/span'])/2; ct=fs['two']['cpu-ns/span']
    rows.append((r,solo,a,b,two,ceil,inproc,inproc/ceil,cs,cp,ct,cp/cs,ct/cs))
    print(f"r{r}: solo {solo:.0f} pair {a:.0f}/{b:.0f} two {two:.0f} | 2 procs ÷ 1 = {ceil:.2f}  in-proc 2c÷1c = {inproc:.2f}  ratio {inproc/ceil:.2f} | cpu solo {cs:.0f} pair {cp:.0f} two {ct:.0f}  pair÷solo {cp/cs:.2f} two÷solo {ct/cs:.2f}")
if rows:
    for i,n in [(5,'2 procs÷1'),(6,'in-proc 2c÷1c'),(7,'in-proc÷2procs'),(11,'cpu pair÷solo'),(12,'cpu two÷solo')]:
        v=[x[i] for x in rows]; print(f"{n}: median {st.median(v):.2f} range {min(v):.2f}–{max(v):.2f}")
