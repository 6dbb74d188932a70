package workload

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Config parameterises a Generator. The request stream it produces depends
// only on Config (it runs in virtual time), so a seed reproduces it exactly.
type Config struct {
	Seed     int64
	Rate     float64       // offered spans/s
	Duration time.Duration // traces start during [0, Duration); 0 = until Stop
	ErrorPct float64       // percent of error traces; with Classes set, Classes.Error
	// Classes is the whole class mix (see Mix); nil means DefaultMix with
	// ErrorPct. The Generator's Config has it set.
	Classes   *Mix
	Templates int // templates per class (huge: at most 4); default 1000
	// Linger, when > 0, overrides every service's batching delay (by
	// default each service has its own, 0.2-5 s): how long a service's
	// batch stays open before it is sent.
	Linger   time.Duration
	MaxSpans int // spans per request at most; default 512
	// Shape is ShapeBench (the default, "") or ShapeSDK: see shape.go.
	Shape string
}

// Mix is the class mix of c, defaults applied.
func (c *Config) Mix() Mix {
	if c.Classes != nil {
		return *c.Classes
	}
	m := DefaultMix()
	m.Error = c.ErrorPct
	return m
}

// SetMix sets the class mix of c (ErrorPct included) to m.
func (c *Config) SetMix(m Mix) {
	c.ErrorPct, c.Classes = m.Error, &m
}

func (c *Config) setDefaults() error {
	if c.Templates <= 0 {
		c.Templates = 1000
	}
	if c.MaxSpans <= 0 {
		c.MaxSpans = DefaultMaxSpan
	}
	if c.Shape == "" {
		c.Shape = ShapeBench
	}
	if c.Shape != ShapeBench && c.Shape != ShapeSDK {
		return fmt.Errorf("workload: shape %q: want %q or %q", c.Shape, ShapeBench, ShapeSDK)
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		return errors.New("workload: rate must be > 0")
	}
	m := c.Mix()
	if err := m.Validate(); err != nil {
		return fmt.Errorf("workload: mix: %w", err)
	}
	c.SetMix(m)
	return nil
}

// Class indexes into Generator pools.
const (
	cFast = iota
	cSlow
	cError
	cAnomaly
	cHuge
	numClasses
)

// Instance is one trace instance: a template plus its own trace ID, sequence
// number and start time.
type Instance struct {
	Seq     int64
	TraceID [16]byte
	T       *Template
	StartV  int64 // virtual start, ns from run start

	unsent   int32        // generator only: spans not yet put in a request
	pending  atomic.Int32 // requests carrying it not yet completed (+1 while unsent > 0)
	lastSend atomic.Int64
	refused  atomic.Int32
}

// TraceIDHex is the trace ID as 32 lowercase hex characters.
func (i *Instance) TraceIDHex() string { return hex.EncodeToString(i.TraceID[:]) }

// Manifest returns the instance's manifest line. Valid once the instance is
// complete (see Request.Complete).
func (i *Instance) Manifest() ManifestTrace {
	return ManifestTrace{
		Seq:              i.Seq,
		TraceID:          i.TraceIDHex(),
		Class:            i.T.Class,
		Spans:            len(i.T.Spans),
		Route:            i.T.Route,
		RootMs:           float64(i.T.RootDur) / 1e6,
		LastSendUnixNano: i.lastSend.Load(),
		Late:             i.T.Late > 0,
		RefusedSpans:     int(i.refused.Load()),
	}
}

// TraceRef is one trace instance carried by a request.
type TraceRef struct {
	Inst  *Instance
	Spans int32
}

type runRef struct {
	inst     *Instance
	from, to int32
	bytes    int32
	svc      uint8
	late     bool
}

type block struct {
	svc       uint8
	from, to  int32 // into Request.runs
	spanBytes int
}

// Request is one OTLP export request: one service's batch, holding spans of
// every trace in flight for it (grouped per service into ResourceSpans).
type Request struct {
	SendV     int64 // virtual send time, ns from run start
	Lane      int   // service whose batch this is
	Spans     int
	LateSpans int
	Size      int // encoded size in bytes
	Traces    []TraceRef
	runs      []runRef
	blocks    []block
}

// Complete records that r was sent at wall time sendUnixNano and whether it
// was refused; done is called for every trace instance whose last request
// has now completed. Safe for concurrent use.
func (r *Request) Complete(sendUnixNano int64, refused bool, done func(*Instance)) {
	for _, tr := range r.Traces {
		in := tr.Inst
		for {
			old := in.lastSend.Load()
			if sendUnixNano <= old || in.lastSend.CompareAndSwap(old, sendUnixNano) {
				break
			}
		}
		if refused {
			in.refused.Add(tr.Spans)
		}
		if in.pending.Add(-1) == 0 && done != nil {
			done(in)
		}
	}
}

// event is a group becoming due (inst != nil) or a lane's batch linger
// expiring. Equal due times pop in a deterministic (heap) order.
type event struct {
	due  int64
	inst *Instance
	a    int32 // group index, or lane
	b    uint32
}

