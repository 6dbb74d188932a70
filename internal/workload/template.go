package workload

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Template is one pre-encoded trace: its spans encoded once, in send order,
// with the byte offset of every field patched per instance.
type Template struct {
	Class   string
	Route   string // root route, "svc-03/op-11"
	RootDur time.Duration
	Spans   []SpanInfo  // in encoding (send) order
	Patch   []SpanPatch // parallel to Spans
	Enc     []byte      // concatenated encoded spans (ScopeSpans.spans fields)
	Groups  []Group     // on-time groups in send order (root group last), then the late group if any
	Late    int         // number of late spans
	Root    int         // index of the root span in Spans
}

// SpanPatch locates one encoded span in Template.Enc and its patched fields.
// All offsets are absolute in Enc.
type SpanPatch struct {
	Off, Len         int32 // the span's ScopeSpans.spans field (tag+length+message)
	TraceID          int32 // 16 bytes
	Start, End       int32 // fixed64 unix nanos
	Seq              int32 // SeqWidth-byte padded varint
	RelStart, RelEnd int64 // ns from trace start
}

// SpanInfo is the template's view of one span, for tests and inspection.
type SpanInfo struct {
	Service uint8
	Op      uint8
	Depth   uint8
	Parent  int32 // index in Spans, -1 for the root
	Error   bool
	Late    bool
	Group   int16 // index in Template.Groups
}

// Group is a set of spans of one trace that an SDK flushes together: they
// always travel in the same request (huge groups are split at MaxSpans).
type Group struct {
	SendOffset time.Duration // from trace start: when it joins its lane's batch
	Latest     time.Duration // from trace start: when that batch is sent at the latest
	Lane       uint8         // service whose batch carries the group
	Late       bool
	Spans      int
	Runs       []Run // per service, contiguous in Enc
}

// Run is a contiguous range of spans [From, To) of one service.
type Run struct {
	Service  uint8
	From, To int32
	Bytes    int32 // encoded size of the run's spans
}

// runBytes is the encoded size of spans [from, to).
func (t *Template) runBytes(from, to int32) int32 {
	return t.Patch[to-1].Off + t.Patch[to-1].Len - t.Patch[from].Off
}

// NumSpans is the number of spans of the trace, late spans included.
func (t *Template) NumSpans() int { return len(t.Spans) }

// Bytes is the encoded size of the trace's spans.
func (t *Template) Bytes() int { return len(t.Enc) }

type tspan struct {
	svc, op    int
	parent     int
	depth      int
	kind       int
	start, end int64
	children   int
	err        bool
	late       bool
	group      int
	id         [8]byte
}

