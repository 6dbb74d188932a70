package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func traceID(n int) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[8:], uint64(n)+1)
	id[0] = 0xab
	return id
}

// request encodes an OTLP request with spans spans for each trace, with
// padding bytes of random attribute so that it does not compress away.
func request(t testing.TB, traces []int, spans, padding int) ([]byte, [][16]byte) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	var ids [][16]byte
	for _, n := range traces {
		id := traceID(n)
		ids = append(ids, id)
		for k := range spans {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID(id))
			sp.SetSpanID(pcommon.SpanID{1, byte(k + 1), byte(n), byte(n >> 8), byte(n >> 16)})
			sp.SetName("GET /cart")
			if padding > 0 {
				pad := make([]byte, padding)
				_, _ = rand.Read(pad)
				sp.Attributes().PutEmptyBytes("pad").FromRaw(pad)
			}
		}
	}
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return buf, ids
}

func openStore(t testing.TB, dir string, modify func(*Options)) *Store {
	t.Helper()
	opts := Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 30}
	if modify != nil {
		modify(&opts)
	}
	s, err := Open(opts)
	require.NoError(t, err)
	return s
}

func spansOf(t testing.TB, tr Trace) int {
	t.Helper()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(tr.Request)
	require.NoError(t, err)
	return td.SpanCount()
}

func TestAppendAndRead(t *testing.T) {
	for _, comp := range []string{CompressionS2, CompressionZstd, CompressionS2Col} {
		s := openStore(t, t.TempDir(), func(o *Options) { o.Compression = comp })
		req1, ids1 := request(t, []int{1, 2}, 3, 0)
		req2, ids2 := request(t, []int{2, 3}, 2, 0)
		require.True(t, s.AppendSpans(ids1, req1))
		require.True(t, s.AppendSpans(ids2, req2))
		require.True(t, s.AppendDecision(traceID(2), Decision{Keep: true, Threshold: 0, Policy: "errors", Reason: "quiet"}))
		require.True(t, s.AppendDelivered(s.BeginDelivery(), [][16]byte{traceID(2)}))
		require.NoError(t, s.Sync(context.Background()))

		tr, err := s.Trace(traceID(2))
		require.NoError(t, err)
		assert.Equal(t, 5, tr.Spans)
		assert.Equal(t, 5, spansOf(t, tr))
		assert.True(t, tr.Decided)
		assert.True(t, tr.Delivered)
		assert.Equal(t, "errors", tr.Decision.Policy)

		tr, err = s.Trace(traceID(1))
		require.NoError(t, err)
		assert.Equal(t, 3, tr.Spans)
		assert.False(t, tr.Decided)

		_, err = s.Trace(traceID(99))
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
	}
}

// crashImage copies dir as a kill -9 leaves it: the files as written.
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		if de.Name() == lockName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, de.Name()), data, 0o640))
	}
	return dst
}

func TestRecoveryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	for n := range 40 {
		req, ids := request(t, []int{n}, 4, 32)
		require.True(t, s.AppendSpans(ids, req))
		if n%2 == 0 {
			require.True(t, s.AppendDecision(traceID(n), Decision{Keep: n%4 == 0, Policy: "p", Reason: "quiet"}))
		}
		if n%8 == 0 {
			require.True(t, s.AppendDelivered(s.BeginDelivery(), [][16]byte{traceID(n)}))
		}
		require.NoError(t, s.Sync(context.Background()))
	}
	req, ids := request(t, []int{40}, 4, 32)
	require.True(t, s.AppendSpans(ids, req))
	require.NoError(t, s.Sync(context.Background()))
	require.Positive(t, s.Stats().BlockBytes.Load(), "some blocks were written")

	// A kill -9 in the middle of the next block's write.
	crashed := crashImage(t, dir)
	seg := filepath.Join(crashed, segName(1))
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(seg, append(data, data[:blockHeader+10]...), 0o640))

	r := openStore(t, crashed, nil)
	defer func() { require.NoError(t, r.Close()) }()
	assert.Equal(t, int64(1), r.Stats().CorruptSegments.Load(), "the torn block is skipped")
	rec := r.Claim()
	assert.Len(t, rec.Undecided, 21)
	assert.Len(t, rec.Decided, 20)
	delivered := 0
	for _, d := range rec.Decided {
		if d.Delivered {
			delivered++
		}
	}
	assert.Equal(t, 5, delivered)
	assert.Empty(t, r.Claim().Undecided, "a second claim gets nothing")

	got := 0
	require.NoError(t, r.Requests(rec.Undecided, func(_ []byte, spans int) error {
		got += spans
		return nil
	}))
	assert.Equal(t, 84, got, "every span of every undecided trace is replayed")
	for n := range 41 {
		tr, err := r.Trace(traceID(n))
		require.NoError(t, err)
		assert.Equal(t, 4, tr.Spans, "trace %d", n)
	}
}

