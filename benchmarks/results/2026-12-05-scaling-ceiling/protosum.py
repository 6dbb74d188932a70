import re,glob,statistics as st
def get(f):
    out=[]
    for line in open(f):
        m=re.match(r'BenchmarkParallelIngest/ids=fresh(-2)?\s+\d+\s+\d+ ns/op(.*)',line)
        if m:
            kv=dict((b,float(a)) for a,b in re.findall(r'([\d.]+) (\S+)',m.group(2)))
            out.append((2 if m.group(1) else 1,kv))
    return out
F=[];S=[];Fc=[];Sc=[]
for r in range(1,20):
    if not glob.glob(f'proto/r{r}-fresh1.txt') or not glob.glob(f'proto/r{r}-shared12.txt'): continue
    try:
        f1=get(f'proto/r{r}-fresh1.txt')[0][1]; f2=get(f'proto/r{r}-fresh2.txt')[0][1]
        s12=dict(get(f'proto/r{r}-shared12.txt')); s21=dict(get(f'proto/r{r}-shared21.txt'))
    except Exception as e: continue
    fr=f1['ns/span']/f2['ns/span']; a=s12[1]['ns/span']/s12[2]['ns/span']; b=s21[1]['ns/span']/s21[2]['ns/span']
    F.append(fr); S+= [a,b]
    Fc.append(f2['cpu-ns/span']/f1['cpu-ns/span']); Sc+=[s12[2]['cpu-ns/span']/s12[1]['cpu-ns/span'], s21[2]['cpu-ns/span']/s21[1]['cpu-ns/span']]
    print(f"r{r}: fresh 1c {f1['ns/span']:.0f} 2c {f2['ns/span']:.0f} = {fr:.2f} | shared 1,2: 1c {s12[1]['ns/span']:.0f} 2c {s12[2]['ns/span']:.0f} = {a:.2f} | shared 2,1: 2c {s21[2]['ns/span']:.0f} 1c {s21[1]['ns/span']:.0f} = {b:.2f}")
for n,v in [('fresh',F),('shared',S),('fresh cpu 2c/1c',Fc),('shared cpu 2c/1c',Sc)]:
    if v: print(f"{n}: median {st.median(v):.2f} range {min(v):.2f}–{max(v):.2f} n={len(v)}")
