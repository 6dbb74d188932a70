package tracebuf

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/sampling"
)

// decide evaluates t, forgets it and forwards it if kept, returning what
// the next consumer refused. lag is how long after its rule fired this
// happens, or negative for early decisions.
func (s *shard) decide(ctx context.Context, t *trace, reason string, now, lag int64) error {
	return s.decideAs(ctx, t, s.evaluate(t, t.probed), reason, now, lag)
}

// decideAs is decide with t evaluated to d.
func (s *shard) decideAs(ctx context.Context, t *trace, d sampling.Decision, reason string, now, lag int64) error {
	return s.decideMarked(ctx, t, d, nil, reason, now, lag)
}

// decideMarked is decideAs where, when given is set and d keeps t, t's
// spans are marked with given (a decision another gateway handed over:
// its threshold and rv or supplement) instead of d's mark.
func (s *shard) decideMarked(ctx context.Context, t *trace, d sampling.Decision, given *keptMark, reason string, now, lag int64) error {
	hold := false
	var mark keptMark
	if d.Keep() {
		mark = s.keep(t, d, given, now, false)
	} else if reason != ReasonMemory {
		// A trace dropped early for lack of memory is not remembered: its
		// later spans start afresh and get a decision of their own, so an
		// ERROR status among them still keeps them.
		s.decided.dropped.add(t.hash, now)
		hold = s.held.window > 0 && (reason == ReasonQuiet || reason == ReasonMaxWait)
	}
	s.forget(t, d, mark, reason, now, lag, hold)
	if s.out.due() {
		return s.flushOut(ctx, false)
	}
	return nil
}

// decideAsync is decide where no caller waits for the outcome: what the next
// consumer refused is counted (by send) and logged.
func (s *shard) decideAsync(ctx context.Context, t *trace, reason string, now, lag int64) {
	s.logRefused(s.decide(ctx, t, reason, now, lag))
}

// probe evaluates t, whose class's shorter quiet fired but only probes it
// (completion.safe): kept, it is decided now; dropped, it goes on
// probation, to be decided again completion.quiet after its latest span.
// (A trace probed again, after a span on probation, is redecided.)
func (s *shard) probe(ctx context.Context, t *trace, now, lag int64) {
	if d := s.evaluate(t, t.probed); d.Keep() {
		s.probes.kept++
		s.logRefused(s.decideAs(ctx, t, d, ReasonQuiet, now, lag))
		return
	}
	s.probes.dropped++
	s.due.probation(t)
}

// logRefused logs what the next consumer refused where no caller waits for
// it (send counted it).
func (s *shard) logRefused(err error) {
	if err != nil {
		s.deps.logger.Error("Kept spans not forwarded", zap.Error(err))
	}
}

// evaluate runs the policies on t. again is set when t was decided before
// (rescue): stateful policies then neither learn nor charge twice
// (Engine.Redecide).
func (s *shard) evaluate(t *trace, again bool) sampling.Decision {
	t.sum.Now = s.deps.clock.Now().UnixNano()
	if s.deps.engine.NeedsSpans() {
		spans, err := s.build(t, nil)
		if err != nil {
			s.deps.logger.Warn("Trace not decodable for span-level policies", zap.Error(err))
		} else {
			t.sum.Spans, t.sum.HasSpans = spans, true
		}
	}
	var d sampling.Decision
	if again {
		d = s.deps.engine.Redecide(&t.sum)
	} else {
		d = s.deps.engine.Decide(&t.sum)
	}
	t.sum.Spans, t.sum.HasSpans = ptrace.Traces{}, false
	return d
}

// keep remembers t as kept and appends its spans, marked with d's
// threshold, to the output batch, and returns the mark. rescued is set
// when a late span keeps a trace the first decision dropped: its spans
// then carry the rescue supplement marker instead, which counts 0 (the
// traces kept the first time already stand for it), and so do its later
// late spans. given, when set, is the mark to use instead (decideMarked).
func (s *shard) keep(t *trace, d sampling.Decision, given *keptMark, now int64, rescued bool) keptMark {
	var mark keptMark
	switch {
	case given != nil:
		mark = *given
	case rescued:
		mark = supplementMark(d.Threshold, sampling.SupplementRescue)
	default:
		rnd, hasRnd := s.deps.engine.Randomness(&t.sum, d)
		mark = newKeptMark(d.Threshold, rnd, hasRnd)
	}
	supplement := mark.supplement() != 0
	var attrs []byte
	if s.annotate.on() {
		mark = mark.withRule(s.annotate.index(d.Policy))
		if supplement {
			attrs = s.annotate.supplementAttrs(d.Policy)
		} else {
			attrs = s.annotate.attrs(d.Policy, d.Threshold)
		}
	}
	s.decided.rememberKept(t.sum.ID, t.hash, mark)
	var m sampling.Marker
	if given != nil || rescued {
		m = mark.marker()
	} else {
		m = s.deps.engine.Marker(&t.sum, d)
	}
	at := s.out.mark()
	if dups := s.appendTrace(&s.out, t, &m, attrs, now); dups > 0 {
		s.deps.observer.Deduplicated(dups)
	}
	s.out.cutTrace(at, now)
	return mark
}

// forget removes a decided trace from the shard's state, and frees its
// records unless it is to be held for rescue. mark is how a kept trace's
// spans were marked.
func (s *shard) forget(t *trace, d sampling.Decision, mark keptMark, reason string, now, lag int64, hold bool) {
	s.due.decided(t, reason, now)
	s.unlink(t)
	s.recordDecision(t, d, mark, reason)
	s.deps.observer.Decided(d.Policy, d.Keep(), t.sum.SpanCount, reason, time.Duration(now-t.first), time.Duration(lag))
	s.counts.add(d.Policy, d.Keep(), t.sum.SpanCount)
	if k, ok := s.deps.observer.(KeptObserver); ok && d.Keep() {
		k.Kept(&t.sum, d)
	}
	if hold {
		s.hold(t, now)
		return
	}
	s.release(t)
}

// release frees a trace's records and its references on their groups.
func (s *shard) release(t *trace) {
	t.unrefGroups(s.usage.groups)
	t.eachSegment(func(seg *[]byte) { s.usage.arena.release(*seg) })
	t.recs, t.more = nil, nil
}

// flushAll decides every buffered trace, oldest first, and returns what the
// next consumer refused.
func (s *shard) flushAll(ctx context.Context) error {
	// Take in what is still queued: it was accepted, so it is decided too.
	for {
		select {
		case m := <-s.in:
			s.deps.taken(s.id)
			if m.req != nil {
				s.ingest(ctx, m.req, m.spans)
			} else if m.sync != nil {
				close(m.sync)
			} else if m.run != nil {
				m.run(ctx, s)
			}
			continue
		default:
		}
		break
	}
	var errs []error
	now := s.now()
	for t := s.due.byFirst.head; t != nil; t = s.due.byFirst.head {
		if err := s.decide(ctx, t, ReasonShutdown, now, -1); err != nil {
			errs = append(errs, err)
		}
	}
	for t := s.held.list.head; t != nil; t = s.held.list.head {
		s.letGo(t)
	}
	if err := s.flushOut(ctx, true); err != nil {
		errs = append(errs, err)
	}
	s.report()
	s.due.report(s.deps.observer, now, true)
	s.flushStore()
	return errors.Join(errs...)
}
