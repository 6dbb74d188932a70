// Package benchmarks compares the tailsift processor with the contrib
// tail_sampling processor on the same deterministic trace workload.
//
// The benchmarks live in this package's _test.go files; see README.md for
// the commands and recorded results. This file holds the workload
// generator, which is deterministic for a given WorkloadConfig (including
// its Seed); only the absolute timestamps depend on WorkloadConfig.BaseTime.
package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// WorkloadConfig describes the synthetic trace workload.
type WorkloadConfig struct {
	// Seed makes the workload reproducible.
	Seed uint64
	// TotalSpans is the approximate number of spans to generate (whole
	// traces are generated, so the result may exceed it by < 50 spans).
	TotalSpans int
	// MinBatchSpans and MaxBatchSpans bound the target size of a batch.
	MinBatchSpans, MaxBatchSpans int
	// ActiveTraces is how many traces are in flight at once; every batch
	// draws chunks from random in-flight traces, so a batch holds spans of
	// many traces and each trace is spread over several batches.
	ActiveTraces int
	// ErrorFraction is the fraction of traces with one ERROR span deep in
	// the tree; SlowFraction is the fraction whose root lasts >= 1 s.
	ErrorFraction, SlowFraction float64
	// BaseTime is the start time of the first trace.
	BaseTime time.Time
}

// DefaultWorkloadConfig returns the workload used by the benchmarks.
func DefaultWorkloadConfig() WorkloadConfig {
	return WorkloadConfig{
		Seed:          20240611,
		TotalSpans:    200_000,
		MinBatchSpans: 100,
		MaxBatchSpans: 500,
		ActiveTraces:  600,
		ErrorFraction: 0.03,
		SlowFraction:  0.01,
		BaseTime:      time.Now().Truncate(time.Minute),
	}
}

// Workload is a pre-built, immutable sequence of batches, kept in OTLP
// protobuf form so the master copy adds no pointers for the GC to scan
// while processors are measured. Batch returns a fresh pdata copy, so a
// processor that mutates or retains its input cannot corrupt the workload.
type Workload struct {
	Encoded     [][]byte // OTLP protobuf of each batch
	BatchSpans  []int    // spans per batch
	TotalSpans  int
	TotalTraces int
	WireBytes   int // OTLP protobuf size of all batches
	ErrorTraces int
	SlowTraces  int
	MaxSpans    int // largest trace
}

// AvgBatchWireBytes is the mean OTLP protobuf size of a batch.
func (w *Workload) AvgBatchWireBytes() int64 {
	return int64(w.WireBytes / len(w.Encoded))
}

// Batch decodes a fresh copy of batch i.
func (w *Workload) Batch(i int) ptrace.Traces {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(w.Encoded[i])
	if err != nil {
		panic(err)
	}
	return td
}

// Copy returns fresh copies of all batches.
func (w *Workload) Copy() []ptrace.Traces {
	out := make([]ptrace.Traces, len(w.Encoded))
	for i := range out {
		out[i] = w.Batch(i)
	}
	return out
}

func (w *Workload) String() string {
	return fmt.Sprintf("%d spans, %d traces (%.1f spans/trace, max %d), %d batches (%.0f spans/batch), %.0f wire B/span, %d error traces, %d slow traces",
		w.TotalSpans, w.TotalTraces, float64(w.TotalSpans)/float64(w.TotalTraces), w.MaxSpans,
		len(w.Encoded), float64(w.TotalSpans)/float64(len(w.Encoded)),
		float64(w.WireBytes)/float64(w.TotalSpans), w.ErrorTraces, w.SlowTraces)
}

const (
	numServices      = 50
	opsPerService    = 20
	instancesPerSvc  = 2
	minSpansPerTrace = 5
	maxSpansPerTrace = 50
)

type opKind int

const (
	opHTTPServer opKind = iota
	opHTTPClient
	opRPC
	opDB
	opMessaging
	opInternal
)

type operation struct {
	name  string
	kind  opKind
	route string
}

type service struct {
	name      string
	namespace string
	version   string
	instances []string // service.instance.id
	hosts     []string
	lang      string
	ops       []operation
}

var (
	svcWords1 = []string{"checkout", "payment", "cart", "catalog", "inventory", "shipping", "pricing", "search", "recommend", "account"}
	svcWords2 = []string{"api", "service", "worker", "gateway", "backend"}
	languages = []string{"go", "java", "python", "nodejs", "dotnet"}
	resources = []string{"orders", "items", "users", "sessions", "invoices", "products", "carts", "quotes"}
	verbs     = []string{"GET", "POST", "PUT", "DELETE"}
	dbSystems = []string{"postgresql", "mysql", "redis", "mongodb"}
)