// TestOldWriteAheadFileRecovered: the records of the write-ahead file an
// older store left (records not yet compressed into a block) are recovered
// into a block, and the file is removed.
func TestOldWriteAheadFileRecovered(t *testing.T) {
	dir := t.TempDir()
	req, ids := request(t, []int{7}, 3, 0)
	var wal []byte
	wal = appendFrame(wal, KindSpans, 1, 10, spansBody(nil, ids, req))
	wal = appendFrame(wal, KindDecision, 2, 11, decisionBody(nil, traceID(7), Decision{Keep: true, Policy: "p"}))
	wal = append(wal, 1, 2, 3) // cut mid-record
	require.NoError(t, os.WriteFile(filepath.Join(dir, walName), wal, 0o640))

	s := openStore(t, dir, nil)
	tr, err := s.Trace(traceID(7))
	require.NoError(t, err)
	assert.Equal(t, 3, tr.Spans)
	assert.True(t, tr.Decided)
	assert.NoFileExists(t, filepath.Join(dir, walName))
	require.NoError(t, s.Close())

	r := openStore(t, dir, nil)
	defer func() { require.NoError(t, r.Close()) }()
	assert.Len(t, r.Claim().Decided, 1, "the records are in a segment now")
}

func TestCorruptSegmentSkipped(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"truncated mid-block", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, fi.Size()-10))
		}},
		{"flipped bytes", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			data[len(data)-20] ^= 0xff
			require.NoError(t, os.WriteFile(path, data, 0o640))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, nil)
			for n := range 30 {
				req, ids := request(t, []int{n}, 2, 64)
				require.True(t, s.AppendSpans(ids, req))
				require.NoError(t, s.Sync(context.Background()))
			}
			require.NoError(t, s.Close())
			tt.corrupt(t, filepath.Join(dir, segName(1)))

			r := openStore(t, dir, nil)
			defer func() { require.NoError(t, r.Close()) }()
			assert.Equal(t, int64(1), r.Stats().CorruptSegments.Load())
			tr, err := r.Trace(traceID(0))
			require.NoError(t, err, "the blocks before the corrupt one are recovered")
			assert.Equal(t, 2, tr.Spans)
			_, err = r.Trace(traceID(29))
			require.ErrorIs(t, err, ErrNotFound, "the last block was corrupt")
		})
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	_, err := Open(Options{Dir: dir, Retention: time.Hour, MaxBytes: 1 << 30})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, s.Close())
	s = openStore(t, dir, nil) // released on close (and by the kernel on kill -9)
	require.NoError(t, s.Close())
}

func TestUnwritableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o640))
	_, err := Open(Options{Dir: filepath.Join(file, "store"), Retention: time.Hour, MaxBytes: 1 << 30})
	require.ErrorContains(t, err, "create directory")
}

func TestMaxBytesEvictsOldest(t *testing.T) {
	s := openStore(t, t.TempDir(), func(o *Options) { o.MaxBytes = 4 << 20 })
	defer func() { require.NoError(t, s.Close()) }()
	for n := range 400 {
		req, ids := request(t, []int{n}, 4, 4096) // random: does not compress
		require.True(t, s.AppendSpans(ids, req))
		require.NoError(t, s.Sync(context.Background()))
	}
	assert.Positive(t, s.Stats().EvictedBytes.Load())
	assert.LessOrEqual(t, s.Stats().DiskBytes.Load(), int64(4<<20))
	_, err := s.Trace(traceID(0))
	require.ErrorIs(t, err, ErrNotFound, "the oldest trace was evicted")
	tr, err := s.Trace(traceID(399))
	require.NoError(t, err)
	assert.Equal(t, 4, tr.Spans)
}

func TestDiskFullDropsWithoutBlocking(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	s.w.writeFile = func(*os.File, []byte) (int, error) { return 0, syscall.ENOSPC }
	for n := range 100 {
		req, ids := request(t, []int{n}, 1, 0)
		s.AppendSpans(ids, req) // never blocks
	}
	require.NoError(t, s.Sync(context.Background()))
	assert.Positive(t, s.Stats().WriteErrors.Load())
	assert.Equal(t, int64(100), s.Stats().Dropped.Load())
	_, err := s.Trace(traceID(5))
	require.ErrorIs(t, err, ErrNotFound)
}

