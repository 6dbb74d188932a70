//go:build linux

package scaleout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// class is what a trace should make the gateways' policies do.
type class int

const (
	// fast: short root, no error; only the 5 % baseline may keep it.
	fast class = iota
	// failed: one child has an ERROR status; the errors policy keeps it.
	failed
	// slow: the root lasts 1.5–3 s by its timestamps; the slow policy keeps it.
	slow
)

func (c class) String() string {
	return [...]string{"fast", "error", "slow"}[c]
}

// workload is what the test client sends: Rate traces per second for
// Duration, each trace's spans arriving over Spread (plus up to a third
// more), ErrorPct and SlowPct percent of them error and slow traces.
type workload struct {
	Rate              int
	Duration          time.Duration
	Spread            time.Duration
	ErrorPct, SlowPct int
	Seed              uint64
}

// defaultWorkload is the load of every scenario: 40 traces/s, 30 % of them
// error or slow, each over 2.5–3.3 s, so that about 40 error and slow
// traces are in flight at any moment.
func defaultWorkload(d time.Duration) workload {
	return workload{Rate: 40, Duration: d, Spread: 2500 * time.Millisecond, ErrorPct: 15, SlowPct: 15, Seed: 10}
}

// plannedSpan is one span of a trace and when it is sent.
type plannedSpan struct {
	id     pcommon.SpanID
	at     time.Duration // after the workload's start
	failed bool          // ERROR status
	sentAt time.Time     // when the agent accepted it; zero until then
}

// plannedTrace is one trace of the workload: its ID, its spans (spans[0]
// is the root) and its timestamps.
type plannedTrace struct {
	id      pcommon.TraceID
	class   class
	start   time.Duration // the first span's send time, after the workload's start
	rootDur time.Duration // the root's duration by its timestamps
	spans   []plannedSpan
}

// sampled reports whether the error or slow policy must keep the trace.
func (tr *plannedTrace) sampled() bool { return tr.class != fast }

// window returns when the trace's first and last spans were accepted by
// the agent.
func (tr *plannedTrace) window() (first, last time.Time) {
	for _, s := range tr.spans {
		if first.IsZero() || s.sentAt.Before(first) {
			first = s.sentAt
		}
		if s.sentAt.After(last) {
			last = s.sentAt
		}
	}
	return first, last
}

// plan generates the workload's traces. Each has 5–6 children; its spans
// are sent over its window in order, about evenly spaced with ±20 %
// jitter, the root first for half of the traces and last for the others
// (as an SDK sends a parent after its children). The gaps stay well below
// the gateways' completion quiet, so that one gateway holding a whole
// trace never decides it early.
func (w workload) plan() []*plannedTrace {
	rng := rand.New(rand.NewPCG(w.Seed, w.Seed^0x5ca1e0))
	n := int(w.Duration.Seconds() * float64(w.Rate))
	traces := make([]*plannedTrace, 0, n)
	for i := range n {
		tr := &plannedTrace{start: time.Duration(i) * time.Second / time.Duration(w.Rate)}
		for tr.id.IsEmpty() {
			putRandom(rng, tr.id[:])
		}
		switch p := rng.IntN(100); {
		case p < w.ErrorPct:
			tr.class = failed
		case p < w.ErrorPct+w.SlowPct:
			tr.class = slow
		}
		tr.rootDur = 20*time.Millisecond + time.Duration(rng.Int64N(int64(60*time.Millisecond)))
		if tr.class == slow {
			tr.rootDur = 1500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		}
		children := 5 + rng.IntN(2)
		window := w.Spread + time.Duration(rng.Int64N(int64(w.Spread/3)))
		step := window / time.Duration(children)
		ats := make([]time.Duration, 0, children+1)
		for k := range children + 1 {
			jitter := time.Duration(0)
			if k > 0 && k < children {
				jitter = time.Duration((rng.Float64()*0.4 - 0.2) * float64(step))
			}
			ats = append(ats, tr.start+time.Duration(k)*step+jitter)
		}
		rootAt := ats[0]
		if rng.IntN(2) == 0 {
			rootAt = ats[children]
			ats = ats[:children]
		} else {
			ats = ats[1:]
		}
		tr.spans = append(tr.spans, plannedSpan{at: rootAt})
		errAt := -1
		if tr.class == failed {
			errAt = rng.IntN(children)
		}
		for k, at := range ats {
			tr.spans = append(tr.spans, plannedSpan{at: at, failed: k == errAt})
		}
		for k := range tr.spans {
			for tr.spans[k].id.IsEmpty() {
				putRandom(rng, tr.spans[k].id[:])
			}
		}
		traces = append(traces, tr)
	}
	return traces
}

func putRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// sendEvent is one span due at a time.
type sendEvent struct {
	at    time.Duration
	trace *plannedTrace
	span  int
}

// sender sends the planned spans to the agent on time, in one request per
// 50 ms tick.
type sender struct {
	client ptraceotlp.GRPCClient
	conn   *grpc.ClientConn
	events []sendEvent
	epoch  time.Time // timestamps of every trace are based on it

	mu     sync.Mutex
	errors []error
}