// buildTemplate draws one trace of the given class.
// u in [0, 1) picks the span count (stratified across a pool); linger > 0
// overrides every service's batching delay.
func buildTemplate(rng *rand.Rand, m *model, class string, u float64, linger time.Duration) *Template {
	// Root route and latency.
	rootSvc, rootOp := rng.IntN(EntryServices), rng.IntN(OpsPerService)
	var dur time.Duration
	switch class {
	case ClassFast, ClassError, ClassHuge:
		dur = drawBelow(rng, m.routeMedian[rootSvc][rootOp], slowThreshold)
	case ClassSlow:
		if rng.Float64() < m.slowTailShare {
			dur = uniformDur(rng, 2*time.Second, 10*time.Second)
		} else {
			// Log-normal tail >= 1 s: draw route and latency jointly.
			for {
				rootSvc, rootOp = rng.IntN(EntryServices), rng.IntN(OpsPerService)
				dur = logNormal(rng, m.routeMedian[rootSvc][rootOp], sigmaTrace)
				if dur >= slowThreshold && dur < 30*time.Second {
					break
				}
			}
		}
	case ClassAnomaly:
		// The route's own normal latency x5-10, still below 1 s.
		for {
			rootSvc, rootOp = rng.IntN(EntryServices), rng.IntN(OpsPerService)
			f := 5 + 5*rng.Float64()
			dur = time.Duration(float64(m.routeMedian[rootSvc][rootOp]) * f)
			if dur < slowThreshold-10*time.Millisecond {
				break
			}
		}
	default:
		panic("workload: unknown class " + class)
	}

	// Span count and services.
	var n int
	if class == ClassHuge {
		n = 1000 + rng.IntN(4001)
	} else if m.sdk {
		n = sdkSpanCount(u)
	} else {
		n = spanCount(u)
	}
	nsvc := min(3+rng.IntN(6), n)
	if m.sdk {
		nsvc = sdkTraceServices(rng, n)
	}
	svcs := make([]int, 0, nsvc)
	svcs = append(svcs, rootSvc)
	for len(svcs) < nsvc {
		s := rng.IntN(NumServices)
		if !slices.Contains(svcs, s) {
			svcs = append(svcs, s)
		}
	}

	// Tree: span i's parent is < i. Span 2 hangs under span 1 so that the
	// tree has depth >= 2 (an error leaf needs it).
	sp := make([]tspan, n)
	sp[0] = tspan{svc: rootSvc, op: rootOp, parent: -1, kind: kindServer, start: 0, end: int64(dur)}
	for i := 1; i < n; i++ {
		var p int
		switch i {
		case 1:
			p = 0
		case 2:
			p = 1
		default:
			p = rng.IntN(i)
		}
		s := &sp[i]
		s.parent, s.depth = p, sp[p].depth+1
		sp[p].children++
		switch {
		case i < nsvc:
			s.svc = svcs[i]
		case rng.IntN(2) == 0:
			s.svc = sp[p].svc
		default:
			s.svc = svcs[rng.IntN(nsvc)]
		}
		s.op = rng.IntN(OpsPerService)
		switch {
		case s.svc != sp[p].svc:
			s.kind = kindServer
		case rng.IntN(3) == 0:
			s.kind = kindClient
		default:
			s.kind = kindInternal
		}
		ps, pe := sp[p].start, sp[p].end
		pd := pe - ps
		s.start = ps + int64(rng.Float64()*0.6*float64(pd))
		s.end = s.start + int64((0.05+0.95*rng.Float64())*float64(pe-s.start))
		if s.end < s.start {
			s.end = s.start
		}
	}
	for i := range sp {
		for {
			v := rng.Uint64()
			if v != 0 {
				putU64(sp[i].id[:], v)
				break
			}
		}
	}
	// Error: one leaf at depth >= 2.
	if class == ClassError {
		var leaves []int
		for i := range sp {
			if sp[i].children == 0 && sp[i].depth >= 2 {
				leaves = append(leaves, i)
			}
		}
		sp[leaves[rng.IntN(len(leaves))]].err = true
	}

	var groups []tgroup
	var late []int
	if m.sdk {
		groups = sdkGroups(m, sp, linger)
	} else {
		groups, late = benchGroups(rng, m, sp, linger)
	}
	k := len(groups) - min(len(late), 1)

	// Encode in send order: group by group, service by service.
	t := &Template{
		Class:   class,
		Route:   RouteName(rootSvc, rootOp),
		RootDur: dur,
		Late:    len(late),
		Spans:   make([]SpanInfo, 0, n),
		Patch:   make([]SpanPatch, 0, n),
		Groups:  make([]Group, 0, len(groups)),
	}
	newIdx := make([]int32, n)
	for c := range groups {
		g := &groups[c]
		slices.SortStableFunc(g.spans, func(a, b int) int {
			if c := cmp.Compare(sp[a].svc, sp[b].svc); c != 0 {
				return c
			}
			return cmp.Compare(sp[a].start, sp[b].start)
		})
		tg := Group{
			SendOffset: time.Duration(g.ready), Latest: time.Duration(g.latest),
			Lane: uint8(g.lane), Late: c >= k, Spans: len(g.spans),
		}
		for _, i := range g.spans {
			idx := int32(len(t.Spans))
			newIdx[i] = idx
			if nr := len(tg.Runs); nr == 0 || int(tg.Runs[nr-1].Service) != sp[i].svc {
				tg.Runs = append(tg.Runs, Run{Service: uint8(sp[i].svc), From: idx})
			}
			tg.Runs[len(tg.Runs)-1].To = idx + 1
			t.Spans = append(t.Spans, SpanInfo{
				Service: uint8(sp[i].svc), Op: uint8(sp[i].op), Depth: uint8(min(sp[i].depth, 255)),
				Error: sp[i].err, Late: sp[i].late, Group: int16(c),
			})
			t.Patch = append(t.Patch, SpanPatch{})
		}
		t.Groups = append(t.Groups, tg)
	}
	t.Root = int(newIdx[0])
	// Parent indexes in the new order.
	orig := make([]int, n)
	for i := range n {
		orig[newIdx[i]] = i
	}
	var f spanFields
	f.class = class
	f.few = m.sdk
	t.Enc = make([]byte, 0, n*560)
	scratch := make([]byte, 0, 1024)
	for ni := range t.Spans {
		i := orig[ni]
		s := &sp[i]
		if s.parent >= 0 {
			t.Spans[ni].Parent = newIdx[s.parent]
		} else {
			t.Spans[ni].Parent = -1
		}
		fillSpanFields(rng, &f, sp, i, class)
		off := len(t.Enc)
		var tid, st, en, sq int
		t.Enc, tid, st, en, sq = encodeSpan(t.Enc, &scratch, &f)
		t.Patch[ni] = SpanPatch{
			Off: int32(off), Len: int32(len(t.Enc) - off),
			TraceID: int32(tid), Start: int32(st), End: int32(en), Seq: int32(sq),
			RelStart: s.start, RelEnd: s.end,
		}
	}
	for gi := range t.Groups {
		for ri := range t.Groups[gi].Runs {
			r := &t.Groups[gi].Runs[ri]
			r.Bytes = t.runBytes(r.From, r.To)
		}
	}
	return t
}

