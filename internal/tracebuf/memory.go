package tracebuf

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"unsafe"

	"github.com/tailsift/tailsift/internal/wire"
)

// queueWeight is what a queued request holds, counted against
// buffer.max_queued_bytes: its buffer (a pooled receive buffer may be up to
// twice the request's size) and the scan of its spans and scopes (136 bytes
// a span on 64-bit platforms, a quarter of a typical span's wire size).
func queueWeight(buf []byte, batch *wire.Batch) int64 {
	return QueueWeight(cap(buf), cap(batch.Spans), cap(batch.Scopes))
}

// QueueWeight is what a request of size bytes holding spans spans in
// scopes scope groups weighs against buffer.max_queued_bytes once scanned
// (at least: a request Ingest gets in a larger buffer weighs that
// buffer's capacity).
func QueueWeight(size, spans, scopes int) int64 {
	return int64(size) +
		int64(spans)*int64(unsafe.Sizeof(wire.Span{})) +
		int64(scopes)*int64(unsafe.Sizeof(wire.Scope{}))
}

// fitScan is req's queueWeight after letting go of the scan capacity an
// earlier, larger request left in the pooled request (up to maxPooledSpans
// spans, 2.2 MB), when that capacity is what puts the weight over max: the
// scan is then copied to its length, so that a small request is not
// refused as too large for what it does not hold.
func fitScan(buf []byte, batch *wire.Batch, max int64) int64 {
	w := queueWeight(buf, batch)
	if w <= max {
		return w
	}
	need := int64(cap(buf)) +
		int64(len(batch.Spans))*int64(unsafe.Sizeof(wire.Span{})) +
		int64(len(batch.Scopes))*int64(unsafe.Sizeof(wire.Scope{}))
	if need > max {
		return w
	}
	batch.Spans, batch.Scopes = slices.Clone(batch.Spans), slices.Clone(batch.Scopes)
	return queueWeight(buf, batch)
}

// traceOverhead is what a buffered trace takes on the heap besides its
// records, counted against buffer.max_bytes: its struct, rounded up to a
// multiple of 64 bytes (at or above the allocator's size class for a struct
// of 256 to 768 bytes), and its entry in the shard's trace map.
// TestTraceOverheadCoversHeap measures it.
const traceOverhead = int64((unsafe.Sizeof(trace{})+63)&^63) + traceMapEntry

// traceMapEntry is what an entry of a shard's map[[16]byte]*trace takes:
// key, value and control byte, in a table at most 7/8 full that may have
// just doubled (7/16 full).
const traceMapEntry = (16 + 8 + 1) * 16 / 7

// segmentRefBytes is what a trace's list of later segments takes a segment
// (a slice header on the heap); appendRecord counts it as the list grows.
const segmentRefBytes = int64(unsafe.Sizeof([]byte(nil)))

// maxPooledSpans bounds the scan a pooled request keeps for reuse: a request
// that once held a huge batch does not keep its scan in the pool.
const maxPooledSpans = 16 << 10

// trimScan empties a request's scan for reuse, letting a huge one go.
func trimScan(batch *wire.Batch) {
	batch.Reset()
	if cap(batch.Spans) > maxPooledSpans {
		*batch = wire.Batch{SkipInvalid: batch.SkipInvalid}
	}
}

