package tracebuf

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/internal/wire"
	"github.com/tailsift/tailsift/sampling"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type collector struct {
	mu    sync.Mutex
	spans map[[16]byte]int
}

func (c *collector) emit(_ context.Context, td ptrace.Traces) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				c.spans[ss.At(k).TraceID()]++
			}
		}
	}
	return nil
}

func (c *collector) count(id [16]byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans[id]
}

func tid(n uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], n*0x9E3779B97F4A7C15+3)
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

// encode builds an encoded request with one span per trace number.
func encode(t *testing.T, traces []uint64, spanNo uint64, status ptrace.StatusCode) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for _, n := range traces {
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid(n))
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], spanNo)
		sp.SetSpanID(sid)
		if spanNo != 1 {
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
		}
		sp.Status().SetCode(status)
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

// encodePairs builds a request with the given span numbers of every trace,
// trace by trace, under a resource of its own.
func encodePairs(t *testing.T, traces, spans []uint64) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "other")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for _, n := range traces {
		for _, k := range spans {
			sp := ss.AppendEmpty()
			sp.SetTraceID(tid(n))
			var sid [8]byte
			binary.BigEndian.PutUint64(sid[:], k)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf
}

func testBufferConfig() Config {
	return Config{
		Shards:        1,
		Completion:    CompletionConfig{Quiet: time.Second, MaxWait: 10 * time.Second, MaxSpans: 1},
		Buffer:        BufferConfig{MaxBytes: 64 << 20, MaxQueuedBytes: 16 << 20},
		DecisionCache: DecisionCacheConfig{KeptMaxBytes: 64 << 10, DroppedMaxEntries: 1000},
		Output:        OutputConfig{BatchTimeout: 50 * time.Millisecond, BatchMaxSpans: 8192, ShutdownTimeout: 10 * time.Second},
		Policies: []sampling.PolicyConfig{
			sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		},
	}
}

// TestKeptDecisionsUnderConcurrentSets: while two shards keep thousands of
// traces, 4 goroutines set and read other decisions in the shared kept cache
// (as the store's retroactive keeps and the rescues do), and the late spans
// of every kept trace are still forwarded: the cache never refuses a Set,
// and holds the most recent decisions up to its capacity.
func TestKeptDecisionsUnderConcurrentSets(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Shards = 2
	cfg.DecisionCache.KeptMaxBytes = 1 << 20
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0))})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()

	perGen := b.kept.stripes[0].perGen * keptStripes
	const kept, churn = 3000, 4 * 500
	require.Less(t, kept+churn, perGen*3/4, "all within one generation's capacity")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range uint64(4) {
		wg.Go(func() {
			for k := uint64(1); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				key := (k%500*0x9E3779B97F4A7C15 + g) | 1<<63
				if _, ok := b.kept.Get(key); !ok {
					b.kept.Set(key, keptValue{check: key})
				}
			}
		})
	}
	traces := make([]uint64, kept)
	for i := range traces {
		traces[i] = uint64(i + 1)
	}
	// max_spans is 1: each error span is decided, and kept, at once.
	for i := 0; i < kept; i += 100 {
		require.NoError(t, b.Ingest(ctx, encode(t, traces[i:i+100], 1, ptrace.StatusCodeError)))
	}
	require.NoError(t, b.Sync(ctx))
	for i := 0; i < kept; i += 100 {
		require.NoError(t, b.Ingest(ctx, encode(t, traces[i:i+100], 2, ptrace.StatusCodeOk)))
	}
	require.NoError(t, b.Sync(ctx))
	close(stop)
	wg.Wait()
	for _, n := range traces {
		assert.Equal(t, 2, out.count(tid(n)), "late span of kept trace %d lost", n)
	}
}

// TestKeptDecisionOutlivesRing: the shard's ring, which lists its kept
// decisions for a handover, is smaller than the kept cache, which answers
// for the decisions that have left the ring.
func TestKeptDecisionOutlivesRing(t *testing.T) {
	cfg := testBufferConfig()
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clocktest.NewFake(time.Unix(0, 0))})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()
	ring := b.shards[0].decided.ring.size
	traces := make([]uint64, ring+100)
	for i := range traces {
		traces[i] = uint64(i + 1)
	}
	require.NoError(t, b.Ingest(ctx, encode(t, traces, 1, ptrace.StatusCodeError)))
	require.NoError(t, b.Sync(ctx))
	require.Len(t, b.shards[0].decided.ring.ids, ring, "the ring is full")
	// The first 100 have left the ring.
	require.NoError(t, b.Ingest(ctx, encode(t, traces[:100], 2, ptrace.StatusCodeOk)))
	require.NoError(t, b.Sync(ctx))
	for _, n := range traces[:100] {
		assert.Equal(t, 2, out.count(tid(n)), "late span of kept trace %d lost", n)
	}
}

