package statuspage

import (
	"slices"
	"time"
)

// Snapshot is what GET /api/v1/status answers: every registered buffer and
// cluster view at one moment. Counters are totals since the component
// started; they are the same counts as the component's self-metrics on
// /metrics.
type Snapshot struct {
	Time time.Time `json:"time"`
	// RefreshMs is how often the page fetches a new snapshot.
	RefreshMs  int64       `json:"refresh_ms"`
	Components []Component `json:"components"`
	// Clusters is empty unless a component routes to, or is a member of,
	// a gateway cluster.
	Clusters []ClusterStatus `json:"clusters"`
}

// Component is one trace buffer: the tailsift processor's or receiver's.
type Component struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Buffer   Buffer   `json:"buffer"`
	Counters Counters `json:"counters"`
	// RateWindowS is the period, in seconds, the per-second rates are
	// measured over; 0 (and no rates) until two snapshots were taken.
	RateWindowS float64     `json:"rate_window_s"`
	Decisions   []Decisions `json:"decisions"`
	// Budget is absent when no budget is configured.
	Budget *Budget `json:"budget,omitempty"`
	// Routes are the adaptive policies' routes, most observed first.
	Routes []Route `json:"routes"`
	// Recent are the most recently kept errors, slow traces and anomalies,
	// newest first.
	Recent []KeptTrace `json:"recent"`
}

// Buffer is the buffer's fill against its budget (buffer.max_bytes).
type Buffer struct {
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes"`
	// Fill is Bytes/MaxBytes.
	Fill        float64 `json:"fill"`
	Traces      int64   `json:"traces"`
	HeldBytes   int64   `json:"held_bytes"`
	HeldTraces  int64   `json:"held_traces"`
	MappedBytes int64   `json:"mapped_bytes"`
}

// Counters are the buffer's event counts, named after their self-metric.
type Counters struct {
	SpansReceived         int64 `json:"spans_received"`
	SpansRefusedQueueFull int64 `json:"spans_refused_queue_full"`
	SpansRefusedInvalid   int64 `json:"spans_refused_invalid"`
	SpansRefusedTooLarge  int64 `json:"spans_refused_too_large"`
	TracesDecided         int64 `json:"traces_decided"`
	SpansKept             int64 `json:"spans_kept"`
	SpansDropped          int64 `json:"spans_dropped"`
	LateSpansKept         int64 `json:"late_spans_kept"`
	LateSpansDropped      int64 `json:"late_spans_dropped"`
	// EarlyDecisions by reason: max_spans, max_trace_bytes, memory,
	// shutdown.
	EarlyDecisions    map[string]int64 `json:"early_decisions"`
	ExportFailures    int64            `json:"export_failures"`
	TracesRescued     int64            `json:"traces_rescued"`
	SpansDeduplicated int64            `json:"spans_deduplicated"`
}

// Decisions are the traces one policy decided one way: the policy that
// kept them, or that dropped them (a drop policy, or the budget), or empty
// when no policy kept them.
type Decisions struct {
	Policy   string `json:"policy"`
	Decision string `json:"decision"` // keep or drop
	Traces   int64  `json:"traces"`
	Spans    int64  `json:"spans"`
	// TracesPerSecond over the rate window.
	TracesPerSecond float64 `json:"traces_per_second"`
}

// Budget is the budget and each class's kept rate against its share.
type Budget struct {
	Rate    float64 `json:"rate"`
	Unit    string  `json:"unit"` // traces or spans
	Classes []Class `json:"classes"`
}

// Class is one budget class, rates in the budget's unit per second.
type Class struct {
	Name     string   `json:"name"`
	Policies []string `json:"policies"`
	// Probability is the budget's p_c; Demand what the class's policies
	// keep before the budget; Allocated = Demand·Probability, its share of
	// the budget.
	Probability float64 `json:"probability"`
	Demand      float64 `json:"demand"`
	Allocated   float64 `json:"allocated"`
	// KeptPerSecond is measured from the decisions over the rate window.
	KeptPerSecond float64 `json:"kept_per_second"`
}

// Route is an adaptive policy's view of one route.
type Route struct {
	Policy       string  `json:"policy"`
	Route        string  `json:"route"`
	Observations float64 `json:"observations"`
	P50Ms        float64 `json:"p50_ms"`
	P95Ms        float64 `json:"p95_ms"`
	Anomalies    uint64  `json:"anomalies"`
	// Probability is the probability anomalies are kept with now.
	Probability float64 `json:"probability"`
	// Decided and Partial count the route's traces decided with their
	// root, and those that got spans after their decision
	// (docs/completion.md).
	Decided int64 `json:"decided"`
	Partial int64 `json:"partial"`
}

