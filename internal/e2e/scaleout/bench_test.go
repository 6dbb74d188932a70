//go:build linux

package scaleout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/ring"
)

// Shape of the benchmark's requests: whole traces of 10 spans of about
// 450 bytes, 50 to a request, 2 % of them error traces.
const (
	benchTracesPerRequest = 50
	benchSpansPerTrace    = 10
	benchSenders          = 8
)

// BenchmarkGateways measures the gateway tier: 1, 2 and 3 gateways (the
// tailsift receiver, with the cluster block when the binary has it, static
// membership) on this machine. The client routes each request by the ring
// itself, as an agent would, so that the agent's CPU is not in the figure;
// 8 senders keep requests of 500 spans (about 220 KB) in flight. It reports the spans/s
// the tier accepted and the gateways' CPU (user+system, from /proc) per
// span. On a machine with fewer cores than gateways × shards the spans/s
// cannot scale; gw-cpu-µs/span says what each span costs wherever it runs.
//
//	TAILSIFT_BIN=$PWD/bin/otelcol-tailsift go test -run '^$' -bench Gateways -benchtime 2000x -count 3 \
//	    ./internal/e2e/scaleout/ | tee gateways.txt && benchstat gateways.txt
func BenchmarkGateways(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		var tier *benchTier // started once per size, across the sub-benchmark's runs
		b.Run(fmt.Sprintf("gateways=%d", n), func(sb *testing.B) {
			if tier == nil {
				tier = startBenchTier(b, n)
			}
			tier.run(sb)
		})
	}
}

// benchTier is the gateways of one benchmark size, a counting sink and one
// raw gRPC connection per gateway.
type benchTier struct {
	c         *cluster
	procs     []*proc
	conns     []*grpc.ClientConn
	ring      *ring.Ring
	templates [][]byte // encoded requests whose trace IDs are replaced per send
	idOffsets [][]int  // per template, per trace, where its ID is written
}

func startBenchTier(b *testing.B, n int) *benchTier {
	b.Helper()
	hosts := initialHosts[:n]
	c := &cluster{
		t:          b,
		opts:       withCluster(false),
		hosts:      hosts,
		quiet:      300 * time.Millisecond, // whole traces arrive in one request
		maxWait:    5 * time.Second,
		port:       freePort(b, hosts...),
		healthPort: freePort(b, hosts...),
		sink:       startSink(b),
		gateways:   map[string]*proc{},
	}
	c.sink.countOnly = true
	static := make([]string, 0, n)
	for _, h := range hosts {
		static = append(static, c.addr(h))
	}
	t := &benchTier{c: c, ring: ring.New(static)}
	for _, h := range hosts {
		if err := c.startGateway(h); err != nil {
			b.Fatal(err)
		}
		t.procs = append(t.procs, c.gateway(h))
		conn, err := grpc.NewClient(c.addr(h), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		t.conns = append(t.conns, conn)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 16 {
		tmpl, offsets := benchTemplate(rng)
		t.templates = append(t.templates, tmpl)
		t.idOffsets = append(t.idOffsets, offsets)
	}
	return t
}

// benchTemplate encodes one request and finds where each trace's ID is.
func benchTemplate(rng *rand.Rand) ([]byte, []int) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", "scaleout-bench")
	res.PutStr("k8s.pod.name", "items-7c9f8d6b5-x2x4z")
	res.PutStr("k8s.namespace.name", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ids := make([]pcommon.TraceID, benchTracesPerRequest)
	now := time.Now()
	for k := range ids {
		putRandom(rng, ids[k][:])
		var root pcommon.SpanID
		for s := range benchSpansPerTrace {
			span := spans.AppendEmpty()
			span.SetTraceID(ids[k])
			var sid pcommon.SpanID
			putRandom(rng, sid[:])
			span.SetSpanID(sid)
			if s == 0 {
				root = sid
			} else {
				span.SetParentSpanID(root)
			}
			span.SetName(fmt.Sprintf("op-%d", s))
			span.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			span.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(20+rng.IntN(80)) * time.Millisecond)))
			attrs := span.Attributes()
			attrs.PutStr("http.request.method", "GET")
			attrs.PutStr("http.route", "/api/v1/items/{id}")
			attrs.PutStr("url.full", fmt.Sprintf("https://shop.example.com/api/v1/items/%d?currency=EUR", rng.IntN(1e6)))
			attrs.PutInt("http.response.status_code", 200)
			attrs.PutStr("server.address", "items.shop.svc.cluster.local")
			attrs.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
			attrs.PutStr("db.query.text", "SELECT id, name, price FROM items WHERE id = $1")
			attrs.PutBool("cache.hit", rng.IntN(2) == 0)
			if s == 3 && rng.IntN(50) == 0 {
				span.Status().SetCode(ptrace.StatusCodeError)
			}
		}
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(fmt.Sprintf("marshal a benchmark request: %v", err))
	}
	offsets := make([]int, 0, len(ids)*benchSpansPerTrace)
	for _, id := range ids {
		for from := 0; ; {
			i := bytes.Index(body[from:], id[:])
			if i < 0 {
				break
			}
			offsets = append(offsets, from+i)
			from += i + len(id)
		}
	}
	return body, offsets
}