func newSender(agentAddr string, traces []*plannedTrace) (*sender, error) {
	conn, err := grpc.NewClient(agentAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to the agent at %s: %w", agentAddr, err)
	}
	s := &sender{client: ptraceotlp.NewGRPCClient(conn), conn: conn}
	for _, tr := range traces {
		for k, sp := range tr.spans {
			s.events = append(s.events, sendEvent{at: sp.at, trace: tr, span: k})
		}
	}
	slices.SortStableFunc(s.events, func(a, b sendEvent) int { return int(a.at - b.at) })
	return s, nil
}

// run sends every event on time and returns when the last one was sent or
// ctx ended. start is the workload's start, which scenario events are
// timed from too.
func (s *sender) run(ctx context.Context, start time.Time) {
	s.epoch = start
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for next < len(s.events) {
		select {
		case <-ctx.Done():
			s.fail(ctx.Err())
			return
		case <-tick.C:
		}
		due := time.Since(start)
		end := next
		for end < len(s.events) && s.events[end].at <= due {
			end++
		}
		if end == next {
			continue
		}
		s.send(ctx, s.events[next:end])
		next = end
	}
}

// send exports one batch of spans, retrying a refusal a few times: the
// agent is never restarted, so a refusal it keeps giving is a failure.
func (s *sender) send(ctx context.Context, batch []sendEvent) {
	req := ptraceotlp.NewExportRequestFromTraces(s.traces(batch))
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		sendCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = s.client.Export(sendCtx, req)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		s.fail(fmt.Errorf("export %d spans to the agent: %w", len(batch), err))
		return
	}
	now := time.Now()
	for _, e := range batch {
		e.trace.spans[e.span].sentAt = now
	}
}

func (s *sender) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors = append(s.errors, err)
}

func (s *sender) errs() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errors)
}

// traces builds one request of batch: roots under the frontend resource,
// children under the backend one. Timestamps derive from the epoch and
// each trace's start, not from when the span is sent.
func (s *sender) traces(batch []sendEvent) ptrace.Traces {
	td := ptrace.NewTraces()
	var roots, children ptrace.SpanSlice
	haveRoots, haveChildren := false, false
	for _, e := range batch {
		tr := e.trace
		ps := tr.spans[e.span]
		var span ptrace.Span
		if e.span == 0 {
			if !haveRoots {
				roots, haveRoots = newScope(td, "scaleout-frontend"), true
			}
			span = roots.AppendEmpty()
		} else {
			if !haveChildren {
				children, haveChildren = newScope(td, "scaleout-backend"), true
			}
			span = children.AppendEmpty()
		}
		begin := s.epoch.Add(tr.start)
		span.SetTraceID(tr.id)
		span.SetSpanID(ps.id)
		span.SetKind(ptrace.SpanKindServer)
		if e.span == 0 {
			span.SetName("GET /checkout")
			span.SetStartTimestamp(pcommon.NewTimestampFromTime(begin))
			span.SetEndTimestamp(pcommon.NewTimestampFromTime(begin.Add(tr.rootDur)))
		} else {
			span.SetName(fmt.Sprintf("step-%d", e.span))
			span.SetParentSpanID(tr.spans[0].id)
			off := time.Duration(e.span) * time.Millisecond
			span.SetStartTimestamp(pcommon.NewTimestampFromTime(begin.Add(off)))
			span.SetEndTimestamp(pcommon.NewTimestampFromTime(begin.Add(off + 10*time.Millisecond)))
		}
		if ps.failed {
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage("payment declined")
		}
		span.Attributes().PutStr("scaleout.class", tr.class.String())
	}
	return td
}

func newScope(td ptrace.Traces, service string) ptrace.SpanSlice {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("github.com/tailsift/tailsift/internal/e2e/scaleout")
	return ss.Spans()
}

func (s *sender) close() { _ = s.conn.Close() }

// workloadModel is the workload in the terms of the handover model
// (docs/scale-out.md): spans/s into the tier, mean OTLP bytes per span, and
// the mean time a span waits in a buffer for its trace's decision (the rest
// of its trace's spans, then the completion quiet).
type workloadModel struct {
	spansPerSec  float64
	bytesPerSpan float64
	wait         time.Duration
}

func model(traces []*plannedTrace) workloadModel {
	var spans int
	var wait time.Duration
	var first, last time.Duration
	for i, tr := range traces {
		end := tr.spans[0].at
		for _, ps := range tr.spans {
			end = max(end, ps.at)
		}
		for _, ps := range tr.spans {
			wait += end - ps.at + quiet
		}
		spans += len(tr.spans)
		if i == 0 || tr.start < first {
			first = tr.start
		}
		last = max(last, end)
	}
	s := &sender{epoch: time.Now()}
	var sample []sendEvent
	for _, tr := range traces[:min(len(traces), 100)] {
		for k := range tr.spans {
			sample = append(sample, sendEvent{trace: tr, span: k})
		}
	}
	size := (&ptrace.ProtoMarshaler{}).TracesSize(s.traces(sample))
	return workloadModel{
		spansPerSec:  float64(spans) / (last - first).Seconds(),
		bytesPerSpan: float64(size) / float64(len(sample)),
		wait:         wait / time.Duration(spans),
	}
}
