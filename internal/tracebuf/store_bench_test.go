package tracebuf

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/store"
	"github.com/tailsift/tailsift/internal/store/storetest"
)

// traceIDOffsets returns the offset of each span's trace ID in req: the
// workload encodes trace_id first in each Span (tag 0x0a, length 16).
func traceIDOffsets(req []byte) []int {
	var offs []int
	for i := 2; i+18 <= len(req); i++ {
		if req[i] == 0x0a && req[i+1] == 0x10 && req[i-2] == 0x12 {
			offs = append(offs, i+2)
		}
	}
	return offs
}

// renumber xors bytes 14 and 15 of the trace IDs at offs in req with
// round, so that a replayed recording brings new traces.
func renumber(req []byte, offs []int, round int) {
	for _, o := range offs {
		req[o+15] ^= byte(round)
		req[o+14] ^= byte(round >> 8)
	}
}

// renumbered returns a renumbered copy of req.
func renumbered(req []byte, round int) []byte {
	out := append([]byte(nil), req...)
	renumber(out, traceIDOffsets(out), round)
	return out
}

// replay ingests the recorded workload w into buf in a b.Loop, as the
// receiver does (IngestOwned), renumbering the traces each round so that
// every round brings new ones, and calls after, when not nil, after each
// request. It returns the spans ingested.
func replay(ctx context.Context, b *testing.B, buf *Buffer, w *storetest.Workload, after func()) int {
	b.Helper()
	reqs := make([][]byte, len(w.Requests))
	offs := make([][]int, len(w.Requests))
	for k, r := range w.Requests {
		reqs[k] = append([]byte(nil), r...)
		offs[k] = traceIDOffsets(reqs[k])
	}
	spans, i := 0, 0
	for b.Loop() {
		k := i % len(reqs)
		if k == 0 && i > 0 {
			// A new round of traces: renumber once the shards have taken
			// the last round in (they copy what they keep).
			_ = buf.Sync(ctx)
			round := i / len(reqs)
			for k := range reqs {
				renumber(reqs[k], offs[k], round^(round-1))
			}
		}
		if _, err := buf.IngestOwned(ctx, reqs[k], func() {}); err != nil {
			b.Fatal(err)
		}
		spans += w.Spans[k]
		i++
		if after != nil {
			after()
		}
	}
	return spans
}

// BenchmarkIngestStore measures the fast path's ingest (IngestOwned, the
// receiver's call, pooled memory: the store copies) of the benchmark
// workload with the store off and on, reporting the CPU the whole process
// used per span, the store's writer included. With the store on, the loop
// waits while the store's queue holds more than 16 MiB, so that it records
// everything.
//
//	go test -run='^$' -bench=IngestStore -benchtime=20000x -count=3 ./internal/tracebuf/
func BenchmarkIngestStore(b *testing.B) {
	w := storetest.Record(b, 20_000, 5*time.Second)
	for _, comp := range []string{"off", store.CompressionS2, store.CompressionZstd} {
		b.Run("store="+comp, func(b *testing.B) {
			b2, st := storeBenchBuffer(b, comp)
			ctx := context.Background()
			b.ReportAllocs()
			cpu := storetest.CPU()
			spans := replay(ctx, b, b2, w, func() {
				for st != nil && st.Queued() > 16<<20 {
					runtime.Gosched()
				}
			})
			_ = b2.Sync(ctx)
			_ = b2.Shutdown(ctx)
			b2.CloseStore()
			if st != nil {
				_ = st.Close()
			}
			cpu = storetest.CPU() - cpu
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(spans), "cpu-ns/span")
			if st != nil {
				b.ReportMetric(float64(st.Stats().Dropped.Load()), "dropped-records")
			}
		})
	}
}

// storeBenchBuffer starts a one-shard buffer into a consumer that does
// nothing, with a store of compression comp attached ("off": no store).
func storeBenchBuffer(b *testing.B, comp string) (*Buffer, *store.Store) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Shards = 1
	// Learning off: with it, a buffer with a store may decide traces at a
	// shorter learned quiet than one without (completion.safe), and the
	// comparison would be of waits, not of the store's work.
	cfg.Completion.Learn.Enabled = false
	buf, err := New(cfg, func(context.Context, ptrace.Traces) error { return nil }, Settings{})
	if err != nil {
		b.Fatal(err)
	}
	var st *store.Store
	if comp != "off" {
		if st, err = store.Open(store.Options{Dir: b.TempDir(), Retention: time.Hour, MaxBytes: 1 << 40, Compression: comp}); err != nil {
			b.Fatal(err)
		}
		buf.AttachStore(st)
	}
	buf.Start()
	return buf, st
}

// BenchmarkRestart measures a restart with a full buffer: the store holds
// about buffer.max_bytes (512 MiB) of spans of undecided traces, as a kill
// -9 leaves it; the benchmark opens the store (reading its segments and
// rebuilding the index), attaches a buffer, starts it and takes the spans
// in again, and reports the seconds that took (wall and CPU).
//
//	go test -run='^$' -bench=Restart -benchtime=1x ./internal/tracebuf/
//
// TAILSIFT_RESTART_COMPRESSION sets the store's compression (default zstd).
func BenchmarkRestart(b *testing.B) {
	const fill = 512 << 20
	w := storetest.Record(b, 20_000, 5*time.Second)
	dir := b.TempDir()
	comp := os.Getenv("TAILSIFT_RESTART_COMPRESSION")
	st, err := store.Open(store.Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 40, Compression: comp})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	bytes, spans := 0, 0
	for round := 0; bytes < fill; round++ {
		for k, req := range w.Requests {
			if bytes >= fill {
				break
			}
			r := renumbered(req, round)
			ids := make([][16]byte, len(w.IDs[k]))
			for j, id := range w.IDs[k] {
				id[15] ^= byte(round)
				id[14] ^= byte(round >> 8)
				ids[j] = id
			}
			for !st.AppendSpansOwned(ids, r) {
				_ = st.Sync(ctx)
			}
			bytes += len(r)
			spans += w.Spans[k]
		}
	}
	if err := st.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Buffer.MaxBytes = 1 << 30 // the replayed 512 MiB of wire bytes, not decided early for memory
	var took, cpu time.Duration
	var replayed int
	for b.Loop() {
		start, cpu0 := time.Now(), storetest.CPU()
		st, err := store.Open(store.Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		buf, err := New(cfg, func(context.Context, ptrace.Traces) error { return nil }, Settings{})
		if err != nil {
			b.Fatal(err)
		}
		buf.AttachStore(st)
		buf.Start()
		if replayed, err = buf.Replay(ctx); err != nil {
			b.Fatal(err)
		}
		if err := buf.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		took, cpu = time.Since(start), storetest.CPU()-cpu0
		b.StopTimer()
		_ = buf.Shutdown(ctx)
		buf.CloseStore()
		_ = st.Close()
		b.StartTimer()
	}
	if replayed != spans {
		b.Fatalf("replayed %d spans of %d", replayed, spans)
	}
	b.ReportMetric(took.Seconds(), "restart-s")
	// CPU time, all goroutines: what the restart costs on a loaded machine,
	// where restart-s also counts the time waiting for a core.
	b.ReportMetric(cpu.Seconds(), "restart-cpu-s")
	b.ReportMetric(float64(bytes)/(1<<20), "stored-MiB")
	b.ReportMetric(float64(spans), "spans")
}
