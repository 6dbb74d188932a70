package main

import (
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/tailsift/tailsift/internal/sinkreport"

	"github.com/tailsift/tailsift/internal/workload"
)

// scoreOptions are the settings scoring depends on.
type scoreOptions struct {
	fastProbability float64
	completion      time.Duration
}

// manifestData is a manifest as read at scoring time.
type manifestData struct {
	path    string
	header  workload.ManifestHeader
	traces  []workload.ManifestTrace
	readErr error
}

// classAcc accumulates one class row.
type classAcc struct {
	row       sinkreport.ClassRow
	latencies []int64 // ns
	lateKept  int64
	thProb    map[string]int
}

func newClassAcc(name string) *classAcc {
	return &classAcc{row: sinkreport.ClassRow{Class: name}, thProb: map[string]int{}}
}

// addKept adds a received trace to the row.
func (a *classAcc) addKept(t *traceRec) {
	a.row.TracesKept++
	a.row.SpansReceived += int64(t.spans)
	a.row.DuplicateArrivals += int64(t.dupArrivals)
	if t.dupArrivals > 0 {
		a.row.TracesDuplicated++
	}
	a.row.SpansMissingTh += int64(t.missingTh)
	a.row.Adjusted.SpansEstimate += t.spanAdj
	if t.thConflict {
		a.row.TracesThConflict++
	}
	if t.hasTh {
		a.row.Adjusted.TracesEstimate += adjustedCount(t.th)
		a.thProb[probKey(t.th)]++
	} else {
		a.row.TracesMissingTh++
		a.thProb["none"]++
	}
}

func probKey(u uint64) string {
	p := float64(uint64(1)<<56-u) / float64(uint64(1)<<56)
	return strconv.FormatFloat(p, 'g', 6, 64)
}

// score computes the report from what was received and, when m is not nil,
// the manifest.
func score(snap *snapshot, m *manifestData, opt scoreOptions) *sinkreport.Report {
	rep := &sinkreport.Report{
		Schema: sinkreport.SchemaVersion,
		Received: sinkreport.ReceivedSummary{
			Requests:             snap.requests,
			SpanArrivals:         snap.spanArrivals,
			Spans:                snap.spans,
			DuplicateArrivals:    snap.spanArrivals - snap.spans,
			Traces:               int64(len(snap.traces)),
			FirstArrivalUnixNano: snap.firstArrival,
			LastArrivalUnixNano:  snap.lastArrival,
		},
		Notes: []string{},
	}
	for _, t := range snap.traces {
		rep.Foreign.UnlabelledSpans += int64(t.unlabelled)
		if t.class == classNone && !t.hasSeq {
			rep.Foreign.UnlabelledTraces++
		}
		rep.MissingTh.Spans += int64(t.missingTh)
		if !t.hasTh {
			rep.MissingTh.Traces++
		}
	}

	accs := map[string]*classAcc{}
	order := slices.Clone(workload.Classes)
	acc := func(name string) *classAcc {
		a := accs[name]
		if a == nil {
			a = newClassAcc(name)
			accs[name] = a
			if !slices.Contains(order, name) {
				order = append(order, name)
			}
		}
		return a
	}
	for _, c := range workload.Classes {
		acc(c)
	}

	if m == nil {
		rep.Notes = append(rep.Notes, "no manifest: rows count received traces by their class label; sent, completeness and latency figures are not available")
		for _, t := range snap.traces {
			name := snap.classes[t.class]
			if t.class == classNone {
				name = "(unlabelled)"
			}
			acc(name).addKept(t)
		}
	} else {
		rep.Scored = true
		scoreManifest(rep, snap, m, opt, acc)
	}

	rows := make([]sinkreport.ClassRow, 0, len(order))
	total := newClassAcc("total")
	for _, name := range order {
		a := accs[name]
		finishRow(a, m != nil)
		rows = append(rows, a.row)
		mergeRow(total, a)
	}
	finishRow(total, m != nil)
	rep.Classes = rows
	rep.Total = total.row

	if m != nil {
		if fast := accs[workload.ClassFast]; opt.fastProbability > 0 {
			rep.FastCheck = fastCheck(fast.row.TracesSent, fast.row.TracesKept, opt.fastProbability)
		} else {
			rep.Notes = append(rep.Notes, "fast_check skipped: --fast-probability not set")
		}
		if an := accs[workload.ClassAnomaly]; an.row.TracesSent > 0 {
			rep.AnomalyRecall = ptr(float64(an.row.TracesKept) / float64(an.row.TracesSent))
		}
		rep.Notes = append(rep.Notes,
			"latency_ms excludes traces whose manifest entry has late=true (their excluded_late count is given)",
			"latency = arrival of the trace's last new span at the sink - last_send_unix_nano - completion")
	}
	return rep
}

