package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/workload"
)

const ms = int64(time.Millisecond)

// scenario is a hand-made run: a manifest of 110 traces and what the sink
// received of them, each request at a chosen arrival time.
//
//	fast    seq 0..99, 2 spans, 5 %; kept seq 0..7 at T0+2s+10ms..80ms;
//	        seq 1 lost a span (partial), seq 2 has a duplicate span arriving
//	        500 ms later (must not move its latency), seq 7's second span
//	        has no tracestate (missing th).
//	error   seq 100..103, 3 spans, th 100 %, all kept, latency 100..400 ms.
//	anomaly seq 104..107, 1 span, th 100 %, seq 104..106 kept (latency
//	        5, 6, 7 ms); seq 106 is labelled "error" (label mismatch).
//	slow    seq 108, late, 1 span, kept: excluded from latency.
//	huge    seq 109, 40 spans in two requests (+500 ms, +1000 ms) and a
//	        duplicate of span 1 at +3000 ms: complete, duplicated, 1000 ms.
//	foreign seq 999 (not in the manifest) 2 labelled spans; seq 998 one
//	        span without labels.
const t0 = int64(1_700_000_000_000_000_000)

func scenario() (*recorder, *manifestData) {
	completion := 2 * time.Second.Nanoseconds()
	at := func(d int64) int64 { return t0 + completion + d }
	rec := newRecorder()
	m := &manifestData{path: "test", header: workload.ManifestHeader{Header: true, Seed: 1, Rate: 100, DurationS: 1, ErrorPct: 2, StartedUnixNano: t0}}
	add := func(seq int64, class string, spans int, late bool) {
		m.traces = append(m.traces, workload.ManifestTrace{
			Seq: seq, TraceID: testTraceHex(seq), Class: class, Spans: spans,
			Route: "svc-01/op-01", RootMs: 10, LastSendUnixNano: t0, Late: late,
		})
	}
	for seq := int64(0); seq < 100; seq++ {
		add(seq, workload.ClassFast, 2, false)
	}
	for seq := int64(0); seq < 8; seq++ {
		spans := labelled(seq, workload.ClassFast, 2, th5pct)
		switch seq {
		case 1:
			spans = spans[:1]
		case 7:
			spans[1].ts = ""
		}
		rec.record(traces(spans...), at((seq+1)*10*ms))
	}
	rec.record(traces(labelled(2, workload.ClassFast, 1, th5pct)...), at(500*ms))

	for i, seq := range []int64{100, 101, 102, 103} {
		add(seq, workload.ClassError, 3, false)
		rec.record(traces(labelled(seq, workload.ClassError, 3, th100pct)...), at(int64(i+1)*100*ms))
	}
	for i, seq := range []int64{104, 105, 106, 107} {
		add(seq, workload.ClassAnomaly, 1, false)
		if seq == 107 {
			continue
		}
		class := workload.ClassAnomaly
		if seq == 106 {
			class = workload.ClassError
		}
		rec.record(traces(labelled(seq, class, 1, th100pct)...), at(int64(i+5)*ms))
	}
	add(108, workload.ClassSlow, 1, true)
	rec.record(traces(labelled(108, workload.ClassSlow, 1, th100pct)...), at(20_000*ms))

	add(109, workload.ClassHuge, 40, false)
	huge := labelled(109, workload.ClassHuge, 40, th100pct)
	rec.record(traces(huge[:20]...), at(500*ms))
	rec.record(traces(huge[20:]...), at(1000*ms))
	rec.record(traces(huge[0]), at(3000*ms))

	rec.record(traces(labelled(999, workload.ClassFast, 2, th5pct)...), at(0))
	rec.record(traces(span{seq: 998, id: 1, noSeq: true}), at(0))
	return rec, m
}

func rowOf(t *testing.T, rep *sinkreport.Report, class string) sinkreport.ClassRow {
	t.Helper()
	for _, r := range rep.Classes {
		if r.Class == class {
			return r
		}
	}
	t.Fatalf("no row for class %q", class)
	return sinkreport.ClassRow{}
}

// assertLatency compares latency figures in ms.
func assertLatency(t *testing.T, l *sinkreport.LatencyStats, count, late int64, p50, p90, p99, maxMs float64) {
	t.Helper()
	require.NotNil(t, l)
	assert.Equal(t, count, l.Count, "count")
	assert.Equal(t, late, l.ExcludedLate, "excluded_late")
	if count == 0 {
		assert.Nil(t, l.P50)
		return
	}
	for _, c := range []struct {
		name      string
		got       *float64
		wantValue float64
	}{{"p50", l.P50, p50}, {"p90", l.P90, p90}, {"p99", l.P99, p99}, {"max", l.Max, maxMs}} {
		if assert.NotNil(t, c.got, c.name) {
			assert.InDelta(t, c.wantValue, *c.got, 1e-9, c.name)
		}
	}
}

