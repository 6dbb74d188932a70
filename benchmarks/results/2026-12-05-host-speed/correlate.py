#!/usr/bin/env python3
"""Pearson correlation of two hostspeed series (CPU ms per sample), per sample and per 10 samples."""
import math
import statistics as st
import sys


def series(path):
    return [float(l.split()[1]) for l in open(path) if l.strip()][3:]  # the first samples warm up


def pearson(x, y):
    mx, my = st.mean(x), st.mean(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y)) / len(x)
    return cov / (st.pstdev(x) * st.pstdev(y))


x, y = series(sys.argv[1]), series(sys.argv[2])
n = min(len(x), len(y))
x, y = x[:n], y[:n]
print(f'{n} samples; median CPU ms {st.median(x):.2f} and {st.median(y):.2f}')
print(f'Pearson per sample: {pearson(x, y):+.2f}; of the logs: {pearson([math.log(a) for a in x], [math.log(b) for b in y]):+.2f}')
wx = [st.mean(x[i:i + 10]) for i in range(0, n - 9, 10)]
wy = [st.mean(y[i:i + 10]) for i in range(0, n - 9, 10)]
print(f'10-sample means: Pearson {pearson(wx, wy):+.2f}; CPU 0 {min(wx):.1f}-{max(wx):.1f}, CPU 1 {min(wy):.1f}-{max(wy):.1f}')
for a, b in zip(wx, wy):
    print(f'  {a:5.1f} {b:5.1f}')