func (t *benchTier) run(b *testing.B) {
	jobs := make(chan int, benchSenders)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var sendErr error
	var refused atomic.Int64
	for w := range benchSenders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var buf []byte
			for j := range jobs {
				gw := j % len(t.conns)
				buf = t.request(rng, buf, j, gw)
				for {
					err := t.send(gw, buf)
					if code := status.Code(err); code == codes.ResourceExhausted || code == codes.Unavailable {
						refused.Add(1) // overload: a retryable refusal
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if err != nil {
						errMu.Lock()
						sendErr = errors.Join(sendErr, err)
						errMu.Unlock()
					}
					break
				}
			}
		})
	}
	cpu0 := t.cpu(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(t.templates[0])))
	j := 0
	for b.Loop() {
		jobs <- j
		j++
	}
	close(jobs)
	wg.Wait()
	elapsed := b.Elapsed()
	cpu := t.cpu(b) - cpu0
	if sendErr != nil {
		b.Fatalf("sends failed: %v", sendErr)
	}
	spans := float64(b.N * benchTracesPerRequest * benchSpansPerTrace)
	b.ReportMetric(spans/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(cpu.Microseconds())/spans, "gw-cpu-µs/span")
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
}

// request writes into buf template j's bytes with fresh trace IDs, each
// owned by gateway gw.
func (t *benchTier) request(rng *rand.Rand, buf []byte, j, gw int) []byte {
	k := j % len(t.templates)
	buf = append(buf[:0], t.templates[k]...)
	offsets := t.idOffsets[k]
	var id [16]byte
	for i, off := range offsets {
		if i%benchSpansPerTrace == 0 {
			for {
				putRandom(rng, id[:])
				if t.ring.Members()[t.ring.Owner(ring.Hash(id))] == t.c.addr(t.c.hosts[gw]) {
					break
				}
			}
		}
		copy(buf[off:], id[:])
	}
	return buf
}

// send exports an encoded request to gateway gw as it is.
func (t *benchTier) send(gw int, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp []byte
	return t.conns[gw].Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		&body, &resp, grpc.ForceCodecV2(bytesCodec{}))
}

// cpu is the gateways' user+system CPU time so far.
func (t *benchTier) cpu(b *testing.B) time.Duration {
	var total time.Duration
	for _, p := range t.procs {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			b.Fatalf("read the CPU time of %s: %v", p.name, err)
		}
		// Fields after the command name (which may hold spaces): utime and
		// stime are the 14th and 15th fields, in clock ticks of 10 ms.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		for _, f := range fields[11:13] {
			ticks, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				b.Fatalf("parse /proc/%d/stat: %v", p.cmd.Process.Pid, err)
			}
			total += time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return total
}

// bytesCodec sends a *[]byte that is already an encoded message and
// receives the answer's bytes.
type bytesCodec struct{}

var _ encoding.CodecV2 = bytesCodec{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (bytesCodec) Name() string { return "proto" }