func TestScoreManifest(t *testing.T) {
	rec, m := scenario()
	rep := score(rec.snapshot(), m, scoreOptions{fastProbability: 0.05, completion: 2 * time.Second})
	require.True(t, rep.Scored)

	// What arrived in total: 15+12+3+1+40+2+1 = 74 distinct spans, plus 2
	// duplicate arrivals; 8+4+3+1+1+2 = 19 traces.
	assert.Equal(t, sinkreport.ReceivedSummary{
		Requests: 8 + 1 + 4 + 3 + 1 + 3 + 2, SpanArrivals: 76, Spans: 74, DuplicateArrivals: 2, Traces: 19,
		FirstArrivalUnixNano: t0 + 2*time.Second.Nanoseconds() + 10*ms,
		LastArrivalUnixNano:  t0 + 2*time.Second.Nanoseconds() + 20_000*ms,
	}, rep.Received)

	fast := rowOf(t, rep, workload.ClassFast)
	assert.Equal(t, int64(100), fast.TracesSent)
	assert.Equal(t, int64(8), fast.TracesKept)
	assert.Equal(t, int64(7), fast.TracesComplete)
	assert.Equal(t, int64(1), fast.TracesPartial)
	assert.Equal(t, int64(1), fast.TracesDuplicated)
	assert.Equal(t, int64(0), fast.TracesExcess)
	assert.Equal(t, int64(200), fast.SpansSent)
	assert.Equal(t, int64(15), fast.SpansReceived)
	assert.Equal(t, int64(1), fast.DuplicateArrivals)
	assert.Equal(t, int64(1), fast.SpansMissingTh)
	assert.Equal(t, int64(0), fast.TracesMissingTh)
	assert.Equal(t, map[string]int{"0.0500031": 8}, fast.ThProbabilities)
	assert.InDelta(t, 0.08, *fast.KeptFraction, 1e-12)
	// 8 kept traces at 5 %; 14 spans with th (15 minus the one without).
	assert.InDelta(t, 8*adj5pct, fast.Adjusted.TracesEstimate, 1e-9)
	assert.InDelta(t, (8*adj5pct-100)/100, *fast.Adjusted.TracesRelError, 1e-12)
	assert.InDelta(t, 14*adj5pct, fast.Adjusted.SpansEstimate, 1e-9)
	assert.InDelta(t, (14*adj5pct-200)/200, *fast.Adjusted.SpansRelError, 1e-12)
	assertLatency(t, fast.Latency, 8, 0, 40, 80, 80, 80)
	assert.InDelta(t, 10, *fast.Latency.Min, 1e-9)
	assert.InDelta(t, 45, *fast.Latency.Mean, 1e-9)

	// Binomial check: n=100, p=0.05: expected 5, σ=sqrt(4.75), z=3/σ.
	require.NotNil(t, rep.FastCheck)
	fc := rep.FastCheck
	assert.Equal(t, int64(100), fc.Sent)
	assert.Equal(t, int64(8), fc.Kept)
	assert.InDelta(t, 5, fc.Expected, 1e-12)
	assert.InDelta(t, math.Sqrt(4.75), fc.Sigma, 1e-12)
	assert.InDelta(t, 1.3764944032233706, *fc.Z, 1e-12)
	assert.True(t, fc.Within3Sigma)

	errRow := rowOf(t, rep, workload.ClassError)
	assert.Equal(t, int64(4), errRow.TracesSent)
	assert.Equal(t, int64(4), errRow.TracesComplete)
	assert.Equal(t, 4.0, errRow.Adjusted.TracesEstimate)
	assert.Equal(t, 0.0, *errRow.Adjusted.TracesRelError)
	assert.Equal(t, 12.0, errRow.Adjusted.SpansEstimate)
	assert.Equal(t, 0.0, *errRow.Adjusted.SpansRelError)
	assert.Equal(t, map[string]int{"1": 4}, errRow.ThProbabilities)
	assertLatency(t, errRow.Latency, 4, 0, 200, 400, 400, 400)

	an := rowOf(t, rep, workload.ClassAnomaly)
	assert.Equal(t, int64(4), an.TracesSent)
	assert.Equal(t, int64(3), an.TracesKept)
	require.NotNil(t, rep.AnomalyRecall)
	assert.Equal(t, 0.75, *rep.AnomalyRecall)
	assert.InDelta(t, -0.25, *an.Adjusted.TracesRelError, 1e-12)
	assertLatency(t, an.Latency, 3, 0, 6, 7, 7, 7)

	slow := rowOf(t, rep, workload.ClassSlow)
	assert.Equal(t, int64(1), slow.TracesLate)
	assert.Equal(t, int64(1), slow.TracesComplete)
	assertLatency(t, slow.Latency, 0, 1, 0, 0, 0, 0)

	huge := rowOf(t, rep, workload.ClassHuge)
	assert.Equal(t, int64(1), huge.TracesComplete)
	assert.Equal(t, int64(1), huge.TracesDuplicated)
	assert.Equal(t, int64(40), huge.SpansReceived)
	assert.Equal(t, int64(1), huge.DuplicateArrivals)
	assertLatency(t, huge.Latency, 1, 0, 1000, 1000, 1000, 1000)

	// Overall: 5,6,7,10..80,100..400,1000 (16 values).
	tot := rep.Total
	assert.Equal(t, int64(110), tot.TracesSent)
	assert.Equal(t, int64(17), tot.TracesKept)
	assert.Equal(t, int64(16), tot.TracesComplete)
	assert.Equal(t, int64(1), tot.TracesPartial)
	assert.Equal(t, int64(2), tot.TracesDuplicated)
	assert.Equal(t, int64(200+12+4+1+40), tot.SpansSent)
	assert.Equal(t, int64(15+12+3+1+40), tot.SpansReceived)
	assertLatency(t, tot.Latency, 16, 1, 50, 400, 1000, 1000) // ranks 8, 15, 16

	assert.Equal(t, sinkreport.Foreign{
		UnlabelledSpans: 1, UnlabelledTraces: 1,
		TracesNotInManifest: 2, SpansNotInManifest: 3,
		LabelMismatchTraces: 1,
	}, rep.Foreign)
	// Seq 7's span and seq 998's span have no th; seq 998 has none at all.
	assert.Equal(t, sinkreport.MissingTh{Spans: 2, Traces: 1}, rep.MissingTh)
	require.NotNil(t, rep.Manifest)
	assert.Equal(t, int64(110), rep.Manifest.Traces)
	assert.Equal(t, int64(1), rep.Manifest.LateTraces)

	var buf bytes.Buffer
	require.NoError(t, printTable(&buf, rep))
	out := buf.String()
	assert.Contains(t, out, "within 3σ")
	assert.Contains(t, out, "anomaly recall: 75.00")
	assert.Contains(t, out, "late traces excluded")
}

