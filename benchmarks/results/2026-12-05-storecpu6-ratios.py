# ratios.py DIR: per round, store on ÷ off of cpu-ns/span from the paced benchmarks (lines in off, zstd, s2 triples);
# writes DIR/ratio-<path>-<v>.txt in benchstat's format (unit on/off).
import sys,re,os,statistics
d=sys.argv[1]
for path in ('fast','proc'):
    for v in ('old','new'):
        f=f'{d}/{path}-{v}.txt'
        if not os.path.exists(f): continue
        vals={}
        for l in open(f):
            m=re.match(r'(\S+?)/store=(\w+)\S*\s+\d+\s+.*?(\d+(?:\.\d+)?) cpu-ns/span',l)
            if m: vals.setdefault(m.group(2),[]).append(float(m.group(3)))
        n=min(len(x) for x in vals.values())
        out=open(f'{d}/ratio-{path}-{v}.txt','w')
        rz=[vals['zstd'][i]/vals['off'][i] for i in range(n)]
        rs=[vals['s2'][i]/vals['off'][i] for i in range(n)]
        for i in range(n):
            out.write(f'BenchmarkRatio/store=zstd 1 {rz[i]:.4f} on/off\nBenchmarkRatio/store=s2 1 {rs[i]:.4f} on/off\n')
        print(f'{path} {v}: off {" ".join("%.0f"%x for x in vals["off"][:n])} | zstd/off {" ".join("%.2f"%x for x in rz)} (median {statistics.median(rz):.2f}) | s2/off {" ".join("%.2f"%x for x in rs)} (median {statistics.median(rs):.2f})')