var methods = [...]string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}

func fillSpanFields(rng *rand.Rand, f *spanFields, sp []tspan, i int, class string) {
	s := &sp[i]
	f.root = s.parent < 0
	f.spanID = s.id
	if !f.root {
		f.parentID = sp[s.parent].id
	}
	f.kind = s.kind
	f.method = methods[(s.svc*7+s.op)%len(methods)]
	f.route = fmt.Sprintf("/v1/%s/op-%02d", ServiceName(s.svc), s.op)
	switch s.kind {
	case kindInternal:
		f.name = fmt.Sprintf("op-%02d.process", s.op)
	default:
		f.name = f.method + " " + f.route
	}
	f.start, f.end = s.start, s.end
	f.httpStatus = 200
	f.status, f.statusMsg = 0, ""
	if s.err {
		f.httpStatus = 500
		f.status, f.statusMsg = statusError, "upstream: connection reset by peer"
	} else if f.root && class == ClassError {
		f.status = statusOK
	}
	f.serverAddr = ServiceName(s.svc) + ".shop.svc.cluster.local"
	f.peerAddr = fmt.Sprintf("10.%d.%d.%d", 1+rng.IntN(3), rng.IntN(256), 1+rng.IntN(254))
	f.codeFunc = fmt.Sprintf("svc%02d.(*Handler).Op%02d", s.svc, s.op)
	f.url = fmt.Sprintf("http://%s:8080%s?id=%d", ServiceName(s.svc), f.route, rng.Int64N(1e9))
	f.requestID = fmt.Sprintf("%016x", rng.Uint64())
}

// drawBelow draws the route's log-normal latency conditioned on [min, limit).
func drawBelow(rng *rand.Rand, median, limit time.Duration) time.Duration {
	for {
		d := logNormal(rng, median, sigmaTrace)
		if d >= minRootLatency && d < limit {
			return d
		}
	}
}

// spanMeanExtra is the mean of the exponential part of the span count; with
// the flooring and the truncation at 50 the mean span count is about 12.
const spanMeanExtra = 7.6

// spanCount maps u in [0, 1) to 5 + floor(Exp(spanMeanExtra)) truncated to
// [5, 50] (inverse CDF). Templates of a pool use stratified u so that the
// pool's mean matches the distribution's closely even for small pools.
func spanCount(u float64) int {
	x := -spanMeanExtra * math.Log1p(-u*(1-math.Exp(-46/spanMeanExtra)))
	return min(5+int(x), 50)
}