func TestScoreWithoutManifest(t *testing.T) {
	rec, _ := scenario()
	rep := score(rec.snapshot(), nil, scoreOptions{completion: 2 * time.Second})
	assert.False(t, rep.Scored)
	assert.Nil(t, rep.Manifest)
	assert.Nil(t, rep.FastCheck)
	assert.Nil(t, rep.AnomalyRecall)
	// By label: seq 0..7 and 999 are fast; seq 106 claims error.
	fast := rowOf(t, rep, workload.ClassFast)
	assert.Equal(t, int64(9), fast.TracesKept)
	assert.Equal(t, int64(17), fast.SpansReceived)
	assert.InDelta(t, 9*adj5pct, fast.Adjusted.TracesEstimate, 1e-9)
	assert.Nil(t, fast.Adjusted.TracesRelError)
	assert.Nil(t, fast.Latency)
	assert.Equal(t, int64(5), rowOf(t, rep, workload.ClassError).TracesKept)
	assert.Equal(t, int64(1), rowOf(t, rep, "(unlabelled)").TracesKept)
	assert.Equal(t, int64(19), rep.Total.TracesKept)

	var buf bytes.Buffer
	require.NoError(t, printTable(&buf, rep))
	assert.Contains(t, buf.String(), "class (label)")
}

func TestFastCheck(t *testing.T) {
	// 1000 at 5 %: expected 50, σ = sqrt(47.5) ≈ 6.892; 80 is z ≈ 4.35.
	fc := fastCheck(1000, 80, 0.05)
	assert.InDelta(t, 50, fc.Expected, 1e-9)
	assert.InDelta(t, 30/math.Sqrt(47.5), *fc.Z, 1e-12)
	assert.False(t, fc.Within3Sigma)
	fc = fastCheck(1000, 30, 0.05) // z ≈ -2.90
	assert.True(t, fc.Within3Sigma)
	// p = 1: σ = 0, no z; within only when exactly n were kept.
	fc = fastCheck(10, 10, 1)
	assert.Nil(t, fc.Z)
	assert.True(t, fc.Within3Sigma)
	assert.False(t, fastCheck(10, 9, 1).Within3Sigma)
	fc = fastCheck(0, 0, 0.05)
	assert.Nil(t, fc.KeptFraction)
	assert.Nil(t, fc.Z)
}