// KeptTrace is a recently kept error, slow trace or anomaly.
type KeptTrace struct {
	TraceID string `json:"trace_id"`
	Policy  string `json:"policy"`
	Error   bool   `json:"error"`
	Anomaly bool   `json:"anomaly"`
	// Slow: kept by a latency policy.
	Slow        bool      `json:"slow"`
	Spans       int       `json:"spans"`
	DurationMs  float64   `json:"duration_ms"`
	Probability float64   `json:"probability"`
	DecidedAt   time.Time `json:"decided_at"`
	// Link is the trace in the retrieval API.
	Link string `json:"link"`
}

// maxRoutes bounds the routes a snapshot lists.
const maxRoutes = 50

// snapshot returns the recorder's state at now.
func (r *Recorder) snapshot(now time.Time) Component {
	// Lists are [] before their first entry, not null: the page iterates
	// them, and a component that had decided nothing broke it ("cannot
	// fetch the status") until its first decision.
	c := Component{ID: r.id, Kind: r.kind, Decisions: []Decisions{}}
	c.Buffer = Buffer{
		Bytes: r.bufferedBytes.Load(), MaxBytes: r.maxBytes, Traces: r.bufferedTraces.Load(),
		HeldBytes: r.heldBytes.Load(), HeldTraces: r.heldTraces.Load(), MappedBytes: r.mapped.Load(),
	}
	if r.maxBytes > 0 {
		c.Buffer.Fill = float64(c.Buffer.Bytes) / float64(r.maxBytes)
	}
	c.Counters = Counters{
		SpansReceived:         r.received.Load(),
		SpansRefusedQueueFull: r.refusedFull.Load(),
		SpansRefusedInvalid:   r.refusedInvalid.Load(),
		SpansRefusedTooLarge:  r.refusedLarge.Load(),
		LateSpansKept:         r.lateKept.Load(),
		LateSpansDropped:      r.lateDropped.Load(),
		EarlyDecisions: map[string]int64{
			"max_spans": r.early.maxSpans.Load(), "max_trace_bytes": r.early.maxBytes.Load(),
			"memory": r.early.memory.Load(), "shutdown": r.early.shutdown.Load(),
		},
		ExportFailures:    r.exportFailures.Load(),
		TracesRescued:     r.rescued.Load(),
		SpansDeduplicated: r.deduplicated.Load(),
	}

	counts := r.decidedCounts()
	base, window := r.rates.update(now, counts)
	c.RateWindowS = window.Seconds()
	order := map[string]int{}
	e := r.engine.Load()
	if e != nil {
		for i, p := range e.Policies() {
			order[p.Name] = i
		}
	}
	for k, v := range counts {
		c.Counters.TracesDecided += v.traces
		if k.keep {
			c.Counters.SpansKept += v.spans
		} else {
			c.Counters.SpansDropped += v.spans
		}
		d := Decisions{Policy: k.policy, Decision: "drop", Traces: v.traces, Spans: v.spans}
		if k.keep {
			d.Decision = "keep"
		}
		if window > 0 {
			d.TracesPerSecond = float64(v.traces-base[k].traces) / window.Seconds()
		}
		c.Decisions = append(c.Decisions, d)
	}
	slices.SortFunc(c.Decisions, func(a, b Decisions) int {
		ia, oka := order[a.Policy]
		ib, okb := order[b.Policy]
		switch {
		case oka != okb && oka:
			return -1
		case oka != okb:
			return 1
		case ia != ib:
			return ia - ib
		case a.Decision == b.Decision:
			return 0
		case a.Decision == "keep":
			return -1
		}
		return 1
	})
	if e != nil {
		if b, ok := e.Budget(); ok {
			c.Budget = budgetStatus(b, e.Policies(), counts, base, window)
		}
		for _, rt := range e.Routes(nil, now.UnixNano(), maxRoutes) {
			rc := r.routeCompletion(rt.Route)
			c.Routes = append(c.Routes, Route{
				Policy: rt.Policy, Route: rt.Route, Observations: rt.Observations,
				P50Ms: ms(rt.P50), P95Ms: ms(rt.P95), Anomalies: rt.Anomalies, Probability: rt.Probability,
				Decided: rc.Traces, Partial: rc.PartialTraces,
			})
		}
	}
	c.Recent = r.recentKept()
	return c
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// decidedCounts reads the decision counters.
func (r *Recorder) decidedCounts() map[decidedKey]count {
	out := make(map[decidedKey]count, r.decided.Len())
	for k, v := range r.decided.All() {
		out[k] = count{v.traces.Load(), v.spans.Load()}
	}
	return out
}

func (r *Recorder) recentKept() []KeptTrace {
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	out := make([]KeptTrace, 0, r.nRecent)
	for i := 1; i <= r.nRecent; i++ {
		k := r.recent[(r.head-i+recentMax)%recentMax]
		k.Link = "/api/v1/traces/" + k.TraceID
		out = append(out, k)
	}
	return out
}
