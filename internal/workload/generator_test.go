package workload

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"
)

type runStats struct {
	reqs   []*Request
	insts  []*Instance
	spans  int64
	bytes  int64
	late   int64
	traces map[*Instance][]int // request indexes carrying the trace
}

// generate runs a generator in virtual time until it has started n traces,
// then drains it.
func generate(t testing.TB, cfg Config, n int64) (*Generator, *runStats) {
	t.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &runStats{traces: map[*Instance][]int{}}
	stopped := false
	for {
		if !stopped && g.Traces() >= n {
			g.Stop(int64(g.startF))
			stopped = true
		}
		r := g.Next()
		if r == nil {
			break
		}
		idx := len(st.reqs)
		st.reqs = append(st.reqs, r)
		st.spans += int64(r.Spans)
		st.bytes += int64(r.Size)
		st.late += int64(r.LateSpans)
		for _, tr := range r.Traces {
			if _, ok := st.traces[tr.Inst]; !ok {
				st.insts = append(st.insts, tr.Inst)
			}
			st.traces[tr.Inst] = append(st.traces[tr.Inst], idx)
		}
	}
	sort.Slice(st.insts, func(i, j int) bool { return st.insts[i].Seq < st.insts[j].Seq })
	return g, st
}

func TestDistribution(t *testing.T) {
	cfg := Config{Seed: 1, Rate: 20000, ErrorPct: 2, Templates: 500}
	const n = 10000
	g, st := generate(t, cfg, n)
	if int64(len(st.insts)) != g.Traces() || g.Traces() < n {
		t.Fatalf("instances %d, started %d", len(st.insts), g.Traces())
	}
	if g.PendingSpans() != 0 {
		t.Fatalf("pending spans after drain: %d", g.PendingSpans())
	}
	classes := map[string]int{}
	var spansAll, spansNormal, nNormal int
	var lat []float64
	for i, in := range st.insts {
		if in.Seq != int64(i+1) {
			t.Fatalf("seq %d at %d", in.Seq, i)
		}
		tp := in.T
		classes[tp.Class]++
		spansAll += len(tp.Spans)
		if tp.Class != ClassHuge {
			spansNormal += len(tp.Spans)
			nNormal++
			if len(tp.Spans) < 5 || len(tp.Spans) > 50 {
				t.Fatalf("trace with %d spans", len(tp.Spans))
			}
		}
		if tp.Class == ClassFast || tp.Class == ClassSlow {
			lat = append(lat, float64(tp.RootDur))
		}
		if (tp.Class == ClassSlow) != (tp.RootDur >= time.Second) {
			t.Fatalf("class %s with root %v", tp.Class, tp.RootDur)
		}
	}
	mean := float64(spansNormal) / float64(nNormal)
	t.Logf("traces %d, mean spans/trace %.2f (all classes %.2f), classes %v", len(st.insts), mean, float64(spansAll)/float64(len(st.insts)), classes)
	if mean < 11.4 || mean > 12.6 {
		t.Errorf("mean spans/trace %.2f, want 12 +- 0.6", mean)
	}
	frac := func(c string) float64 { return float64(classes[c]) / float64(len(st.insts)) }
	checkFrac := func(c string, want, tol float64) {
		t.Helper()
		if f := frac(c); math.Abs(f-want) > tol {
			t.Errorf("class %s fraction %.4f, want %.4f +- %.4f", c, f, want, tol)
		}
	}
	checkFrac(ClassError, 0.02, 0.005)
	checkFrac(ClassAnomaly, 0.005, 0.0025)
	checkFrac(ClassSlow, 0.0195, 0.005)
	if classes[ClassHuge] > 5 {
		t.Errorf("%d huge traces in %d", classes[ClassHuge], len(st.insts))
	}
	slices.Sort(lat)
	p50 := time.Duration(lat[len(lat)/2])
	p98 := time.Duration(lat[len(lat)*98/100])
	p99 := time.Duration(lat[len(lat)*99/100])
	t.Logf("root latency fast+slow: p50 %v p98 %v p99 %v", p50, p98, p99)
	if p50 < 35*time.Millisecond || p50 > 70*time.Millisecond {
		t.Errorf("root p50 %v, want ~50ms", p50)
	}
	// Log-normal p99 is 1 s; the extra 1 % tail of 2-10 s moves p99 of the
	// mix into the tail and p98 to about 1 s.
	if p98 < 600*time.Millisecond || p98 > 1500*time.Millisecond || p99 < time.Second {
		t.Errorf("root p98 %v p99 %v, want ~1s and >= 1s", p98, p99)
	}

	bps := float64(st.bytes) / float64(st.spans)
	lateFrac := float64(st.late) / float64(st.spans)
	t.Logf("requests %d, spans %d, %.1f spans/request, %.0f B/span, late spans %.3f%%",
		len(st.reqs), st.spans, float64(st.spans)/float64(len(st.reqs)), bps, 100*lateFrac)
	if bps < 520*0.85 || bps > 520*1.15 {
		t.Errorf("bytes/span %.0f, want 520 +- 15%%", bps)
	}
	if lateFrac < 0.002 || lateFrac > 0.009 {
		t.Errorf("late span fraction %.4f, want ~0.005", lateFrac)
	}
	if int64(spansAll) != st.spans {
		t.Errorf("spans in requests %d, in traces %d", st.spans, spansAll)
	}
	for _, r := range st.reqs {
		if r.Spans > 512 {
			t.Fatalf("request with %d spans", r.Spans)
		}
	}
}