func scoreManifest(rep *sinkreport.Report, snap *snapshot, m *manifestData, opt scoreOptions, acc func(string) *classAcc) {
	info := &sinkreport.ManifestInfo{Path: m.path, Header: m.header, Traces: int64(len(m.traces))}
	if m.readErr != nil {
		info.ReadError = m.readErr.Error()
		rep.Notes = append(rep.Notes, "manifest read stopped at an error; scored the traces read before it")
	}
	rep.Manifest = info
	inManifest := make(map[[16]byte]struct{}, len(m.traces))
	completion := opt.completion.Nanoseconds()
	for i := range m.traces {
		mt := &m.traces[i]
		if mt.Late {
			info.LateTraces++
		}
		var id [16]byte
		if len(mt.TraceID) != 32 {
			info.InvalidTraceIDs++
			continue
		}
		if _, err := hex.Decode(id[:], []byte(mt.TraceID)); err != nil {
			info.InvalidTraceIDs++
			continue
		}
		if _, dup := inManifest[id]; dup {
			info.DuplicateTraceIDs++
			continue
		}
		inManifest[id] = struct{}{}
		a := acc(mt.Class)
		a.row.TracesSent++
		a.row.SpansSent += int64(mt.Spans)
		if mt.Late {
			a.row.TracesLate++
		}
		t := snap.traces[id]
		if t == nil {
			continue
		}
		a.addKept(t)
		switch n := int64(t.spans); {
		case n == int64(mt.Spans):
			a.row.TracesComplete++
		case n < int64(mt.Spans):
			a.row.TracesPartial++
		default:
			a.row.TracesExcess++
		}
		if t.lblConflict || (t.class != classNone && snap.classes[t.class] != mt.Class) || (t.hasSeq && t.seq != mt.Seq) {
			rep.Foreign.LabelMismatchTraces++
		}
		if mt.Late {
			a.lateKept++
		} else {
			a.latencies = append(a.latencies, t.lastArrival-mt.LastSendUnixNano-completion)
		}
	}
	for id, t := range snap.traces {
		if _, ok := inManifest[id]; !ok {
			rep.Foreign.TracesNotInManifest++
			rep.Foreign.SpansNotInManifest += int64(t.spans)
		}
	}
}

// finishRow computes a row's ratios, relative errors and latency figures.
func finishRow(a *classAcc, scored bool) {
	r := &a.row
	r.ThProbabilities = a.thProb
	if !scored {
		return
	}
	if r.TracesSent > 0 {
		r.KeptFraction = ptr(float64(r.TracesKept) / float64(r.TracesSent))
	}
	r.Adjusted.TracesTrue = r.TracesSent
	r.Adjusted.SpansTrue = r.SpansSent
	r.Adjusted.TracesRelError = relErr(r.Adjusted.TracesEstimate, r.TracesSent)
	r.Adjusted.SpansRelError = relErr(r.Adjusted.SpansEstimate, r.SpansSent)
	r.Latency = latencyStats(a.latencies, a.lateKept)
}

func mergeRow(total, a *classAcc) {
	t, r := &total.row, &a.row
	t.TracesSent += r.TracesSent
	t.TracesLate += r.TracesLate
	t.TracesKept += r.TracesKept
	t.TracesComplete += r.TracesComplete
	t.TracesPartial += r.TracesPartial
	t.TracesExcess += r.TracesExcess
	t.TracesDuplicated += r.TracesDuplicated
	t.SpansSent += r.SpansSent
	t.SpansReceived += r.SpansReceived
	t.DuplicateArrivals += r.DuplicateArrivals
	t.SpansMissingTh += r.SpansMissingTh
	t.TracesMissingTh += r.TracesMissingTh
	t.TracesThConflict += r.TracesThConflict
	t.Adjusted.TracesEstimate += r.Adjusted.TracesEstimate
	t.Adjusted.SpansEstimate += r.Adjusted.SpansEstimate
	for k, v := range a.thProb {
		total.thProb[k] += v
	}
	total.latencies = append(total.latencies, a.latencies...)
	total.lateKept += a.lateKept
}

func relErr(est float64, truth int64) *float64 {
	if truth == 0 {
		return nil
	}
	return ptr((est - float64(truth)) / float64(truth))
}

// latencyStats summarises latencies (ns) in ms; percentiles are nearest
// rank: the value at 1-based rank ceil(q*n) in ascending order.
func latencyStats(ns []int64, excludedLate int64) *sinkreport.LatencyStats {
	ls := &sinkreport.LatencyStats{Count: int64(len(ns)), ExcludedLate: excludedLate}
	if len(ns) == 0 {
		return ls
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	ms := func(v int64) *float64 { return ptr(float64(v) / 1e6) }
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	ls.Min = ms(s[0])
	ls.Mean = ptr(sum / float64(len(s)) / 1e6)
	ls.P50 = ms(s[nearestRank(0.50, len(s))])
	ls.P90 = ms(s[nearestRank(0.90, len(s))])
	ls.P99 = ms(s[nearestRank(0.99, len(s))])
	ls.Max = ms(s[len(s)-1])
	return ls
}

// nearestRank is the 0-based index of quantile q of n sorted values.
func nearestRank(q float64, n int) int {
	i := int(math.Ceil(q*float64(n)-1e-9)) - 1
	return min(max(i, 0), n-1)
}

// fastCheck compares kept with Binomial(sent, p): expected sent*p,
// sigma sqrt(sent*p*(1-p)), z = (kept-expected)/sigma.
func fastCheck(sent, kept int64, p float64) *sinkreport.FastCheck {
	fc := &sinkreport.FastCheck{Probability: p, Sent: sent, Kept: kept}
	n := float64(sent)
	fc.Expected = n * p
	fc.Sigma = math.Sqrt(n * p * (1 - p))
	if sent > 0 {
		fc.KeptFraction = ptr(float64(kept) / n)
	}
	diff := float64(kept) - fc.Expected
	if fc.Sigma > 0 {
		fc.Z = ptr(diff / fc.Sigma)
		fc.Within3Sigma = math.Abs(diff) <= 3*fc.Sigma
	} else {
		fc.Within3Sigma = diff == 0
	}
	return fc
}

func ptr[T any](v T) *T { return &v }