// pickCuts returns k+1 increasing boundaries 0 = b0 < b1 < ... < bk = n.
func pickCuts(rng *rand.Rand, n, k int) []int {
	cuts := make([]int, 0, k+1)
	cuts = append(cuts, 0)
	// k-1 distinct interior cut points in [1, n-1].
	inner := rng.Perm(n - 1)[:k-1]
	for i := range inner {
		inner[i]++
	}
	slices.Sort(inner)
	cuts = append(cuts, inner...)
	return append(cuts, n)
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// tgroup is a group of a template under construction.
type tgroup struct {
	spans         []int
	lane          int
	ready, latest int64
}

// benchGroups cuts a ShapeBench trace into groups: the non-root spans sorted
// by end time are cut into 2-6 chunks, the root joins the last one; a
// chunk's lane is the service with most spans in it. Late spans, if any,
// form a last, extra group; late lists them.
func benchGroups(rng *rand.Rand, m *model, sp []tspan, linger time.Duration) (groups []tgroup, late []int) {
	n := len(sp)
	// Groups: the non-root spans sorted by end time are cut into k chunks,
	// the root joins the last chunk.
	order := make([]int, 0, n-1)
	for i := 1; i < n; i++ {
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sp[a].end, sp[b].end) })
	k := min(2+rng.IntN(5), n-1)
	cuts := pickCuts(rng, n-1, k) // k+1 boundaries into order, first 0, last n-1
	groups = make([]tgroup, k)
	for c := range k {
		g := &groups[c]
		g.spans = append(g.spans, order[cuts[c]:cuts[c+1]]...)
		if c == k-1 {
			g.spans = append(g.spans, 0)
		}
		for _, i := range g.spans {
			sp[i].group = c
		}
	}
	// Late spans: m.pLateSpan of the non-root spans whose group keeps
	// another span (by default about 0.5 % of all spans), held back and sent
	// 10-30 s after the rest of the trace.
	left := make([]int, k)
	for c := range groups {
		left[c] = len(groups[c].spans)
	}
	for i := 1; i < n; i++ {
		if rng.Float64() < m.pLateSpan && left[sp[i].group] > 1 {
			left[sp[i].group]--
			sp[i].late = true
			late = append(late, i)
		}
	}
	for c := range groups {
		groups[c].spans = slices.DeleteFunc(groups[c].spans, func(i int) bool { return sp[i].late })
	}
	if len(late) > 0 {
		groups = append(groups, tgroup{spans: late})
	}
	// Lane: the root's service for the root group, else the service with
	// most spans in the group.
	for c := range groups {
		g := &groups[c]
		if c == k-1 {
			g.lane = sp[0].svc
			continue
		}
		var cnt [NumServices]int
		g.lane = sp[g.spans[0]].svc
		for _, i := range g.spans {
			cnt[sp[i].svc]++
			if cnt[sp[i].svc] > cnt[g.lane] {
				g.lane = sp[i].svc
			}
		}
	}
	// Timing. A group becomes ready (joins its service's batch) when its
	// last span ends; the batch is sent at most the service's batching
	// delay later (sooner when it fills up). Two groups of a trace in one
	// service's batch would merge into one request, so a group is ready only
	// after every earlier group of the same lane can have been sent; the
	// root group only after every other group can have been sent (children
	// before the root).
	eps := int64(10 * time.Millisecond)
	var allLatest int64
	for c := range k {
		g := &groups[c]
		for _, i := range g.spans {
			g.ready = max(g.ready, sp[i].end)
		}
		for d := range c {
			if c == k-1 || groups[d].lane == g.lane {
				g.ready = max(g.ready, groups[d].latest+eps)
			}
		}
		g.latest = g.ready + int64(m.delay(g.lane, linger))
		allLatest = max(allLatest, g.latest)
	}
	// Send order: the root group is last already (it is ready after every
	// other group's latest send); order the others by ready time so that
	// the generator can queue a trace's groups one after the other.
	slices.SortStableFunc(groups[:k-1], func(a, b tgroup) int { return cmp.Compare(a.ready, b.ready) })
	if len(late) > 0 {
		g := &groups[k]
		g.ready = allLatest + int64(uniformDur(rng, 10*time.Second, 30*time.Second))
		g.latest = g.ready + int64(m.delay(g.lane, linger))
	}

	return groups, late
}
