#!/usr/bin/env python3
"""perf-inclusive.py SCRIPT CATEGORY [SECONDS [N]]: inclusive ms/s of each function over the samples
of one perf-categories.py category ('*' for all), from `perf script` output recorded at 4999 Hz
for SECONDS (20). Prints the N (60) heaviest."""
import collections, importlib.util, os, sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('pc', os.path.join(here, 'perf-categories.py'))
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)
path, want = sys.argv[1], sys.argv[2]
secs = float(sys.argv[3]) if len(sys.argv) > 3 else 20
top = int(sys.argv[4]) if len(sys.argv) > 4 else 60
c, n = collections.Counter(), 0
for f in pc.samples(path):
    if want != '*' and pc.cat(' '.join(f)) != want:
        continue
    n += 1
    for name in set(x.split('+')[0].split(' (')[0] for x in f):
        c[name] += 1
print(n)
for k, v in c.most_common(top):
    print(f'{v:6d} {v/4999/secs*1e3:6.2f} ms/s  {k}')
