package sampling

// Test hooks for the composing policies: compose arbitrary Policy values
// (fakes with fixed verdicts) and look at composite's allocations.

// BuildPolicy validates and builds one policy outside an engine, with the
// builder it registered its needs with.
func BuildPolicy(c *PolicyConfig) (Policy, *Builder, error) {
	b := &Builder{}
	p, err := b.Policy(c)
	return p, b, err
}

// NeedsSpans reports whether a policy built with b asked for pdata spans.
func (b *Builder) NeedsSpans() bool { return b.needSpans }

// AndOf, NotOf and DropOf compose given policies.
func AndOf(subs ...Policy) Policy  { return and{subs: subs} }
func NotOf(sub Policy) Policy      { return not{sub: sub} }
func DropOf(subs ...Policy) Policy { return drop{subs: subs} }

// CompositeOf composes subs with the given allocations, in spans per second.
func CompositeOf(maxTotal int64, subs []Policy, alloc []int64) Policy {
	p := &composite{maxTotal: maxTotal, subs: make([]compositeSub, len(subs))}
	for i := range subs {
		p.subs[i] = compositeSub{policy: subs[i], allocated: alloc[i]}
	}
	return p
}

// CompositeAllocations returns a built composite's allocations.
func CompositeAllocations(p Policy) []int64 {
	c := p.(*composite)
	out := make([]int64, len(c.subs))
	for i := range c.subs {
		out[i] = c.subs[i].allocated
	}
	return out
}
