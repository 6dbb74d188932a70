package sampling

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the engine's read-only view for the status page: its
// policies, its budget, and the adaptive policies' per-route state. Nothing
// here is on the decision path except routeNames.note, one atomic load per
// root span when the route is already named.

// PolicyStatus describes one top-level policy.
type PolicyStatus struct {
	Name string
	// Adaptive: the policy is of type adaptive, whose kept traces are
	// anomalies.
	Adaptive bool
	// Drop: the policy is of type drop and keeps nothing.
	Drop bool
	// Slow: the policy is of type latency, whose kept traces are slow.
	Slow bool
	// Class is the budget class the policy's kept traces count in; empty
	// without a budget.
	Class string
}

// Policies describes the engine's top-level policies, in order.
func (e *Engine) Policies() []PolicyStatus {
	out := make([]PolicyStatus, len(e.policies))
	for i, p := range e.policies {
		_, adaptive := p.(*adaptive)
		_, slow := p.(latency)
		out[i] = PolicyStatus{Name: e.names[i], Adaptive: adaptive, Drop: e.drop[i], Slow: slow}
		if e.budget != nil && e.budget.classOf[i] >= 0 {
			out[i].Class = e.budget.classes[e.budget.classOf[i]].name
		}
	}
	return out
}

// BudgetStatus is the budget's configuration and state.
type BudgetStatus struct {
	// Rate is the budget per second, in Unit ("traces" or "spans").
	Rate float64
	Unit string
	// Classes in priority order; Demand is in Unit per second.
	Classes []ClassProbability
}

// Budget returns the budget's state; ok is false when the engine has none.
// It is safe to call concurrently with Decide.
func (e *Engine) Budget() (s BudgetStatus, ok bool) {
	if e.budget == nil {
		return BudgetStatus{}, false
	}
	s.Rate, s.Unit = e.budget.rate, "traces"
	if e.budget.spans {
		s.Unit = "spans"
	}
	s.Classes = e.ClassProbabilities(nil)
	return s, true
}

// RouteStatus is what an adaptive policy knows of one route (one key of its
// key fields).
type RouteStatus struct {
	// Policy is the adaptive policy's name.
	Policy string
	// Route is the route's key field values joined by " / ", or its key
	// hash in hex when no root span carrying it was seen since its name
	// was evicted.
	Route string
	// Observations is the decayed count of the route's traces (half_life).
	Observations float64
	// P50 and P95 are quantiles of the route's decayed durations, at the
	// resolution of the model's histogram (25%).
	P50, P95 time.Duration
	// Anomalies counts the route's traces judged anomalous (latency, error
	// rate or rare key), kept or not, since the route entered the model.
	Anomalies uint64
	// Probability is the probability the policy currently keeps anomalies
	// with; the policy has one for all routes.
	Probability float64
}

// Routes appends the routes of every adaptive policy, at most limit of them
// (the most observed first; limit <= 0 for all), to dst and returns it. now
// is the time of the engine's clock, Unix nanoseconds, at which the decayed
// counts are read. It takes each stripe's read lock in turn.
func (e *Engine) Routes(dst []RouteStatus, now int64, limit int) []RouteStatus {
	start := len(dst)
	for i, p := range e.policies {
		if a, ok := p.(*adaptive); ok {
			dst = a.routes(dst, e.names[i], now)
		}
	}
	added := dst[start:]
	slices.SortFunc(added, func(a, b RouteStatus) int {
		if c := cmp.Compare(b.Observations, a.Observations); c != 0 {
			return c
		}
		return strings.Compare(a.Route, b.Route)
	})
	if limit > 0 && len(added) > limit {
		dst = dst[:start+limit]
	}
	return dst
}

// routes appends the policy's routes, unsorted.
func (p *adaptive) routes(dst []RouteStatus, policy string, now int64) []RouteStatus {
	prob := levelThresholds[p.controller.level.Load()].Probability()
	for i := range p.table.stripes {
		s := &p.table.stripes[i]
		s.mu.RLock()
		for j := range s.data.keys {
			k := &s.data.keys[j]
			wl, _ := p.table.decay.peekWeights(k, now)
			dst = append(dst, RouteStatus{
				Policy:       policy,
				Route:        p.names.name(k.hash),
				Observations: k.total / wl,
				P50:          time.Duration(k.quantile(0.5)),
				P95:          time.Duration(k.quantile(0.95)),
				Anomalies:    k.anomalies,
				Probability:  prob,
			})
		}
		s.mu.RUnlock()
	}
	return dst
}

// routeSeenSlots is the size of routeNames' direct-mapped cache of named
// hashes: a power of two.
const routeSeenSlots = 1 << 12

// routeNames remembers the readable name of the routes a keyed policy
// models, at most max of them. note runs on every root span: a route whose
// hash sits in its slot of seen costs one atomic load; otherwise (a new
// route, or a slot another route took) its name is built and stored.
type routeNames struct {
	label func(v *SpanView) string
	seen  [routeSeenSlots]atomic.Uint64 // hash ^ routeSeenMark, 0 when empty

	mu    sync.RWMutex
	names map[uint64]string
	max   int
}

// routeSeenMark keeps a zero hash distinct from an empty slot.
const routeSeenMark = 0x9e3779b97f4a7c15

func newRouteNames(k KeyFields, maxNames int) (*routeNames, error) {
	fields := make([]keyField, len(k))
	for i, f := range k {
		kf, err := parseKeyField(f)
		if err != nil {
			return nil, err
		}
		fields[i] = kf
	}
	return &routeNames{label: labeler(fields), names: map[uint64]string{}, max: maxNames}, nil
}

func (n *routeNames) note(h uint64, v *SpanView) {
	slot := &n.seen[h&(routeSeenSlots-1)]
	if slot.Load() == h^routeSeenMark {
		return
	}
	name := n.label(v)
	n.mu.Lock()
	if _, ok := n.names[h]; !ok && len(n.names) >= n.max {
		for old := range n.names { // evict one, any
			delete(n.names, old)
			break
		}
	}
	n.names[h] = name
	n.mu.Unlock()
	slot.Store(h ^ routeSeenMark)
}

func (n *routeNames) name(h uint64) string {
	n.mu.RLock()
	name, ok := n.names[h]
	n.mu.RUnlock()
	if !ok {
		return "#" + strconv.FormatUint(h, 16)
	}
	return name
}

// labeler returns a function that renders a root span's key field values,
// joined by " / ".
func labeler(fields []keyField) func(v *SpanView) string {
	return func(v *SpanView) string {
		var b strings.Builder
		for i, f := range fields {
			if i > 0 {
				b.WriteString(" / ")
			}
			switch f.kind {
			case keyName:
				b.Write(v.Name)
			case keyKind:
				b.WriteString(strconv.FormatUint(spanKind(v.Span), 10))
			case keyStatus:
				b.WriteString(strconv.Itoa(int(v.Status)))
			case keyResource:
				val, _ := v.ResourceAttr(f.attr)
				writeValue(&b, val)
			case keySpan:
				val, _ := v.SpanAttr(f.attr)
				writeValue(&b, val)
			}
		}
		return b.String()
	}
}

func writeValue(b *strings.Builder, v Value) {
	switch v.Kind {
	case KindString:
		b.Write(v.Bytes)
	case KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case KindInt:
		b.WriteString(strconv.FormatInt(v.Int, 10))
	case KindDouble:
		b.WriteString(strconv.FormatFloat(v.Double, 'g', -1, 64))
	case KindEmpty:
	default:
		b.WriteString("…")
	}
}