type lane struct {
	runs  []runRef
	spans int
	batch uint32
}

// Generator produces the request stream in virtual time. It is not safe for
// concurrent use, except AppendRequest and Request.Complete.
type Generator struct {
	cfg   Config
	model *model
	pools [numClasses][]*Template
	rng   *rand.Rand

	// Class probabilities: a trace is huge, error or anomaly with these,
	// else (a second draw) slow with pSlow.
	pHuge, pError, pAnomaly, pSlow float64

	seq      int64
	startF   float64 // next trace start, virtual ns
	stopAt   int64
	heap     []event
	lanes    [NumServices]lane
	out      []*Request
	outHead  int
	svcCount [NumServices]int32
	svcOrder []uint8
	pending  int64 // spans started but not yet in a request
	spansOut int64
}

// NewGenerator builds the template pools (the only expensive step).
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, stopAt: math.MaxInt64}
	if cfg.Duration > 0 {
		g.stopAt = int64(cfg.Duration)
	}
	seed := uint64(cfg.Seed)
	g.model = newModel(rand.New(rand.NewPCG(seed, 0x6d6f64656c)), cfg.Shape == ShapeSDK)
	// An ordinary trace is slow when it falls in the extra 2-10 s tail or
	// else in the log-normal's own tail.
	mix := cfg.Mix()
	pSlowTail := mix.Slow / 100
	g.pSlow = pSlowTail + (1-pSlowTail)*pLogNormalSlow
	g.pHuge, g.pError, g.pAnomaly = mix.Huge/100, mix.Error/100, mix.Anomaly/100
	g.model.slowTailShare = pSlowTail / g.pSlow
	g.model.pLateSpan = mix.Late / 100
	names := [numClasses]string{ClassFast, ClassSlow, ClassError, ClassAnomaly, ClassHuge}
	for c := range numClasses {
		rng := rand.New(rand.NewPCG(seed, 0x74706c00+uint64(c)))
		n := cfg.Templates
		if c == cHuge {
			n = min(n, 4)
		}
		g.pools[c] = make([]*Template, n)
		for i := range n {
			u := (float64(i) + rng.Float64()) / float64(n) // stratified
			g.pools[c][i] = buildTemplate(rng, g.model, names[c], u, cfg.Linger)
		}
	}
	g.rng = rand.New(rand.NewPCG(seed, 0x696e7374))
	return g, nil
}

// Config returns the configuration in effect (defaults applied).
func (g *Generator) Config() Config { return g.cfg }

// Mix returns the class mix in effect.
func (g *Generator) Mix() Mix { return g.cfg.Mix() }

// Pool returns the templates of a class.
func (g *Generator) Pool(class string) []*Template {
	for c, name := range []string{ClassFast, ClassSlow, ClassError, ClassAnomaly, ClassHuge} {
		if name == class {
			return g.pools[c]
		}
	}
	return nil
}

// Stop stops starting traces at virtual times >= atV; traces already started
// are still completed by Next.
func (g *Generator) Stop(atV int64) { g.stopAt = min(g.stopAt, atV) }

// Traces is the number of trace instances started so far.
func (g *Generator) Traces() int64 { return g.seq }

// PendingSpans is the number of spans of started traces not yet returned by
// Next (including spans of traces waiting for their batching delay or late).
func (g *Generator) PendingSpans() int64 { return g.pending }

// Next returns the next request in virtual send-time order, or nil once all
// traces have started (see Config.Duration and Stop) and been sent.
func (g *Generator) Next() *Request {
	for g.outHead == len(g.out) {
		g.out, g.outHead = g.out[:0], 0
		if !g.step() {
			return nil
		}
	}
	r := g.out[g.outHead]
	g.out[g.outHead] = nil
	g.outHead++
	return r
}

func (g *Generator) step() bool {
	next := int64(g.startF)
	canStart := next < g.stopAt
	if len(g.heap) == 0 && !canStart {
		return false
	}
	if canStart && (len(g.heap) == 0 || next <= g.heap[0].due) {
		g.startTrace(next)
		return true
	}
	ev := g.pop()
	if ev.inst != nil {
		g.addGroup(ev.inst, int(ev.a), ev.due)
		if next := int(ev.a) + 1; next < len(ev.inst.T.Groups) {
			g.push(event{due: ev.inst.StartV + int64(ev.inst.T.Groups[next].SendOffset), inst: ev.inst, a: int32(next)})
		}
		return true
	}
	if l := &g.lanes[ev.a]; l.batch == ev.b && l.spans > 0 {
		g.emit(int(ev.a), ev.due)
	}
	return true
}

func (g *Generator) drawClass() int {
	u := g.rng.Float64()
	if u < g.pHuge {
		return cHuge
	}
	u -= g.pHuge
	if u < g.pError {
		return cError
	}
	u -= g.pError
	if u < g.pAnomaly {
		return cAnomaly
	}
	if g.rng.Float64() < g.pSlow {
		return cSlow
	}
	return cFast
}