// TestRequestsPerTrace checks 2-6 on-time requests per trace, children before
// the root (the root's request is the trace's last on-time one), late spans
// in a later separate request, and requests mixing many traces.
func TestRequestsPerTrace(t *testing.T) {
	cfg := Config{Seed: 7, Rate: 20000, ErrorPct: 2, Templates: 300}
	_, st := generate(t, cfg, 5000)
	hist := map[int]int{}
	multi := 0
	for _, r := range st.reqs {
		if len(r.Traces) > 1 {
			multi++
		}
	}
	for _, in := range st.insts {
		tp := in.T
		onTime := map[int]bool{}
		lateReqs := map[int]bool{}
		rootReq := -1
		for _, ri := range st.traces[in] {
			for _, rr := range st.reqs[ri].runs {
				if rr.inst != in {
					continue
				}
				if tp.Spans[rr.from].Late {
					lateReqs[ri] = true
				} else {
					onTime[ri] = true
				}
				if int32(tp.Root) >= rr.from && int32(tp.Root) < rr.to {
					rootReq = ri
				}
			}
		}
		if rootReq < 0 {
			t.Fatalf("trace %d: root not sent", in.Seq)
		}
		nGroups := len(tp.Groups)
		if tp.Late > 0 {
			nGroups--
		}
		if tp.Class != ClassHuge {
			if len(onTime) != nGroups || nGroups < 2 || nGroups > 6 {
				t.Fatalf("trace %d: %d on-time requests, %d groups", in.Seq, len(onTime), nGroups)
			}
			hist[len(onTime)]++
		}
		for gi, gr := range tp.Groups {
			if gi > 0 && gr.SendOffset < tp.Groups[gi-1].SendOffset {
				t.Fatalf("trace %d: groups out of order", in.Seq)
			}
			if !gr.Late && gi != len(tp.Groups)-1-min(tp.Late, 1) && gr.Latest >= tp.Groups[len(tp.Groups)-1-min(tp.Late, 1)].SendOffset {
				t.Fatalf("trace %d: group %d may be sent after the root group", in.Seq, gi)
			}
		}
		// Every group is sent between joining its lane's batch and its
		// latest time (the lane's batching delay later).
		for _, ri := range st.traces[in] {
			r := st.reqs[ri]
			for _, rr := range r.runs {
				if rr.inst != in {
					continue
				}
				gr := tp.Groups[tp.Spans[rr.from].Group]
				if r.SendV < in.StartV+int64(gr.SendOffset) || r.SendV > in.StartV+int64(gr.Latest) {
					t.Fatalf("trace %d: group sent at %v, window %v..%v", in.Seq,
						time.Duration(r.SendV-in.StartV), gr.SendOffset, gr.Latest)
				}
			}
		}
		for ri := range onTime {
			if ri > rootReq {
				t.Fatalf("trace %d: request %d after root request %d", in.Seq, ri, rootReq)
			}
			if ri != rootReq && st.reqs[ri].SendV >= st.reqs[rootReq].SendV {
				t.Fatalf("trace %d: child request not before root", in.Seq)
			}
		}
		for ri := range lateReqs {
			if onTime[ri] || ri <= rootReq {
				t.Fatalf("trace %d: late request %d not separate/after root %d", in.Seq, ri, rootReq)
			}
			d := time.Duration(st.reqs[ri].SendV - st.reqs[rootReq].SendV)
			if d < 10*time.Second || d > 40*time.Second {
				t.Fatalf("trace %d: late spans %v after root", in.Seq, d)
			}
		}
		// Every span's depth is its parent's plus one.
		for i, s := range tp.Spans {
			if s.Parent >= 0 && tp.Spans[s.Parent].Depth+1 != s.Depth {
				t.Fatalf("trace %d span %d: depth %d, parent depth %d", in.Seq, i, s.Depth, tp.Spans[s.Parent].Depth)
			}
		}
	}
	t.Logf("on-time requests per trace: %v; %d of %d requests mix traces", hist, multi, len(st.reqs))
	for k := 2; k <= 6; k++ {
		if hist[k] == 0 {
			t.Errorf("no trace with %d requests", k)
		}
	}
	if multi < len(st.reqs)/2 {
		t.Errorf("only %d of %d requests mix traces", multi, len(st.reqs))
	}
}