// The kept cache holds the most recent decisions: every one of the last
// capacity/2 set (a generation of each stripe) is found with its value, and
// older ones go as newer ones come. Its tables grow with what it holds:
// a few decisions take a few KiB, not the cache's capacity, and a full cache
// stays within its bytes.
func TestKeptCacheHoldsTheMostRecent(t *testing.T) {
	const maxBytes = 1 << 20
	c := newKeptCache(maxBytes)
	key := func(i uint64) uint64 { return i*0x9E3779B97F4A7C15 + 1 }
	for i := range uint64(100) {
		c.Set(key(i), keptValue{check: i, mark: keptMark{th: i}})
	}
	assert.LessOrEqual(t, c.bytes(), keptStripes*minKeptTable*keptSlotBytes, "100 decisions take the smallest tables")
	v, ok := c.Get(key(7))
	require.True(t, ok)
	assert.Equal(t, keptValue{check: 7, mark: keptMark{th: 7}}, v)
	c.Set(key(7), keptValue{check: 7, mark: keptMark{th: 70}})
	v, _ = c.Get(key(7))
	assert.Equal(t, uint64(70), v.mark.th, "a Set replaces what the hash held")

	perGen := c.stripes[0].perGen
	n := uint64(10 * perGen * keptStripes)
	for i := range n {
		c.Set(key(i), keptValue{check: i})
	}
	assert.LessOrEqual(t, c.bytes(), maxBytes)
	recent := uint64(perGen * keptStripes / 2) // well within a generation of each stripe
	for i := n - recent; i < n; i++ {
		v, ok := c.Get(key(i))
		require.True(t, ok, "decision %d of the last %d", n-i, recent)
		require.Equal(t, i, v.check)
	}
	_, ok = c.Get(key(0))
	assert.False(t, ok, "the oldest went")
}

func TestDroppedFilter(t *testing.T) {
	f := newDropFilter(1000, 0)
	for h := uint64(1); h <= 500; h++ {
		f.add(h*0x9E3779B97F4A7C15, 0)
	}
	for h := uint64(1); h <= 500; h++ {
		require.True(t, f.contains(h*0x9E3779B97F4A7C15))
	}
	assert.False(t, f.contains(12345))
	// Past its capacity the oldest generation goes, the newest stays.
	for h := uint64(501); h <= 1600; h++ {
		f.add(h*0x9E3779B97F4A7C15, 0)
	}
	assert.False(t, f.contains(1*0x9E3779B97F4A7C15))
	for h := uint64(1100); h <= 1600; h++ {
		require.True(t, f.contains(h*0x9E3779B97F4A7C15), h)
	}
	assert.False(t, newDropFilter(0, 0).contains(1), "disabled filter")
}

// TestDroppedFilterReAdd: an ID the current generation holds is not added
// twice; one only the older generation holds is added again, and then
// outlives that generation.
func TestDroppedFilterReAdd(t *testing.T) {
	mix := func(h uint64) uint64 { return h * 0x9E3779B97F4A7C15 }
	id := mix(7)
	f := newDropFilter(16, 0) // 8 IDs a generation
	f.add(id, 0)
	f.add(id, 0)
	assert.Equal(t, 1, f.counts[f.cur], "held by the current generation: not added again")
	for h := uint64(100); h < 107; h++ {
		f.add(mix(h), 0)
	}
	f.add(mix(200), 0) // the ninth ID: a new generation
	require.Equal(t, 1, f.counts[f.cur])
	require.True(t, f.contains(id), "in the older generation")
	f.add(id, 0)
	assert.Equal(t, 2, f.counts[f.cur], "added to the current generation")
	for h := uint64(300); h < 306; h++ {
		f.add(mix(h), 0)
	}
	f.add(mix(400), 0) // rotates: the first generation goes
	assert.False(t, f.contains(mix(100)), "the first generation is gone")
	assert.True(t, f.contains(id), "re-added: it outlives the generation it came from")
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"512MiB": 512 << 20, "16MB": 16e6, "1GiB": 1 << 30, "100": 100, "1.5KiB": 1536, "2 KB": 2000} {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MiB", "-1MiB", "12XB", "lots"} {
		_, err := ParseByteSize(in)
		assert.Error(t, err, in)
	}
}