func (g *Generator) startTrace(at int64) {
	pool := g.pools[g.drawClass()]
	t := pool[g.rng.IntN(len(pool))]
	g.seq++
	in := &Instance{Seq: g.seq, T: t, StartV: at, unsent: int32(len(t.Spans))}
	in.TraceID = TraceID(g.cfg.Seed, g.seq)
	in.pending.Store(1)
	g.pending += int64(len(t.Spans))
	// Open loop: each trace costs its spans in tokens of the offered rate.
	g.startF += float64(len(t.Spans)) * 1e9 / g.cfg.Rate
	g.push(event{due: at + int64(t.Groups[0].SendOffset), inst: in})
}

func (g *Generator) addGroup(in *Instance, gi int, at int64) {
	grp := &in.T.Groups[gi]
	li := int(grp.Lane)
	l := &g.lanes[li]
	maxSpans := int32(g.cfg.MaxSpans)
	// A group that does not fit goes to the next batch whole; only groups
	// larger than a batch (huge traces) are split.
	if l.spans > 0 && l.spans+grp.Spans > int(maxSpans) {
		g.emit(li, at)
	}
	for _, r := range grp.Runs {
		for from := r.From; from < r.To; {
			if l.spans >= int(maxSpans) {
				g.emit(li, at)
			}
			if l.spans == 0 {
				g.push(event{due: at + int64(g.model.delay(li, g.cfg.Linger)), a: int32(li), b: l.batch})
			}
			take := min(r.To-from, maxSpans-int32(l.spans))
			bytes := r.Bytes
			if take != r.To-r.From {
				bytes = in.T.runBytes(from, from+take) // a huge group, split
			}
			l.runs = append(l.runs, runRef{inst: in, from: from, to: from + take, bytes: bytes, svc: r.Service, late: grp.Late})
			l.spans += int(take)
			from += take
		}
	}
	if l.spans >= int(maxSpans) {
		g.emit(li, at)
	}
}

// emit turns lane li's open batch into a request sent at virtual time at.
func (g *Generator) emit(li int, at int64) {
	l := &g.lanes[li]
	req := &Request{SendV: at, Lane: li, Spans: l.spans, Traces: make([]TraceRef, 0, len(l.runs))}
	// Distinct traces (a trace's runs are adjacent in the batch).
	for _, rr := range l.runs {
		n := rr.to - rr.from
		if k := len(req.Traces); k > 0 && req.Traces[k-1].Inst == rr.inst {
			req.Traces[k-1].Spans += n
		} else {
			req.Traces = append(req.Traces, TraceRef{Inst: rr.inst, Spans: n})
		}
		if rr.late {
			req.LateSpans += int(n)
		}
	}
	for _, tr := range req.Traces {
		in := tr.Inst
		in.pending.Add(1)
		in.unsent -= tr.Spans
		if in.unsent == 0 {
			in.pending.Add(-1) // the generator's hold
		}
	}
	// One ResourceSpans per service, the lane's own service first.
	g.svcOrder = g.svcOrder[:0]
	g.svcOrder = append(g.svcOrder, uint8(li))
	g.svcCount[li] = 0
	for _, rr := range l.runs {
		if g.svcCount[rr.svc] == 0 && rr.svc != uint8(li) {
			g.svcOrder = append(g.svcOrder, rr.svc)
		}
		g.svcCount[rr.svc]++
	}
	req.runs = make([]runRef, len(l.runs))
	req.blocks = make([]block, 0, len(g.svcOrder))
	pos := int32(0)
	for _, s := range g.svcOrder {
		c := g.svcCount[s]
		if c == 0 {
			continue
		}
		req.blocks = append(req.blocks, block{svc: s, from: pos, to: pos})
		g.svcCount[s] = pos // becomes the write cursor
		pos += c
	}
	for _, rr := range l.runs {
		i := g.svcCount[rr.svc]
		req.runs[i] = rr
		g.svcCount[rr.svc]++
	}
	for bi := range req.blocks {
		b := &req.blocks[bi]
		b.to = g.svcCount[b.svc]
		g.svcCount[b.svc] = 0
		for _, rr := range req.runs[b.from:b.to] {
			b.spanBytes += int(rr.bytes)
		}
		req.Size += g.model.blockSize(b.svc, b.spanBytes)
	}
	g.pending -= int64(l.spans)
	g.spansOut += int64(l.spans)
	clear(l.runs)
	l.runs, l.spans = l.runs[:0], 0
	l.batch++
	g.out = append(g.out, req)
}

// The event queue is a 4-ary min-heap on due.

func (g *Generator) push(e event) {
	g.heap = append(g.heap, e)
	h := g.heap
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if h[p].due <= e.due {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

func (g *Generator) pop() event {
	h := g.heap
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h[n] = event{}
	h = h[:n]
	if n > 0 {
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			m := c
			for k := c + 1; k < c+4 && k < n; k++ {
				if h[k].due < h[m].due {
					m = k
				}
			}
			if h[m].due >= last.due {
				break
			}
			h[i] = h[m]
			i = m
		}
		h[i] = last
	}
	g.heap = h
	return top
}
