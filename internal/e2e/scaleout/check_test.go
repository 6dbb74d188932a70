//go:build linux

package scaleout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// verdict is what became of one planned trace at the sink.
type verdict int

const (
	// whole: every span arrived, all from one gateway.
	whole verdict = iota
	// twoParts: every span arrived, but from more than one gateway: two
	// gateways each decided a part of the trace, and both kept theirs. The
	// workload sends no span after its trace's quiet has expired, so even
	// with a decision handed over no late span would follow it to another
	// gateway: a trace in two parts is a split one, whole by luck.
	twoParts
	// incomplete: some spans arrived, not all: the trace was split and a
	// part of it dropped (or lost).
	incomplete
	// lost: no span arrived.
	lost
)

func (v verdict) String() string {
	return [...]string{"whole", "in two parts", "incomplete", "lost"}[v]
}

// outcome is the checker's count over a workload.
type outcome struct {
	sampled    int // error and slow traces planned
	verdicts   [4]int
	fastKept   int // fast traces with at least one span at the sink (the baseline)
	fastSplit  int // of those, incomplete ones
	duplicates int // spans that arrived more than once (extra arrivals)
	unexpected int // spans at the sink that the workload never sent

	bad []*plannedTrace // the error and slow traces lost, incomplete or in two parts
	// examples describe the first few bad traces and duplicates.
	examples []string
}

func (o *outcome) String() string {
	return fmt.Sprintf("%d error/slow traces: %d whole, %d whole but in two parts from two gateways, %d incomplete, %d lost; "+
		"%d duplicate spans, %d unexpected spans; fast traces kept by the baseline: %d (%d incomplete)",
		o.sampled, o.verdicts[whole], o.verdicts[twoParts], o.verdicts[incomplete], o.verdicts[lost],
		o.duplicates, o.unexpected, o.fastKept, o.fastSplit)
}

// split is the number of error and slow traces that did not arrive whole
// from one gateway.
func (o *outcome) split() int {
	return o.verdicts[twoParts] + o.verdicts[incomplete] + o.verdicts[lost]
}

// check compares what the sink received with the workload's plan.
func check(traces []*plannedTrace, got received) *outcome {
	o := &outcome{}
	planned := make(map[pcommon.TraceID]bool, len(traces))
	for _, tr := range traces {
		planned[tr.id] = true
		v, dups, strays, detail := judge(tr, got[tr.id])
		o.duplicates += dups
		o.unexpected += strays
		if dups+strays > 0 && len(o.examples) < 10 {
			o.examples = append(o.examples, detail)
		}
		if !tr.sampled() {
			if len(got[tr.id]) > 0 {
				o.fastKept++
				if v == incomplete {
					o.fastSplit++
				}
			}
			continue
		}
		o.sampled++
		o.verdicts[v]++
		if v != whole {
			o.bad = append(o.bad, tr)
			if len(o.examples) < 10 {
				o.examples = append(o.examples, detail)
			}
		}
	}
	for id, spans := range got {
		if !planned[id] {
			o.unexpected += len(spans)
		}
	}
	return o
}

// judge returns the verdict on one trace given what arrived of it, the
// number of extra arrivals of its spans, the number of span IDs that
// arrived under its trace ID but were never sent, and a description.
func judge(tr *plannedTrace, got map[pcommon.SpanID]arrival) (v verdict, dups, strays int, detail string) {
	var missing []string
	gateways := map[string]bool{}
	for _, ps := range tr.spans {
		a, ok := got[ps.id]
		if !ok {
			what := "sent " + ps.sentAt.Format("05.000")
			if ps.id == tr.spans[0].id {
				what = "root " + what
			}
			if ps.failed {
				what = "error " + what
			}
			missing = append(missing, what)
			continue
		}
		dups += a.count - 1
		for _, g := range a.gateways {
			gateways[g] = true
		}
	}
	for id := range got {
		if !slices.ContainsFunc(tr.spans, func(ps plannedSpan) bool { return ps.id == id }) {
			strays++
		}
	}
	switch {
	case len(got) == 0:
		v = lost
	case len(missing) > 0:
		v = incomplete
	case len(gateways) > 1:
		v = twoParts
	}
	names := make([]string, 0, len(gateways))
	for g := range gateways {
		names = append(names, g)
	}
	slices.Sort(names)
	first, last := tr.window()
	detail = fmt.Sprintf("%s trace %s %s: %d/%d spans from [%s], %d duplicate arrivals, %d strays, sent %s–%s",
		tr.class, tr.id, v, len(tr.spans)-len(missing), len(tr.spans), strings.Join(names, " "), dups, strays,
		first.Format("15:04:05.000"), last.Format("15:04:05.000"))
	if len(missing) > 0 {
		detail += "; missing: " + strings.Join(missing, ", ")
	}
	return v, dups, strays, detail
}

// inFlight counts the error and slow traces with spans sent both before
// and after at: those a ring change at that moment can split.
func inFlight(traces []*plannedTrace, at time.Time) int {
	n := 0
	for _, tr := range traces {
		first, last := tr.window()
		if tr.sampled() && first.Before(at) && last.After(at) {
			n++
		}
	}
	return n
}
