package main

import (
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/workload"
)

// classNone is the class index of a span without a tailsift.test.class
// label. Indexes 1..len(workload.Classes) are the contract's classes in
// workload.Classes order; higher ones are other strings seen in the label,
// up to maxClasses, after which they share classOther's name.
const (
	classNone  uint8 = 0
	maxClasses       = 64
	classOther       = "other"
)

// spanObs is what the sink takes from one span before merging it into the
// recorder: nothing else of the span is kept.
type spanObs struct {
	traceID [16]byte
	spanID  uint64
	seq     int64
	th      uint64 // otelsampling.Threshold.Unsigned(), valid when hasTh
	class   uint8
	hasSeq  bool
	hasTh   bool
}

// traceRec is what the sink keeps per received trace ID.
type traceRec struct {
	spans       uint32 // distinct span IDs received
	dupArrivals uint32 // arrivals of a span ID already received
	unlabelled  uint32 // distinct spans without the class or seq label
	missingTh   uint32 // distinct spans whose tracestate has no ot th
	class       uint8  // label of the first labelled span
	hasSeq      bool
	hasTh       bool   // th holds the first th seen on the trace
	thConflict  bool   // spans carried different th values
	lblConflict bool   // spans carried different class or seq labels
	seq         int64  // label of the first labelled span
	th          uint64 // Threshold.Unsigned() of the first span with th
	spanAdj     float64
	lastArrival int64 // unix nanos of the request that brought the last new span
	// span IDs received: a slice while small, a set once large.
	ids   []uint64
	idSet map[uint64]struct{}
}

const smallIDs = 32

// addID records a span ID and reports whether it was new.
func (t *traceRec) addID(id uint64) bool {
	if t.idSet != nil {
		if _, ok := t.idSet[id]; ok {
			return false
		}
		t.idSet[id] = struct{}{}
		return true
	}
	for _, x := range t.ids {
		if x == id {
			return false
		}
	}
	if len(t.ids) < smallIDs {
		t.ids = append(t.ids, id)
		return true
	}
	t.idSet = make(map[uint64]struct{}, 2*smallIDs)
	for _, x := range t.ids {
		t.idSet[x] = struct{}{}
	}
	t.ids = nil
	t.idSet[id] = struct{}{}
	return true
}

// recorder accumulates what arrives. Export paths build a batch of spanObs
// without the lock, then merge it under one lock acquisition.
type recorder struct {
	mu      sync.Mutex
	traces  map[[16]byte]*traceRec
	classes []string // index -> name; [0] is ""
	closed  bool     // set by snapshot: later requests are not recorded

	// Counters readable without the lock (for /stats and the idle check).
	requests     atomic.Int64
	spanArrivals atomic.Int64 // every span received, duplicates included
	spans        atomic.Int64 // distinct (trace ID, span ID)
	nTraces      atomic.Int64
	firstArrival atomic.Int64 // unix nanos; 0 until something arrived
	lastArrival  atomic.Int64

	thCache thCache
	pool    sync.Pool // *[]spanObs
}

func newRecorder() *recorder {
	r := &recorder{
		traces:  make(map[[16]byte]*traceRec, 1<<16),
		classes: append([]string{""}, workload.Classes...),
	}
	r.pool.New = func() any { s := make([]spanObs, 0, 1024); return &s }
	return r
}

// classIndexLocked maps a label value to its class index; mu must be held.
func (r *recorder) classIndexLocked(name string) uint8 {
	for i, c := range r.classes {
		if c == name {
			return uint8(i)
		}
	}
	if len(r.classes) == maxClasses-1 {
		// The last slot: every further unknown value shares it.
		r.classes = append(r.classes, classOther)
	}
	if len(r.classes) >= maxClasses {
		return maxClasses - 1
	}
	r.classes = append(r.classes, strings.Clone(name))
	return uint8(len(r.classes) - 1)
}

// knownClass maps the contract's class names without the lock; 255 means
// "look it up under the lock".
func knownClass(name string) uint8 {
	for i, c := range workload.Classes {
		if c == name {
			return uint8(i + 1)
		}
	}
	return 255
}

// record takes in one request's spans, all arrived at arrival (unix nanos).
func (r *recorder) record(td ptrace.Traces, arrival int64) {
	bp := r.pool.Get().(*[]spanObs)
	batch := (*bp)[:0]
	var others []string // class names outside the contract, resolved under the lock
	var otherIdx []int  // batch index of each entry of others
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				o := spanObs{traceID: sp.TraceID()}
				sid := sp.SpanID()
				o.spanID = binary.BigEndian.Uint64(sid[:])
				attrs := sp.Attributes()
				if v, ok := attrs.Get(workload.AttrClass); ok {
					name := v.Str()
					if v.Type() != pcommon.ValueTypeStr {
						name = v.AsString()
					}
					o.class = knownClass(name)
					if o.class == 255 {
						others = append(others, name)
						otherIdx = append(otherIdx, len(batch))
					}
				}
				if v, ok := attrs.Get(workload.AttrSeq); ok {
					o.seq, o.hasSeq = attrInt(v)
				}
				o.th, o.hasTh = r.thCache.threshold(sp.TraceState().AsRaw())
				batch = append(batch, o)
			}
		}
	}
	r.merge(batch, others, otherIdx, arrival)
	*bp = batch
	r.pool.Put(bp)
}