// TestAccountingReturnsToZero: after every trace is decided, nothing stays
// counted, whatever mix of valid, invalid, late and max_spans traffic came.
func TestAccountingReturnsToZero(t *testing.T) {
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 3
	clk := clocktest.NewFake(time.Unix(0, 0))
	out := &collector{spans: map[[16]byte]int{}}
	b, err := New(cfg, out.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	ctx := context.Background()
	bad := ptrace.NewTraces()
	bad.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetSpanID(pcommon.SpanID{1})
	var m ptrace.ProtoMarshaler
	badBuf, err := m.MarshalTraces(bad)
	require.NoError(t, err)
	for round := uint64(0); round < 20; round++ {
		traces := []uint64{round*10 + 1, round*10 + 2, round*10 + 3}
		require.NoError(t, b.Ingest(ctx, encode(t, traces, 2, ptrace.StatusCodeError)))
		// A request of only bad IDs after a valid one (regression: pooled
		// requests once released a stale semaphore weight here).
		require.Error(t, b.Ingest(ctx, badBuf))
		// Spans 3 to 6 of each trace in one message, under a resource of its
		// own: max_spans decides mid-message and the rest goes out as late
		// spans, so the resource's group ends up with no reference.
		require.NoError(t, b.Ingest(ctx, encodePairs(t, traces, []uint64{3, 4, 5, 6})))
	}
	clk.Advance(time.Minute)
	require.NoError(t, b.Sync(ctx))
	s := b.shards[0]
	assert.Zero(t, len(s.traces))
	assert.Zero(t, s.usage.used, "trace bytes still counted")
	assert.Zero(t, s.usage.groups.bytes, "group bytes still counted")
	assert.Empty(t, s.usage.groups.byHash, "groups still interned")
	for n := uint64(1); n <= 193; n += 10 {
		assert.Equal(t, 5, out.count(tid(n)), "trace %d", n)
	}
}

// calls records each request the buffer hands on.
type calls struct {
	mu    sync.Mutex
	sizes []int // spans per request
	spans map[[16]byte]int
}

func (c *calls) emit(_ context.Context, td ptrace.Traces) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes = append(c.sizes, td.SpanCount())
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				c.spans[sp.TraceID()]++
			}
		}
	}
	return nil
}

func (c *calls) snapshot() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.sizes...)
}