func TestQueueFullDrops(t *testing.T) {
	s := openStore(t, t.TempDir(), func(o *Options) { o.QueueBytes = 1 })
	defer func() { require.NoError(t, s.Close()) }()
	req, ids := request(t, []int{1}, 1, 0)
	assert.False(t, s.AppendSpans(ids, req))
	assert.Equal(t, int64(1), s.Stats().Dropped.Load())
}

func TestDeliveredBeforeDecision(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	req, ids := request(t, []int{1, 2}, 1, 0)
	require.True(t, s.AppendSpans(ids, req))
	// Trace 1: delivered noted before its keep (a shard's batch of decisions
	// reaches the store after the send). Trace 2: dropped, then kept
	// retroactively: not delivered until that keep is.
	require.True(t, s.AppendDelivered(s.BeginDelivery(), [][16]byte{traceID(1)}))
	require.True(t, s.AppendDecisions([][16]byte{traceID(1), traceID(2)},
		[]Decision{{Keep: true, Policy: "errors"}, {Keep: false}}))
	require.True(t, s.AppendDelivered(s.BeginDelivery(), [][16]byte{traceID(2)}))
	require.True(t, s.AppendDecision(traceID(2), Decision{Keep: true, Policy: "retroactive"}))
	require.NoError(t, s.Sync(ctx))
	tr, err := s.Trace(traceID(1))
	require.NoError(t, err)
	assert.True(t, tr.Delivered)
	tr, err = s.Trace(traceID(2))
	require.NoError(t, err)
	assert.False(t, tr.Delivered)
	assert.Equal(t, "retroactive", tr.Decision.Policy)
}

// TestSpansFramedOnAppendReadBack records requests framed by AppendSpans
// alone in their block (written straight from the copy) and batched with
// others and with owned requests (copied into the block), and reads them
// all back after a reopen: every record's sequence and CRC are sealed.
func TestSpansFramedOnAppendReadBack(t *testing.T) {
	for _, comp := range []string{CompressionS2, CompressionZstd, CompressionS2Col} {
		dir := t.TempDir()
		s := openStore(t, dir, func(o *Options) { o.Compression = comp })
		ctx := context.Background()
		for n := range 30 {
			req, ids := request(t, []int{n}, 1+n%3, 16)
			if n%5 == 0 {
				require.True(t, s.AppendSpansOwned(ids, req))
			} else {
				require.True(t, s.AppendSpans(ids, req))
			}
			if n < 10 {
				require.NoError(t, s.Sync(ctx)) // one request per block
			}
		}
		require.NoError(t, s.Close())

		s = openStore(t, dir, func(o *Options) { o.Compression = comp })
		assert.Zero(t, s.Stats().CorruptSegments.Load())
		assert.Len(t, s.Claim().Undecided, 30)
		for n := range 30 {
			tr, err := s.Trace(traceID(n))
			require.NoError(t, err)
			assert.Equal(t, 1+n%3, spansOf(t, tr), "trace %d", n)
		}
		require.NoError(t, s.Close())
	}
}

// TestSpansRecordWithIDsRecovered: a segment written by an earlier version,
// whose spans records list their trace IDs before the request, reads back
// as the current records, which leave the IDs out.
func TestSpansRecordWithIDsRecovered(t *testing.T) {
	dir := t.TempDir()
	c, err := newCodec(CompressionS2)
	require.NoError(t, err)
	defer c.close()
	old, oldIDs := request(t, []int{1, 2}, 2, 8)
	now := time.Now().UnixNano() // within the retention
	var raw []byte
	raw = appendFrame(raw, KindSpans, 1, now, spansBody(nil, oldIDs, old))
	require.NoError(t, os.WriteFile(filepath.Join(dir, segName(1)), c.seal(nil, raw, 1, now), 0o640))

	s := openStore(t, dir, nil)
	cur, curIDs := request(t, []int{3}, 3, 8)
	require.True(t, s.AppendSpans(curIDs, cur))
	require.NoError(t, s.Close())

	r := openStore(t, dir, nil)
	defer func() { require.NoError(t, r.Close()) }()
	assert.Zero(t, r.Stats().CorruptSegments.Load())
	assert.ElementsMatch(t, [][16]byte{traceID(1), traceID(2), traceID(3)}, r.Claim().Undecided)
	for n, want := range map[int]int{1: 2, 2: 2, 3: 3} {
		tr, err := r.Trace(traceID(n))
		require.NoError(t, err, "trace %d", n)
		assert.Equal(t, want, spansOf(t, tr), "trace %d", n)
	}
}