// The Go runtime's soft memory limit (debug.SetMemoryLimit), derived from
// the budgets of the running buffers when the user has not set GOMEMLIMIT.
// Span records live off the Go heap, in the arenas, within buffer.max_bytes;
// what a buffer holds on the heap is its queue (buffer.max_queued_bytes),
// the kept decisions it learns, and the garbage the collector leaves between
// cycles. With GOGC=100 that garbage may reach the size of the live heap,
// which took RSS to twice the budget under overload. The limit makes the
// collector run early instead: the process's Go memory stays within what it
// held when the first buffer started, plus, per buffer, max_queued_bytes and
// an eighth of both budgets as headroom (16 MiB at least, so that a small
// budget does not make the collector run all the time), so that RSS, arenas
// included, stays within 1.2 times the budgets over idle. The limit is never
// below twice the Go memory at start, where GOGC=100 lets that memory grow
// anyway: in a process whose other heap is larger than the buffers'
// allowance, a tighter limit made the collector run for memory that is not
// the buffers' (BenchmarkIngestOverBudget, whose pre-encoded requests are
// such a heap, ran twice the collections and 1.1-1.2 times the CPU).
//
// Below the limit the collector runs when the heap has grown by GOGC percent
// of what the last one left live. Where the user has not set GOGC either,
// the buffers run with gcPercent instead of 100 while the limit is in place:
// the limit, not GOGC, is what holds RSS within the budget, and with GOGC=100
// a small live heap made the collector run too often (see gcPercent).
type memLimiter struct {
	mu      sync.Mutex
	getenv  func(string) string
	set     func(int64) int64
	setGC   func(int) int // debug.SetGCPercent
	goBytes func() int64
	base    int64 // Go memory when the first buffer started; 0 when none runs
	allow   int64 // the sum of the running buffers' allowances
	prevGC  int   // GOGC before the first buffer started; 0: left alone
	running int
}

var memLimit = &memLimiter{getenv: os.Getenv, set: debug.SetMemoryLimit, setGC: debug.SetGCPercent, goBytes: goMemory}

// gcPercent is the GOGC the buffers set while they set the memory limit.
// The processor path allocates about 3 KB on the heap per span (the otlp
// receiver's pdata, its encoding for the buffer, the kept traces' pdata,
// gRPC buffers) and keeps little of it: at 16 000 spans/s 13 MiB was live
// after each collection, so with GOGC=100 the collector ran 125 times in a
// 33 s run, 1.5 times as often as when ristretto's tables (allocated at
// start) made the live heap 7 MiB larger, for the same bytes allocated: the
// GC's own CPU went up by about 0.5 µs a span (5 %), and the processor path
// took 3-11 % more CPU a span, the difference in mallocgc and the GC's
// marking (benchmarks/README.md, "GC pacing"). At 150 it runs as often as it
// did then (78-82 cycles against 80-84) for 7-15 MB more RSS than at 100,
// 4-11 MB less than then; at 200 it ran 57 times, with RSS back where it was.
// Under load the memory limit, not GOGC, caps the heap near the budget.
const gcPercent = 150

// goMemory is the memory the Go runtime holds from the OS.
func goMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
}

// minHeadroom is the least headroom heapAllowance gives the collector.
const minHeadroom = 16 << 20

// heapAllowance is what a buffer with cfg may add to the Go runtime's memory.
func heapAllowance(cfg Config) int64 {
	queued, records := int64(cfg.Buffer.MaxQueuedBytes), int64(cfg.Buffer.MaxBytes)
	return queued + max((queued+records)/8, minHeadroom)
}

// add counts a starting buffer's allowance and sets the limit; it does
// nothing when GOMEMLIMIT is set.
func (m *memLimiter) add(cfg Config) {
	if m.getenv("GOMEMLIMIT") != "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running == 0 {
		m.base = m.goBytes()
		if m.getenv("GOGC") == "" {
			m.prevGC = m.setGC(gcPercent)
		}
	}
	m.running++
	m.allow += heapAllowance(cfg)
	m.set(m.limit())
}

// limit is the soft memory limit for the running buffers.
func (m *memLimiter) limit() int64 { return m.base + max(m.allow, m.base) }

// remove takes a stopped buffer's allowance back, and lifts the limit when
// no buffer runs.
func (m *memLimiter) remove(cfg Config) {
	if m.getenv("GOMEMLIMIT") != "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running--
	m.allow -= heapAllowance(cfg)
	if m.running == 0 {
		m.set(math.MaxInt64)
		if m.prevGC != 0 {
			m.setGC(m.prevGC)
			m.prevGC = 0
		}
		return
	}
	m.set(m.limit())
}