func TestOutputBatching(t *testing.T) {
	ctx := context.Background()
	traces := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	start := func(t *testing.T, out OutputConfig) (*Buffer, *clocktest.Fake, *calls) {
		cfg := testBufferConfig()
		cfg.Completion.MaxSpans = 100
		out.ShutdownTimeout = cfg.Output.ShutdownTimeout
		cfg.Output = out
		clk := clocktest.NewFake(time.Unix(0, 0))
		c := &calls{spans: map[[16]byte]int{}}
		b, err := New(cfg, c.emit, Settings{Clock: clk})
		require.NoError(t, err)
		b.Start()
		t.Cleanup(func() { assert.NoError(t, b.Shutdown(ctx)) })
		// Ten error traces (kept) and ten others (dropped), all roots.
		require.NoError(t, b.Ingest(ctx, encode(t, traces, 1, ptrace.StatusCodeError)))
		require.NoError(t, b.Ingest(ctx, encode(t, []uint64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 1, ptrace.StatusCodeOk)))
		require.NoError(t, b.Sync(ctx))
		return b, clk, c
	}
	t.Run("kept traces decided together leave in one request", func(t *testing.T) {
		b, clk, c := start(t, OutputConfig{BatchTimeout: 50 * time.Millisecond, BatchMaxSpans: 8192})
		clk.Advance(time.Second) // quiet
		require.NoError(t, b.Sync(ctx))
		assert.Equal(t, []int{10}, c.snapshot())
	})
	t.Run("the batch leaves within batch_timeout without a Sync", func(t *testing.T) {
		_, clk, c := start(t, OutputConfig{BatchTimeout: 50 * time.Millisecond, BatchMaxSpans: 8192})
		// Quiet: decided at a timer wake-up, handed on at it (the batch
		// would be due by the next one), or at the latest batch_timeout
		// later.
		clk.Advance(time.Second)
		var waited time.Duration
		require.Eventually(t, func() bool {
			if len(c.snapshot()) > 0 {
				return true
			}
			clk.Advance(10 * time.Millisecond)
			waited += 10 * time.Millisecond
			return false
		}, 10*time.Second, time.Millisecond)
		assert.Equal(t, []int{10}, c.snapshot())
		assert.LessOrEqual(t, waited, 50*time.Millisecond, "handed on after batch_timeout")
	})
	t.Run("batch_max_spans splits the output", func(t *testing.T) {
		b, clk, c := start(t, OutputConfig{BatchTimeout: time.Second, BatchMaxSpans: 4})
		clk.Advance(time.Second)
		require.NoError(t, b.Sync(ctx))
		assert.Equal(t, []int{4, 4, 2}, c.snapshot())
	})
	t.Run("batch_timeout 0 hands each kept trace on at once", func(t *testing.T) {
		b, clk, c := start(t, OutputConfig{BatchTimeout: 0, BatchMaxSpans: 8192})
		clk.Advance(time.Second)
		require.NoError(t, b.Sync(ctx))
		assert.Equal(t, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, c.snapshot())
	})
	t.Run("shutdown flushes the batch", func(t *testing.T) {
		b, _, c := start(t, OutputConfig{BatchTimeout: time.Minute, BatchMaxSpans: 8192})
		require.NoError(t, b.Shutdown(ctx))
		assert.Equal(t, []int{10}, c.snapshot())
		for _, n := range traces {
			assert.Equal(t, 1, c.spans[tid(n)], "trace %d", n)
		}
	})
}

// A span pdata would refuse at export is refused at intake (Scan checks
// every field pdata decodes), so it cannot cost the other kept traces of
// the batch.
func TestOutputBatchSurvivesAnUndecodableSpan(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	clk := clocktest.NewFake(time.Unix(0, 0))
	c := &calls{spans: map[[16]byte]int{}}
	b, err := New(cfg, c.emit, Settings{Clock: clk})
	require.NoError(t, err)
	b.Start()
	defer func() { assert.NoError(t, b.Shutdown(ctx)) }()

	require.NoError(t, b.Ingest(ctx, encode(t, []uint64{1, 2}, 1, ptrace.StatusCodeError)))
	// Trace 3's error span carries an attribute whose value has a bad
	// wire type (a fixed32 string_value), which pdata refuses.
	bad := encode(t, []uint64{3}, 1, ptrace.StatusCodeError)
	bad = injectBadAttribute(t, bad)
	var invalid *InvalidError
	require.ErrorAs(t, b.Ingest(ctx, bad), &invalid)
	require.NoError(t, b.Sync(ctx)) // taken in before the clock moves
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	assert.Equal(t, 1, c.spans[tid(1)])
	assert.Equal(t, 1, c.spans[tid(2)])
	assert.Zero(t, c.spans[tid(3)])
}

// injectBadAttribute appends to every span of req an attribute whose
// AnyValue.string_value has the fixed32 wire type.
func injectBadAttribute(t *testing.T, req []byte) []byte {
	t.Helper()
	var b wire.Batch
	require.NoError(t, wire.Scan(req, &b))
	anyValue := protowire.AppendFixed32(protowire.AppendTag(nil, 1, protowire.Fixed32Type), 7)
	kv := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("k"))
	kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), anyValue)
	var out []byte
	for i := range b.Scopes {
		var spans []byte
		var ends []int
		for _, sp := range b.Spans {
			if int(sp.Scope) != i {
				continue
			}
			spans = append(spans, sp.Raw...)
			spans = protowire.AppendBytes(protowire.AppendTag(spans, 9, protowire.BytesType), kv)
			ends = append(ends, len(spans))
		}
		out = wire.AppendResourceSpans(out, &b.Scopes[i], spans, ends)
	}
	var u ptrace.ProtoUnmarshaler
	_, err := u.UnmarshalTraces(out)
	require.Error(t, err, "pdata must refuse the injected attribute")
	return out
}