func buildServices(r *rand.Rand) []service {
	svcs := make([]service, numServices)
	for i := range svcs {
		name := fmt.Sprintf("%s-%s", svcWords1[i%len(svcWords1)], svcWords2[i/len(svcWords1)])
		s := service{
			name:      name,
			namespace: "shop-" + svcWords1[i%len(svcWords1)],
			version:   fmt.Sprintf("1.%d.%d", r.IntN(30), r.IntN(10)),
			lang:      languages[r.IntN(len(languages))],
		}
		for j := range instancesPerSvc {
			s.instances = append(s.instances, fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&(1<<48-1)))
			s.hosts = append(s.hosts, fmt.Sprintf("ip-10-%d-%d-%d.ec2.internal", r.IntN(256), i, j))
		}
		for k := range opsPerService {
			res := resources[r.IntN(len(resources))]
			var op operation
			switch k % 6 {
			case 0, 1:
				op.kind = opHTTPServer
				op.route = fmt.Sprintf("/api/v%d/%s/{id}/%s", 1+r.IntN(3), res, resources[r.IntN(len(resources))])
				op.name = verbs[r.IntN(len(verbs))] + " " + op.route
			case 2:
				op.kind = opHTTPClient
				op.route = fmt.Sprintf("/internal/%s/%s", res, resources[r.IntN(len(resources))])
				op.name = verbs[r.IntN(len(verbs))]
			case 3:
				op.kind = opRPC
				op.name = fmt.Sprintf("shop.%s.v1.%sService/Get%s", svcWords1[i%len(svcWords1)], capitalize(res), capitalize(resources[r.IntN(len(resources))]))
			case 4:
				op.kind = opDB
				op.route = res
				op.name = []string{"SELECT ", "INSERT ", "UPDATE "}[r.IntN(3)] + "shop." + res
			default:
				if k%2 == 0 {
					op.kind = opMessaging
					op.route = "shop." + res + ".events"
					op.name = "publish " + op.route
				} else {
					op.kind = opInternal
					op.name = fmt.Sprintf("%s.process%s", name, capitalize(res))
				}
			}
			s.ops = append(s.ops, op)
		}
		svcs[i] = s
	}
	return svcs
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// genSpan is a span of a generated trace before it is written to pdata.
type genSpan struct {
	svc, inst  int
	op         int
	spanID     pcommon.SpanID
	parent     int // index in trace, -1 for root
	depth      int
	start, end time.Time
	isError    bool
}

type genTrace struct {
	id     pcommon.TraceID
	spans  []genSpan
	chunks [][]int // span indexes per chunk, emitted in order (root in the last one)
	next   int     // next chunk to emit
}

type generator struct {
	r     *rand.Rand
	cfg   WorkloadConfig
	svcs  []service
	clock time.Time
	w     *Workload
}

func (g *generator) spanCount() int {
	// 5..50, mean ~12: 5 + a geometric-like tail.
	n := minSpansPerTrace + int(g.r.ExpFloat64()*7.6)
	return min(n, maxSpansPerTrace)
}

func (g *generator) newTrace() *genTrace {
	r := g.r
	t := &genTrace{}
	for t.id.IsEmpty() {
		binaryPut(t.id[:8], r.Uint64())
		binaryPut(t.id[8:], r.Uint64())
	}
	n := g.spanCount()
	// Services of this trace: 3-8 of numServices.
	nsvc := 3 + r.IntN(6)
	svcIdx := r.Perm(numServices)[:nsvc]
	g.clock = g.clock.Add(time.Duration(r.IntN(2000)) * time.Microsecond)
	start := g.clock

	slow := r.Float64() < g.cfg.SlowFraction
	var rootDur time.Duration
	if slow {
		rootDur = time.Second + time.Duration(r.IntN(4000))*time.Millisecond
		g.w.SlowTraces++
	} else {
		rootDur = time.Duration(5+r.IntN(300)) * time.Millisecond
	}
	t.spans = make([]genSpan, n)
	root := &t.spans[0]
	root.svc = svcIdx[0]
	root.inst = r.IntN(instancesPerSvc)
	root.op = 0 // an HTTP server operation
	root.parent = -1
	root.start, root.end = start, start.Add(rootDur)
	for i := 1; i < n; i++ {
		p := r.IntN(i)
		ps := &t.spans[p]
		s := &t.spans[i]
		s.parent = p
		s.depth = ps.depth + 1
		if r.IntN(3) == 0 {
			s.svc = ps.svc
			s.inst = ps.inst
		} else {
			s.svc = svcIdx[r.IntN(nsvc)]
			s.inst = r.IntN(instancesPerSvc)
		}
		s.op = r.IntN(opsPerService)
		pd := ps.end.Sub(ps.start)
		off := time.Duration(r.Int64N(int64(pd)/2 + 1))
		d := time.Duration(r.Int64N(int64(pd-off)) + 1)
		if d > pd-off {
			d = pd - off
		}
		s.start = ps.start.Add(off)
		s.end = s.start.Add(max(d, time.Microsecond))
	}
	for i := range t.spans {
		for t.spans[i].spanID.IsEmpty() {
			binaryPut(t.spans[i].spanID[:], r.Uint64())
		}
	}
	if r.Float64() < g.cfg.ErrorFraction {
		deepest := 0
		for i := range t.spans {
			if t.spans[i].depth > t.spans[deepest].depth {
				deepest = i
			}
		}
		t.spans[deepest].isError = true
		g.w.ErrorTraces++
	}

	// Split into 2-6 chunks, children first (deepest first), root last.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return t.spans[b].depth - t.spans[a].depth })
	k := min(2+r.IntN(5), n)
	cuts := r.Perm(n - 1)[:k-1] // cut after position c (0..n-2)
	slices.Sort(cuts)
	prev := 0
	for _, c := range cuts {
		t.chunks = append(t.chunks, order[prev:c+1])
		prev = c + 1
	}
	t.chunks = append(t.chunks, order[prev:])

	g.w.TotalTraces++
	g.w.MaxSpans = max(g.w.MaxSpans, n)
	return t
}

