import sys, collections
# samples (at 4999 Hz over 20 s) whose stack wakes a socket reader (sock_def_readable), by who writes
for path in sys.argv[1:]:
    tot=0; cnt=collections.Counter()
    def flush(st):
        global tot
        if not st: return
        tot+=1
        if any('sock_def_readable' in f for f in st):
            who='exporter (http2Client)' if any('NewHTTP2Client' in f or 'http2Client' in f for f in st) else ('server (http2Server)' if any('http2Server' in f or 'NewServerTransport' in f for f in st) else 'other')
            cnt[who]+=1
    st=[]
    for line in open(path,errors='replace'):
        line=line.rstrip('\n')
        if not line.strip(): flush(st); st=[]; continue
        if line[0] in ' \t':
            p=line.strip().split(None,1)
            if len(p)==2: st.append(p[1].rsplit(' (',1)[0])
    flush(st)
    w=sum(cnt.values())
    print(f"{path}: {tot} samples; waking a socket reader {w} ({100*w/tot:.1f} %, {w/4999/20*1e3:.2f} ms/s, {w/4999/20/20000*1e6:.3f} us/span):", dict(cnt))