// IngestOwned calls done exactly once, whatever becomes of the request, and
// only when the shards are through with its bytes.
func TestIngestOwnedCallsDoneOnce(t *testing.T) {
	ctx := context.Background()
	cfg := testBufferConfig()
	cfg.Completion.MaxSpans = 100
	cfg.Shards = 2
	clk := clocktest.NewFake(time.Unix(0, 0))
	c := &calls{spans: map[[16]byte]int{}}
	b, err := New(cfg, c.emit, Settings{Clock: clk})
	require.NoError(t, err)

	var mu sync.Mutex
	dones := map[string]int{}
	done := func(name string, buf []byte) func() {
		return func() {
			mu.Lock()
			defer mu.Unlock()
			dones[name]++
			clear(buf) // the buffer must not read it any more
		}
	}
	ingest := func(name string, buf []byte) error {
		_, err := b.IngestOwned(ctx, buf, done(name, buf))
		return err
	}
	require.ErrorIs(t, ingest("before start", encode(t, []uint64{1}, 1, ptrace.StatusCodeError)), ErrShutdown)
	b.Start()
	require.NoError(t, ingest("valid", encode(t, []uint64{1, 2, 3, 4}, 1, ptrace.StatusCodeError)))
	require.Error(t, ingest("malformed", []byte{0x0a, 0xff}))
	require.NoError(t, b.Sync(ctx))
	clk.Advance(time.Second)
	require.NoError(t, b.Sync(ctx))
	for _, n := range []uint64{1, 2, 3, 4} {
		assert.Equal(t, 1, c.spans[tid(n)], "trace %d kept intact although its request was cleared", n)
	}
	require.NoError(t, b.Shutdown(ctx))
	require.ErrorIs(t, ingest("after shutdown", encode(t, []uint64{5}, 1, ptrace.StatusCodeError)), ErrShutdown)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"before start": 1, "valid": 1, "malformed": 1, "after shutdown": 1}, dones)
}

// The dropped filter's tables grow with what they hold, and a generation
// older than maxAge is retired, so an idle filter lets its tables go; an ID
// is remembered for maxAge at least.
func TestDroppedFilterGrowsAndAges(t *testing.T) {
	const maxAge = 10
	f := newDropFilter(100_000, maxAge)
	for h := uint64(1); h <= 100; h++ {
		f.add(h*0x9E3779B97F4A7C15, 100)
	}
	assert.Len(t, f.gens[f.cur], minDropTable, "100 IDs take the smallest table, not the full %d slots", f.maxSlots())
	for h := uint64(101); h <= 20_000; h++ {
		f.add(h*0x9E3779B97F4A7C15, 100)
	}
	assert.Len(t, f.gens[f.cur], 32768, "doubled while it filled, at most 3/4 full")
	for h := uint64(1); h <= 20_000; h++ {
		require.True(t, f.contains(h*0x9E3779B97F4A7C15), h)
	}

	n := uint64(20_000)
	last := n * 0x9E3779B97F4A7C15
	assert.Zero(t, f.expire(100+maxAge-1), "younger than maxAge")
	assert.True(t, f.aging())
	assert.Equal(t, 8*32768, f.expire(100+maxAge), "every ID is maxAge old: let go")
	assert.False(t, f.contains(last))
	assert.True(t, f.empty())
	assert.False(t, f.aging())
	assert.Zero(t, f.expire(1000), "nothing to let go")

	// A generation that took an ID lately is retired, not let go, when it
	// is maxAge old; it goes maxAge after its newest ID.
	f.add(1, 500)
	f.add(2, 500+maxAge-1)
	assert.Zero(t, f.expire(500+maxAge), "retired")
	assert.True(t, f.contains(1) && f.contains(2), "held in the older generation")
	assert.Zero(t, f.expire(500+2*maxAge-2))
	assert.Equal(t, 8*minDropTable, f.expire(500+2*maxAge-1), "maxAge after its newest ID")
	assert.True(t, f.empty())

	// An add while the filter is old retires the old generation first.
	f.add(1, 2000)
	assert.Zero(t, f.expire(2000+maxAge-1))
	assert.True(t, f.contains(1))
	assert.False(t, newDropFilter(1000, 0).aging(), "no age: never expires")
}