func binaryPut(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}

// batchBuilder groups the spans of one batch by resource (service instance).
type batchBuilder struct {
	td     ptrace.Traces
	scopes map[[2]int]ptrace.SpanSlice
	spans  int
}

func (g *generator) newBatch() *batchBuilder {
	return &batchBuilder{td: ptrace.NewTraces(), scopes: map[[2]int]ptrace.SpanSlice{}}
}

func (g *generator) appendChunk(bb *batchBuilder, t *genTrace, chunk []int) {
	for _, si := range chunk {
		gs := &t.spans[si]
		key := [2]int{gs.svc, gs.inst}
		ss, ok := bb.scopes[key]
		if !ok {
			rs := bb.td.ResourceSpans().AppendEmpty()
			g.fillResource(rs.Resource().Attributes(), gs.svc, gs.inst)
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName("io.opentelemetry." + g.svcs[gs.svc].lang + ".instrumentation")
			sc.Scope().SetVersion("2.4.0")
			ss = sc.Spans()
			bb.scopes[key] = ss
		}
		g.fillSpan(ss.AppendEmpty(), t, si)
		bb.spans++
	}
}

func (g *generator) fillResource(a pcommon.Map, svc, inst int) {
	s := &g.svcs[svc]
	a.EnsureCapacity(9)
	a.PutStr("service.name", s.name)
	a.PutStr("service.namespace", s.namespace)
	a.PutStr("service.version", s.version)
	a.PutStr("service.instance.id", s.instances[inst])
	a.PutStr("deployment.environment.name", "production")
	a.PutStr("host.name", s.hosts[inst])
	a.PutStr("telemetry.sdk.name", "opentelemetry")
	a.PutStr("telemetry.sdk.language", s.lang)
	a.PutStr("telemetry.sdk.version", "1.38.0")
}