func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		q    float64
		n    int
		want int
	}{
		{0.5, 1, 0}, {0.99, 1, 0}, {0.5, 2, 0}, {0.5, 4, 1}, {0.5, 5, 2},
		{0.9, 10, 8}, {0.9, 11, 9}, {0.99, 100, 98}, {0.99, 101, 99}, {0.5, 16, 7},
	} {
		assert.Equal(t, c.want, nearestRank(c.q, c.n), "q=%v n=%d", c.q, c.n)
	}
}

func TestThCache(t *testing.T) {
	var c thCache
	for _, tc := range []struct {
		ts   string
		ok   bool
		prob float64
	}{
		{"", false, 0},
		{"vendor=x", false, 0},
		{"ot=rv:abcdef01234567", false, 0},
		{"ot=th:0", true, 1},
		{th5pct, true, 3277.0 / 65536},
		{"vendor=x,ot=rv:abcdef01234567;th:8", true, 0.5},
		{"ot=th:zz", false, 0},
		{"not a tracestate ot=", false, 0},
	} {
		for range 2 { // second time from the cache
			u, ok := c.threshold(tc.ts)
			assert.Equal(t, tc.ok, ok, tc.ts)
			if ok {
				assert.InDelta(t, 1/tc.prob, adjustedCount(u), 1e-12, tc.ts)
			}
		}
	}
}

func TestLoadManifestTruncated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.jsonl")
	var b strings.Builder
	mw, err := workload.NewManifestWriter(&b, workload.ManifestHeader{Seed: 1, Rate: 10})
	require.NoError(t, err)
	mw.Write(&workload.ManifestTrace{Seq: 0, TraceID: testTraceHex(0), Class: workload.ClassFast, Spans: 1})
	mw.Write(&workload.ManifestTrace{Seq: 1, TraceID: testTraceHex(1), Class: workload.ClassError, Spans: 2})
	require.NoError(t, mw.Flush())
	full := b.String()
	require.NoError(t, os.WriteFile(path, []byte(full[:len(full)-10]), 0o644))

	md, err := loadManifest(path)
	require.NoError(t, err)
	assert.Error(t, md.readErr)
	assert.Len(t, md.traces, 1)
	rep := score(newRecorder().snapshot(), md, scoreOptions{})
	assert.NotEmpty(t, rep.Manifest.ReadError)
	assert.Equal(t, int64(1), rep.Total.TracesSent)

	require.NoError(t, os.WriteFile(path, []byte("{\"seq\":1}\n"), 0o644))
	_, err = loadManifest(path)
	assert.Error(t, err)
	_, err = loadManifest(filepath.Join(dir, "absent"))
	assert.Error(t, err)
}

func TestRecorderManySpansOneTrace(t *testing.T) {
	rec := newRecorder()
	spans := labelled(5, workload.ClassHuge, 3000, th100pct)
	rec.record(traces(spans[:1500]...), 1)
	rec.record(traces(spans[1000:]...), 2) // 500 duplicates
	snap := rec.snapshot()
	tr := snap.traces[testTraceID(5)]
	require.NotNil(t, tr)
	assert.Equal(t, uint32(3000), tr.spans)
	assert.Equal(t, uint32(500), tr.dupArrivals)
	assert.Equal(t, int64(2), tr.lastArrival)
	assert.Equal(t, 3000.0, tr.spanAdj)
}

func TestRecorderClassOverflow(t *testing.T) {
	rec := newRecorder()
	for i := range 100 {
		rec.record(traces(span{seq: int64(i), id: 1, class: "c" + strconv.Itoa(i)}), 1)
	}
	snap := rec.snapshot()
	require.Len(t, snap.classes, maxClasses)
	assert.Equal(t, classOther, snap.classes[maxClasses-1])
	assert.Equal(t, "c0", snap.classes[len(workload.Classes)+1])
	assert.Equal(t, "c56", snap.classes[maxClasses-2]) // slots 6..62 hold c0..c56
	rep := score(snap, nil, scoreOptions{})
	assert.Equal(t, int64(100-57), rowOf(t, rep, classOther).TracesKept)
	assert.Equal(t, int64(1), rowOf(t, rep, "c56").TracesKept)
}
