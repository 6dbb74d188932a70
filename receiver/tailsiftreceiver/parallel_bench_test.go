package tailsiftreceiver

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/store/storetest"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/internal/tracebuf/tracebuftest"
	"github.com/tailsift/tailsift/internal/wire"
	wl "github.com/tailsift/tailsift/internal/workload"
)

// BenchmarkParallelIngest is the in-process evidence for multi-core
// scaling: GOMAXPROCS senders hand the benchmark workload's requests
// straight to the receiver's Export handler (no gRPC: the client would share
// the cores) of a receiver with GOMAXPROCS shards, retrying refusals, so the
// loop runs at the receiver's saturation throughput (scan, routing and the
// shards' work). Run with -cpu 1,2: the ns/span ratio of the two is the
// 2-core vs 1-core scaling. cpu-ns/span is the process's CPU per span (the
// cores it kept busy: cpu-ns/span ÷ ns/span), faults/span its minor page
// faults per span, kept/span the spans forwarded by the end of the run per
// span sent.
//
// The recording holds 480 000 spans; 20 000 requests go over it 15 times.
// ids=replayed sends it as recorded: from the second pass on, nine spans in
// ten belong to traces the buffer has already decided, and take the cheap
// path of late spans of dropped traces. ids=fresh gives every pass its own
// trace IDs (each sender copies the request into a pooled buffer and changes
// 4 bytes of every trace ID), so every span is ingested as new.
//
// Give both sides the same number of iterations (each run starts a fresh
// receiver, whose start and final decisions weigh more in a short run), and
// alternate their order:
//
//	go test -c -o /tmp/recv.test ./receiver/tailsiftreceiver/
//	/tmp/recv.test -test.run '^$' -test.bench ParallelIngest -test.benchtime 20000x -test.cpu 1,2
//	/tmp/recv.test -test.run '^$' -test.bench ParallelIngest -test.benchtime 20000x -test.cpu 2,1
func BenchmarkParallelIngest(b *testing.B) {
	rec := recordShape(b, wl.ShapeBench, 24000)
	fresh := newFreshIDs(b, rec)
	for _, ids := range []string{"fresh", "replayed"} {
		b.Run("ids="+ids, func(b *testing.B) {
			procs := runtime.GOMAXPROCS(0)
			r, _, kept := startBenchReceiver(b, procs)
			ctx := context.Background()
			var next, spans, refused atomic.Int64
			b.ReportAllocs()
			runtime.GC() // the recording's garbage is not the requests' cost
			cpu0, faults0, moved0 := storetest.CPU(), tracebuftest.MinorFaults(), tracebuf.CompactedBytes()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := int(next.Add(1) - 1)
					j := n % len(rec.Requests)
					for {
						req, free := rec.Requests[j], func() {}
						if ids == "fresh" {
							req, free = fresh.request(j, n/len(rec.Requests))
						}
						_, err := r.exportGRPC(ctx, req, free)
						if err == nil {
							break
						}
						if c := status.Code(err); c != codes.Unavailable {
							b.Error(err)
							return
						}
						refused.Add(1)
						time.Sleep(100 * time.Microsecond)
					}
					spans.Add(int64(rec.Spans[j]))
				}
			})
			n := float64(spans.Load())
			// What the shards forwarded by the end of the run, per span
			// sent: the output's work (decoding kept spans) is the
			// same on both sides only if this is.
			b.ReportMetric(float64(kept.Load())/n, "kept/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
			b.ReportMetric(float64(storetest.CPU()-cpu0)/n, "cpu-ns/span")
			b.ReportMetric(float64(tracebuftest.MinorFaults()-faults0)/n, "faults/span")
			// The arenas' compactions: bytes copied per span, and the
			// memory they hold at the end of the run.
			b.ReportMetric(float64(tracebuf.CompactedBytes()-moved0)/n, "compacted-B/span")
			b.ReportMetric(float64(tracebuf.MappedBytes())/(1<<20), "mapped-MiB")
			b.ReportMetric(float64(refused.Load())/float64(b.N), "refusals/req")
			b.ReportMetric(float64(procs), "shards")
		})
	}
}

// freshIDs hands out copies of a recording's requests with the trace IDs of
// each pass over the recording made its own.
type freshIDs struct {
	rec  *wl.Recording
	ids  [][]int // per request, the offset of each span's trace ID
	bufs sync.Pool
}

func newFreshIDs(b *testing.B, rec *wl.Recording) *freshIDs {
	f := &freshIDs{rec: rec, ids: make([][]int, len(rec.Requests))}
	var batch wire.Batch
	for j, req := range rec.Requests {
		batch.Reset()
		require.NoError(b, wire.Scan(req, &batch))
		for k := range batch.Spans {
			sp := &batch.Spans[k]
			// The span's trace_id field: tag 1, length 16, the ID.
			field := append([]byte{0x0a, 16}, sp.TraceID[:]...)
			at := bytes.Index(sp.Raw, field)
			require.GreaterOrEqual(b, at, 0, "request %d span %d: trace ID not found", j, k)
			base := int(uintptr(unsafe.Pointer(unsafe.SliceData(sp.Raw))) - uintptr(unsafe.Pointer(unsafe.SliceData(req))))
			f.ids[j] = append(f.ids[j], base+at+2)
		}
	}
	// The second pass's copy of the first request: the same spans, each
	// with another trace ID.
	req, free := f.request(0, 1)
	var again wire.Batch
	require.NoError(b, wire.Scan(req, &again))
	batch.Reset()
	require.NoError(b, wire.Scan(rec.Requests[0], &batch))
	require.Len(b, again.Spans, len(batch.Spans))
	for k := range again.Spans {
		require.NotEqual(b, batch.Spans[k].TraceID, again.Spans[k].TraceID)
		require.Equal(b, batch.Spans[k].SpanID, again.Spans[k].SpanID)
	}
	free()
	return f
}

// request returns a copy of request j for pass p, and the function that
// takes the copy back once the buffer is done with it.
func (f *freshIDs) request(j, p int) ([]byte, func()) {
	src := f.rec.Requests[j]
	bp, _ := f.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = append((*bp)[:0], src...)
	buf := *bp
	for _, at := range f.ids[j] {
		id := buf[at : at+16]
		binary.LittleEndian.PutUint32(id[8:], binary.LittleEndian.Uint32(id[8:])^uint32(p))
	}
	return buf, func() { f.bufs.Put(bp) }
}