func (g *generator) fillSpan(sp ptrace.Span, t *genTrace, si int) {
	r := g.r
	gs := &t.spans[si]
	s := &g.svcs[gs.svc]
	op := &s.ops[gs.op]
	sp.SetTraceID(t.id)
	sp.SetSpanID(gs.spanID)
	if gs.parent >= 0 {
		sp.SetParentSpanID(t.spans[gs.parent].spanID)
	}
	sp.SetName(op.name)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(gs.start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(gs.end))
	if gs.isError {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("upstream: deadline exceeded")
	}
	a := sp.Attributes()
	a.EnsureCapacity(10)
	reqID := fmt.Sprintf("%016x", r.Uint64())
	peer := g.svcs[r.IntN(numServices)]
	switch op.kind {
	case opHTTPServer, opHTTPClient:
		if op.kind == opHTTPServer || gs.parent < 0 {
			sp.SetKind(ptrace.SpanKindServer)
		} else {
			sp.SetKind(ptrace.SpanKindClient)
		}
		method := op.name
		if i := indexByte(method, ' '); i > 0 {
			method = method[:i]
		}
		code := int64(200)
		if gs.isError {
			code = 503
		}
		a.PutStr("http.request.method", method)
		a.PutStr("url.path", fmt.Sprintf("/v1/items/%d", r.IntN(1_000_000)))
		a.PutStr("http.route", op.route)
		a.PutInt("http.response.status_code", code)
		a.PutStr("server.address", peer.name)
		a.PutInt("server.port", 8080)
		a.PutStr("user_agent.original", "okhttp/4.12.0")
		a.PutStr("client.address", fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)))
		a.PutStr("network.protocol.version", "1.1")
		a.PutStr("request.id", reqID)
	case opRPC:
		sp.SetKind(ptrace.SpanKindServer)
		a.PutStr("rpc.system", "grpc")
		a.PutStr("rpc.service", op.name[:indexByte(op.name, '/')])
		a.PutStr("rpc.method", op.name[indexByte(op.name, '/')+1:])
		a.PutInt("rpc.grpc.status_code", 0)
		a.PutStr("server.address", peer.name)
		a.PutInt("server.port", 9090)
		a.PutStr("network.peer.address", fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)))
		a.PutStr("network.transport", "tcp")
		a.PutInt("thread.id", int64(r.IntN(512)))
		a.PutStr("request.id", reqID)
	case opDB:
		sp.SetKind(ptrace.SpanKindClient)
		a.PutStr("db.system", dbSystems[gs.svc%len(dbSystems)])
		a.PutStr("db.namespace", "shop")
		a.PutStr("db.operation.name", op.name[:indexByte(op.name, ' ')])
		a.PutStr("db.collection.name", op.route)
		a.PutStr("db.query.text", fmt.Sprintf("%s * FROM %s WHERE id = $1 LIMIT %d", op.name[:indexByte(op.name, ' ')], op.route, 1+r.IntN(100)))
		a.PutStr("server.address", "db-"+op.route+".shop.internal")
		a.PutInt("server.port", 5432)
		a.PutInt("db.response.returned_rows", int64(r.IntN(100)))
		a.PutStr("network.peer.address", fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)))
		a.PutStr("request.id", reqID)
	case opMessaging:
		sp.SetKind(ptrace.SpanKindProducer)
		a.PutStr("messaging.system", "kafka")
		a.PutStr("messaging.destination.name", op.route)
		a.PutStr("messaging.operation.type", "publish")
		a.PutStr("messaging.kafka.message.key", reqID)
		a.PutInt("messaging.destination.partition.id", int64(r.IntN(24)))
		a.PutStr("messaging.client.id", s.name+"-producer-1")
		a.PutInt("messaging.message.body.size", int64(200+r.IntN(4000)))
		a.PutStr("server.address", "kafka-0.kafka.shop.svc")
		a.PutInt("server.port", 9092)
		a.PutStr("network.peer.address", fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)))
	default:
		sp.SetKind(ptrace.SpanKindInternal)
		a.PutStr("code.function.name", op.name)
		a.PutStr("code.file.path", "internal/handler/handler.go")
		a.PutInt("code.line.number", int64(20+r.IntN(800)))
		a.PutInt("thread.id", int64(r.IntN(512)))
		a.PutStr("thread.name", fmt.Sprintf("worker-%d", r.IntN(64)))
		a.PutStr("component", "business-logic")
		a.PutBool("feature_flag.new_pricing", r.IntN(2) == 0)
		a.PutStr("tenant.id", fmt.Sprintf("tenant-%04d", r.IntN(5000)))
		a.PutInt("items.count", int64(r.IntN(50)))
		a.PutStr("request.id", reqID)
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// GenerateWorkload builds the batches for cfg.
func GenerateWorkload(cfg WorkloadConfig) *Workload {
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &generator{r: r, cfg: cfg, clock: cfg.BaseTime, w: &Workload{}}
	g.svcs = buildServices(r)

	generated := 0
	active := make([]*genTrace, 0, cfg.ActiveTraces)
	refill := func() {
		for len(active) < cfg.ActiveTraces && generated < cfg.TotalSpans {
			t := g.newTrace()
			generated += len(t.spans)
			active = append(active, t)
		}
	}
	refill()
	marshaler := &ptrace.ProtoMarshaler{}
	for len(active) > 0 {
		target := cfg.MinBatchSpans + r.IntN(cfg.MaxBatchSpans-cfg.MinBatchSpans+1)
		bb := g.newBatch()
		// Visit the in-flight traces in random order and take at most one
		// chunk of each, so consecutive chunks of a trace land in
		// different batches.
		for _, i := range r.Perm(len(active)) {
			if bb.spans >= target {
				break
			}
			t := active[i]
			g.appendChunk(bb, t, t.chunks[t.next])
			t.next++
		}
		// Drop finished traces, keeping order stable for determinism.
		active = slices.DeleteFunc(active, func(t *genTrace) bool { return t.next == len(t.chunks) })
		refill()
		enc, err := marshaler.MarshalTraces(bb.td)
		if err != nil {
			panic(err)
		}
		g.w.Encoded = append(g.w.Encoded, enc)
		g.w.BatchSpans = append(g.w.BatchSpans, bb.spans)
		g.w.TotalSpans += bb.spans
		g.w.WireBytes += len(enc)
	}
	return g.w
}