func (r *recorder) merge(batch []spanObs, others []string, otherIdx []int, arrival int64) {
	r.requests.Add(1)
	if len(batch) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return // a request still running after the shutdown grace period
	}
	for n, i := range otherIdx {
		batch[i].class = r.classIndexLocked(others[n])
	}
	newSpans, newTraces := int64(0), int64(0)
	for i := range batch {
		o := &batch[i]
		t := r.traces[o.traceID]
		if t == nil {
			t = &traceRec{}
			r.traces[o.traceID] = t
			newTraces++
		}
		if !t.addID(o.spanID) {
			t.dupArrivals++
			continue
		}
		newSpans++
		t.spans++
		t.lastArrival = max(t.lastArrival, arrival)
		if o.class == classNone || !o.hasSeq {
			t.unlabelled++
		}
		if o.class != classNone {
			if t.class == classNone {
				t.class = o.class
			} else if t.class != o.class {
				t.lblConflict = true
			}
		}
		if o.hasSeq {
			if !t.hasSeq {
				t.seq, t.hasSeq = o.seq, true
			} else if t.seq != o.seq {
				t.lblConflict = true
			}
		}
		if !o.hasTh {
			t.missingTh++
			continue
		}
		t.spanAdj += adjustedCount(o.th)
		if !t.hasTh {
			t.th, t.hasTh = o.th, true
		} else if t.th != o.th {
			t.thConflict = true
		}
	}
	r.spanArrivals.Add(int64(len(batch)))
	r.spans.Add(newSpans)
	r.nTraces.Add(newTraces)
	r.firstArrival.CompareAndSwap(0, arrival)
	if arrival > r.lastArrival.Load() {
		r.lastArrival.Store(arrival) // under mu: no lost update
	}
}

// attrInt reads the seq label: an int attribute as the contract says, or
// a double or decimal string from a sender that converted it.
func attrInt(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		return int64(v.Double()), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// adjustedCount is 1/probability of the threshold whose Unsigned() is u.
func adjustedCount(u uint64) float64 {
	th, err := otelsampling.UnsignedToThreshold(u)
	if err != nil {
		return 0
	}
	return th.AdjustedCount()
}

// thCache maps a tracestate string to its ot th, parsed once per distinct
// string. The number of entries is bounded: past it, strings are parsed
// every time (a sender putting a random rv in every tracestate).
type thCache struct {
	m sync.Map // string -> thEntry
	n atomic.Int64
}

type thEntry struct {
	th uint64
	ok bool
}

const maxTHCache = 4096

func (c *thCache) threshold(ts string) (uint64, bool) {
	if ts == "" || !strings.Contains(ts, "ot=") {
		return 0, false
	}
	if e, ok := c.m.Load(ts); ok {
		te := e.(thEntry)
		return te.th, te.ok
	}
	te := parseTH(ts)
	if c.n.Load() < maxTHCache {
		if _, loaded := c.m.LoadOrStore(strings.Clone(ts), te); !loaded {
			c.n.Add(1)
		}
	}
	return te.th, te.ok
}

func parseTH(ts string) thEntry {
	w3c, err := otelsampling.NewW3CTraceState(ts)
	if err != nil {
		return thEntry{}
	}
	th, ok := w3c.OTelValue().TValueThreshold()
	if !ok {
		return thEntry{}
	}
	return thEntry{th: th.Unsigned(), ok: true}
}

// snapshot is a consistent copy of what was received, for scoring.
type snapshot struct {
	traces       map[[16]byte]*traceRec
	classes      []string
	requests     int64
	spanArrivals int64
	spans        int64
	firstArrival int64
	lastArrival  int64
}

// snapshot hands the recorder's state to the scorer and closes the
// recorder: the maps are shared, not copied, so nothing is recorded after.
func (r *recorder) snapshot() *snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return &snapshot{
		traces:       r.traces,
		classes:      append([]string(nil), r.classes...),
		requests:     r.requests.Load(),
		spanArrivals: r.spanArrivals.Load(),
		spans:        r.spans.Load(),
		firstArrival: r.firstArrival.Load(),
		lastArrival:  r.lastArrival.Load(),
	}
}