// TestDecisionBatchRecovered: a batch of decisions (one record, kind 5) is
// read back at Open with each decision's keep, threshold, policy and
// reason; a single decision written after it for one of its traces wins,
// and decisions written one record each (kind 2) still read.
func TestDecisionBatchRecovered(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	ids := [][16]byte{traceID(1), traceID(2), traceID(3), traceID(4)}
	decs := []Decision{
		{Keep: true, Policy: "errors", Reason: "quiet"},
		{Threshold: 1 << 55, Policy: "baseline", Reason: "quiet"},
		{Keep: true, Threshold: 3, Policy: "slow", Reason: "max_wait"},
		{Policy: "baseline", Reason: "quiet"},
	}
	require.True(t, s.AppendDecisions(ids, decs))
	require.True(t, s.AppendDecision(traceID(4), Decision{Keep: true, Policy: "retroactive", Reason: "retroactive"}))
	require.True(t, s.AppendDecision(traceID(5), Decision{Policy: "baseline", Reason: "quiet"}))
	require.NoError(t, s.Close())

	// The batch is one record.
	data, err := os.ReadFile(filepath.Join(dir, segName(1)))
	require.NoError(t, err)
	r := openStore(t, t.TempDir(), nil)
	frames := 0
	for len(data) > 0 {
		b, raw, err := r.codec.readBlock(data, nil)
		require.NoError(t, err)
		for off := 0; off < len(raw); off += frameHeader + int(binary.LittleEndian.Uint32(raw[off:])) {
			frames++
		}
		data = data[blockHeader+b.compLen:]
	}
	require.NoError(t, r.Close())
	assert.Equal(t, 3, frames, "a batch of 4 decisions and 2 single ones")

	r = openStore(t, dir, nil)
	defer func() { require.NoError(t, r.Close()) }()
	got := map[[16]byte]Decision{}
	for _, d := range r.Claim().Decided {
		got[d.ID] = d.Decision
	}
	want := map[[16]byte]Decision{
		ids[0]: decs[0], ids[1]: decs[1], ids[2]: decs[2],
		ids[3]:     {Keep: true, Policy: "retroactive", Reason: "retroactive"},
		traceID(5): {Policy: "baseline", Reason: "quiet"},
	}
	assert.Equal(t, want, got)
}

