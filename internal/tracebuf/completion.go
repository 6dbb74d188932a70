package tracebuf

import "math"

// completion holds the undecided traces in the order their completion rules
// fire, and the rules.
type completion struct {
	byFirst        list // all undecided traces, by first arrival (max_wait)
	byQuiet        list // those whose root arrived, by latest arrival (quiet)
	quiet, maxWait int64
	maxSpans       int
	maxBytes       uint64 // completion.max_trace_bytes, math.MaxUint64 when off
	arrival        uint8  // status bits that decide on arrival (sampling.Engine.ArrivalMask)
}

// next is when the first rule fires, or math.MaxInt64.
func (c *completion) next() int64 {
	next := int64(math.MaxInt64)
	if t := c.byFirst.head; t != nil {
		next = t.first + c.maxWait
	}
	if t := c.byQuiet.head; t != nil {
		next = min(next, t.last+c.quiet)
	}
	return next
}

// early returns the rule that decides t at once, on what has arrived, or "".
func (c *completion) early(t *trace) string {
	switch {
	case t.sum.StatusMask&c.arrival != 0:
		return ReasonArrival
	case t.sum.SpanCount >= c.maxSpans:
		return ReasonMaxSpans
	case t.sum.SizeBytes > c.maxBytes:
		return ReasonMaxBytes
	}
	return ""
}

// touch notes that a span of t arrived now: once its root is in, the quiet
// rule counts from its latest span.
func (c *completion) touch(t *trace, now int64) {
	t.last = now
	if !t.hasRoot {
		return
	}
	if t.inQuiet {
		c.byQuiet.moveToBack(t)
	} else {
		c.byQuiet.pushBack(t)
		t.inQuiet = true
	}
}