func TestErrorAndAnomalyShape(t *testing.T) {
	g, err := NewGenerator(Config{Seed: 3, Rate: 1000, ErrorPct: 2, Templates: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range g.Pool(ClassError) {
		nErr := 0
		for i, s := range tp.Spans {
			if !s.Error {
				continue
			}
			nErr++
			if s.Depth < 2 || i == tp.Root {
				t.Fatalf("error span at depth %d", s.Depth)
			}
			for _, c := range tp.Spans {
				if c.Parent == int32(i) {
					t.Fatalf("error span is not a leaf")
				}
			}
		}
		if nErr != 1 {
			t.Fatalf("%d error spans", nErr)
		}
	}
	for _, tp := range g.Pool(ClassAnomaly) {
		var svc, op int
		if _, err := fmt.Sscanf(tp.Route, "svc-%d/op-%d", &svc, &op); err != nil {
			t.Fatal(err)
		}
		med := g.model.routeMedian[svc][op]
		f := float64(tp.RootDur) / float64(med)
		if f < 4.99 || f > 10.01 || tp.RootDur >= time.Second {
			t.Fatalf("anomaly %s: %v = %.2f x median %v", tp.Route, tp.RootDur, f, med)
		}
	}
	for _, tp := range g.Pool(ClassHuge) {
		if n := len(tp.Spans); n < 1000 || n > 5000 {
			t.Fatalf("huge trace with %d spans", n)
		}
	}
	for _, c := range []string{ClassFast, ClassError, ClassAnomaly} {
		for _, tp := range g.Pool(c) {
			if tp.RootDur >= time.Second {
				t.Fatalf("%s template with root %v", c, tp.RootDur)
			}
		}
	}
}

func TestReproducible(t *testing.T) {
	cfg := Config{Seed: 42, Rate: 5000, ErrorPct: 3, Templates: 50, Duration: 3 * time.Second}
	sig := func() []int64 {
		g, err := NewGenerator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for r := g.Next(); r != nil; r = g.Next() {
			b := g.AppendRequest(nil, r, 1_700_000_000_000_000_000)
			h := int64(0)
			for _, c := range b {
				h = h*31 + int64(c)
			}
			out = append(out, r.SendV, int64(r.Spans), h)
		}
		return out
	}
	a, b := sig(), sig()
	if !slices.Equal(a, b) || len(a) == 0 {
		t.Fatalf("same seed gave different streams (%d vs %d)", len(a), len(b))
	}
	cfg.Seed = 43
	if c := sig(); slices.Equal(a, c) {
		t.Fatal("different seeds gave the same stream")
	}
}

func TestTraceIDUnique(t *testing.T) {
	seen := map[[16]byte]bool{}
	for seq := int64(1); seq <= 100000; seq++ {
		id := TraceID(1, seq)
		if seen[id] {
			t.Fatalf("duplicate trace ID at %d", seq)
		}
		seen[id] = true
	}
	if TraceID(1, 5) == TraceID(2, 5) {
		t.Fatal("seed does not change trace IDs")
	}
}