// TestBlockRequestUnchecked: a spans record sealed for a block (kind 6)
// carries no CRC of its own, which a block's records may (the block's CRC
// covers them) and the write-ahead file's may not; a kind 6 record with a
// CRC is checked.
func TestBlockRequestUnchecked(t *testing.T) {
	req, _ := request(t, []int{1}, 2, 8)
	rec := appendSpansFrame(nil, 5, req)
	sealFrame(rec, 9)
	var got []Record
	n, err := ParseRecords(rec, func(r *Record) error {
		got = append(got, Record{Kind: r.Kind, Seq: r.Seq, Time: r.Time, Request: slices.Clone(r.Request), IDsOmitted: r.IDsOmitted})
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, len(rec), n)
	assert.Equal(t, []Record{{Kind: KindSpans, Seq: 9, Time: 5, Request: req, IDsOmitted: true}}, got)

	_, err = parseRecords(rec, false, func(*Record) error { return nil })
	require.ErrorContains(t, err, "checksum mismatch", "outside a block")

	binary.LittleEndian.PutUint32(rec[4:], 1)
	_, err = ParseRecords(rec, func(*Record) error { return nil })
	require.ErrorContains(t, err, "checksum mismatch")
}

// TestRecordsBehindACopiedRequest: a request AppendSpans copied heads a
// block, and the block's other records (its decisions, another copied
// request, an owned one, a delivery) are written behind it in the copy's
// buffer (writeBatch), or, when they do not fit there (a large request
// among them), in the writer's own; every record reads back after a reopen.
func TestRecordsBehindACopiedRequest(t *testing.T) {
	for _, tc := range []struct {
		comp     string
		bigSpans int // spans of 1 KiB in the block's last request
	}{{CompressionS2, 1}, {CompressionZstd, 1}, {CompressionS2Col, 1}, {CompressionS2, 40}, {CompressionZstd, 40}, {CompressionS2Col, 40}} {
		comp := tc.comp
		dir := t.TempDir()
		s := openStore(t, dir, func(o *Options) { o.Compression = comp })
		// The first block's write waits, so that the rest queue behind it
		// and make one block.
		entered, gate, writes := holdFirstWrite(s)
		first, firstIDs := request(t, []int{0}, 2, 16)
		require.True(t, s.AppendSpans(firstIDs, first))
		<-entered
		head, headIDs := request(t, []int{1, 2}, 2, 16)
		require.True(t, s.AppendSpans(headIDs, head))
		require.True(t, s.AppendDecisions(headIDs[:1], []Decision{{Keep: true, Policy: "errors", Reason: "quiet"}}))
		other, otherIDs := request(t, []int{3}, 3, 16)
		require.True(t, s.AppendSpans(otherIDs, other))
		owned, ownedIDs := request(t, []int{4}, 1, 16)
		require.True(t, s.AppendSpansOwned(ownedIDs, owned))
		require.True(t, s.AppendDelivered(s.BeginDelivery(), headIDs[:1]))
		require.True(t, s.AppendDecision(headIDs[1], Decision{Policy: "baseline", Reason: "quiet"}))
		last, lastIDs := request(t, []int{5}, tc.bigSpans, 1024)
		require.True(t, s.AppendSpans(lastIDs, last))
		assert.Equal(t, tc.bigSpans == 1, len(last) < blockTail/2, "fits behind the head or not")
		close(gate)
		require.NoError(t, s.Close())
		assert.Equal(t, 2, *writes, "the queued records in one block")

		s = openStore(t, dir, func(o *Options) { o.Compression = comp })
		assert.Zero(t, s.Stats().CorruptSegments.Load())
		rec := s.Claim()
		assert.ElementsMatch(t, [][16]byte{traceID(0), traceID(3), traceID(4), traceID(5)}, rec.Undecided)
		require.Len(t, rec.Decided, 2)
		for _, d := range rec.Decided {
			switch d.ID {
			case traceID(1):
				assert.True(t, d.Decision.Keep)
				assert.True(t, d.Delivered)
			case traceID(2):
				assert.Equal(t, Decision{Policy: "baseline", Reason: "quiet"}, d.Decision)
				assert.False(t, d.Delivered)
			default:
				t.Errorf("decided %x", d.ID)
			}
		}
		for n, want := range map[int]int{0: 2, 1: 2, 2: 2, 3: 3, 4: 1, 5: tc.bigSpans} {
			tr, err := s.Trace(traceID(n))
			require.NoError(t, err, "trace %d", n)
			assert.Equal(t, want, spansOf(t, tr), "trace %d", n)
		}
		require.NoError(t, s.Close())
	}
}

// TestWriterBufferNotACopy: when the records behind a copied request may
// not fit in the room left behind it (by item.size, an upper bound), the
// block is built in the writer's own buffer, never in the copy's, which
// goes back to the pool for the next AppendSpans: the writer keeping it as
// its buffer would write the next block over a queued request.
func TestWriterBufferNotACopy(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	entered, gate, _ := holdFirstWrite(s)
	first, firstIDs := request(t, []int{0}, 1, 16)
	require.True(t, s.AppendSpans(firstIDs, first))
	<-entered
	req, ids := request(t, []int{1}, 1, 16)
	// The copy's buffer: AppendSpans takes it from the pool of its size
	// class (the last put on this goroutine's P).
	class, _, _ := copyClass(frameHeader + payloadHeader + len(req) + blockTail)
	buf := make([]byte, 0, 20<<10) // room for the decisions, not by item.size
	copies[class].Put(&buf)
	require.True(t, s.AppendSpans(ids, req))
	// 300 decisions: about 6 KB framed, 23 KB by item.size.
	decIDs, decs := make([][16]byte, 300), make([]Decision, 300)
	for i := range decIDs {
		decIDs[i], decs[i] = traceID(100+i), Decision{Policy: "baseline", Reason: "quiet"}
	}
	require.True(t, s.AppendDecisions(decIDs, decs))
	close(gate)
	require.NoError(t, s.Sync(context.Background()))
	require.NoError(t, s.Close())
	assert.NotSame(t, unsafe.SliceData(buf[:1]), unsafe.SliceData(s.w.raw[:1]), "the writer's buffer is the copy's")
}

// holdFirstWrite makes s's writer wait in its first write until gate is
// closed; entered is closed once it waits, and *writes counts the writes
// (read it after s.Close).
func holdFirstWrite(s *Store) (entered, gate chan struct{}, writes *int) {
	entered, gate, writes = make(chan struct{}), make(chan struct{}), new(int)
	s.w.writeFile = func(f *os.File, b []byte) (int, error) {
		if *writes++; *writes == 1 {
			close(entered)
			<-gate
		}
		return f.Write(b)
	}
	return entered, gate, writes
}
