package tracebuf

// DecisionCounter is an Observer that takes the decision counts (the
// traces_decided and spans_decided counters) summed per policy and outcome
// once per shard work cycle (each wake-up of the shard, or each Ingest call
// that ran it), rather than one Add per decision: with the OTel SDK an
// Add costs about as much as the rest of a decision's self-metrics. Decided
// is still called for every decision (its reason, latency and lag); an
// Observer that implements DecisionCounter counts traces and spans only in
// CountDecided, one that does not counts them in Decided.
type DecisionCounter interface {
	Observer
	// CountDecided adds traces decisions of spans buffered spans in all,
	// each with outcome keep, by policy (empty when none kept). It is
	// called on a shard's goroutine or the Ingest call running the shard,
	// concurrently for different shards.
	CountDecided(policy string, keep bool, traces, spans int64)
}

// decisionCounts are a shard's decision counts not yet handed to its
// observer's CountDecided: one entry per policy and outcome seen, kept
// (zeroed) after a flush, so that a steady state allocates nothing.
type decisionCounts struct {
	to      DecisionCounter // nil: the observer counts in Decided
	entries []decisionCount
}

type decisionCount struct {
	policy        string
	keep          bool
	traces, spans int64
}

func newDecisionCounts(o Observer) decisionCounts {
	c, _ := o.(DecisionCounter)
	return decisionCounts{to: c}
}

// add counts one decision of a trace of spans buffered spans. A shard
// sees few policies, so a scan beats hashing the policy's name.
func (c *decisionCounts) add(policy string, keep bool, spans int) {
	if c.to == nil {
		return
	}
	for i := range c.entries {
		if e := &c.entries[i]; e.keep == keep && e.policy == policy {
			e.traces++
			e.spans += int64(spans)
			return
		}
	}
	c.entries = append(c.entries, decisionCount{policy: policy, keep: keep, traces: 1, spans: int64(spans)})
}

// flush hands the counts to the observer and zeroes them.
func (c *decisionCounts) flush() {
	for i := range c.entries {
		if e := &c.entries[i]; e.traces > 0 {
			c.to.CountDecided(e.policy, e.keep, e.traces, e.spans)
			e.traces, e.spans = 0, 0
		}
	}
}
