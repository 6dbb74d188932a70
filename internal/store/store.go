package store

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/tailsift/tailsift/internal/clock"
)

// Options configure a Store.
type Options struct {
	// Dir holds the segment files and the lock file.
	Dir string
	// Retention is how long records are kept.
	Retention time.Duration
	// MaxBytes bounds the files in Dir; the oldest segments are evicted
	// first when it is reached.
	MaxBytes int64
	// QueueBytes bounds the memory the records waiting for the writer hold
	// (their buffers' capacity, not only the records' length); records
	// beyond it are dropped and counted (Stats.Dropped), so that writing
	// never blocks ingest. 0 means 64 MiB.
	QueueBytes int64
	// Compression of sealed blocks: CompressionZstd (the default, also
	// the extension's: 68–79 B/span on the benchmark workload, busy to idle
	// writer), CompressionS2 (88–98 B/span, about 0.4 µs of CPU a span
	// against zstd's 1 µs) or CompressionS2Col (s2 of the records'
	// columnar form, colblock.go: 12–13 % fewer bytes than s2 at about 1.5
	// times its CPU). Any is read back whatever is written.
	Compression string
	Logger      *zap.Logger
	Clock       clock.Clock
}

// Stats are the store's counters, read by the extension's metrics.
type Stats struct {
	BytesIn         atomic.Int64 // request bytes handed to the store
	BlockBytes      atomic.Int64 // bytes written to segments (compressed blocks)
	DiskBytes       atomic.Int64 // bytes of the files in Dir now
	Dropped         atomic.Int64 // records not recorded: queue full or disk failing
	EvictedBytes    atomic.Int64 // segment bytes evicted for max_bytes or retention
	CorruptSegments atomic.Int64 // segments cut short at startup by a corrupt or truncated block
	WriteErrors     atomic.Int64
	Traces          atomic.Int64 // traces in the index
}

// segment is one sealed segment file.
type segment struct {
	num     uint32
	size    int64
	maxTime int64
}

// Store is the durable store. Appends are asynchronous and never block;
// reads may run concurrently with them.
type Store struct {
	opts  Options
	lock  *os.File
	codec *codec
	in    chan *item // from the items pool
	// queued is the bytes the records in `in` hold (item.held), bounded
	// by QueueBytes.
	queued atomic.Int64
	stats  Stats
	log    *zap.Logger

	mu   sync.RWMutex
	idx  *index
	segs []*segment

	w        writer
	recovery *Recovery
	claimed  atomic.Bool
	// hold, while not 0, is when the hold on eviction by retention ends
	// (unix ns): from Open until the recovery's traces were read back
	// (Recovery.Replayed, ReleaseRecovery), at most a retention (holdFor).
	hold  atomic.Int64
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// item is one record waiting for the writer.
type item struct {
	kind byte
	t    int64
	ids  [][16]byte
	req  []byte
	dec  Decision
	decs []Decision // a batch of decisions, one per ID, when not nil
	// copied holds req when it is AppendSpans' copy, given back once written.
	copied *[]byte
	// framed: req is the whole record, framed by AppendSpans as it copied
	// it (appendSpansFrame), not yet sealed.
	framed bool
	sync   chan struct{} // a barrier: closed once what came before is written
	// delivery is the delivery a kindBegin item begins, or that a
	// delivered item records.
	delivery *Delivery
}

// kindBegin is the kind of the item BeginDelivery queues: no record, it
// marks where in the queue a delivery began.
const kindBegin byte = 0xff

// size bounds the bytes of the item's framed record.
func (it *item) size() int64 {
	n := len(it.req) + 16*len(it.ids) + len(it.dec.Policy) + len(it.dec.Reason) + 64
	for i := range it.decs {
		n += 64 + len(it.decs[i].Policy) + len(it.decs[i].Reason)
	}
	return int64(n)
}

// held bounds the bytes the item holds until it is written: its record's,
// and the room behind them in the buffers it holds (a copy's, an owned
// request's, decision slices sized for an earlier batch). The queue counts
// this, so that QueueBytes bounds memory: an owned request of 1 KiB cut
// from a buffer of 256 KiB holds 256 KiB.
func (it *item) held() int64 {
	return it.size() + int64(cap(it.req)-len(it.req)) +
		int64(unsafe.Sizeof([16]byte{}))*int64(cap(it.ids)-len(it.ids)) +
		int64(unsafe.Sizeof(Decision{}))*int64(cap(it.decs)-len(it.decs))
}

const (
	walName  = "wal.tsl"
	lockName = "LOCK"
)

func segName(num uint32) string { return fmt.Sprintf("seg-%08d.tsl", num) }

// ErrLocked is returned by Open when the directory is held: by another
// process, or by another store of this one (two extensions on one
// directory, or one started twice without a Shutdown between).
var ErrLocked = errors.New("in use by another collector, or by another tailsift extension of this one")

// Open locks opts.Dir, creating it if needed, reads what it holds back into
// the index (skipping, and counting, corrupt or truncated blocks) and starts
// the writer. Close it.
func Open(opts Options) (*Store, error) {
	if opts.QueueBytes == 0 {
		opts.QueueBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create directory %q: %w", opts.Dir, err)
	}
	lock, err := lockDir(filepath.Join(opts.Dir, lockName))
	if err != nil {
		return nil, err
	}
	c, err := newCodec(opts.Compression)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s := &Store{
		opts: opts, lock: lock, codec: c, log: opts.Logger, idx: newIndex(),
		in: make(chan *item, 1<<16), stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.w.segBytes = min(max(opts.MaxBytes/16, 1<<20), 128<<20)
	if err := s.recover(); err != nil {
		c.close()
		_ = lock.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// Stats returns the store's counters.
func (s *Store) Stats() *Stats { return &s.stats }

// Retention is how long the store keeps what it records.
func (s *Store) Retention() time.Duration { return s.opts.Retention }

// Close writes what is queued and releases the directory.
// It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.close.Do(func() {
		close(s.stop)
		<-s.done
		err = s.w.close()
		s.codec.close()
		err = errors.Join(err, s.lock.Close())
	})
	return err
}

// enqueue hands an item to the writer, or drops it when the queue is full
// or the store is closed (nothing reads the queue then: an append after
// Close reported success and was held for ever).
func (s *Store) enqueue(it item) bool {
	select {
	case <-s.done:
		s.stats.Dropped.Add(1)
		it.release()
		return false
	default:
	}
	n := it.held()
	if s.queued.Add(n) > s.opts.QueueBytes {
		s.queued.Add(-n)
		s.stats.Dropped.Add(1)
		it.release()
		return false
	}
	p, _ := items.Get().(*item)
	if p == nil {
		p = new(item)
	}
	*p = it
	select {
	case s.in <- p:
		return true
	default:
		*p = item{}
		items.Put(p)
		s.queued.Add(-n)
		s.stats.Dropped.Add(1)
		it.release()
		return false
	}
}

// items hold the queued items. The queue is a channel of pointers, 8 bytes
// a slot: a channel of items (150 bytes with their slices and strings)
// 65 536 deep was 10 MB that the garbage collector scanned on every cycle,
// the store's largest cost in a collector busy allocating.
var items sync.Pool

// take returns the item p holds and gives p back.
func take(p *item) item {
	it := *p
	*p = item{}
	items.Put(p)
	return it
}

func (s *Store) now() int64 { return s.opts.Clock.Now().UnixNano() }

// AppendSpans records an accepted OTLP request (copied) and the IDs of the
// traces it holds. It never blocks; it returns false when the record was
// dropped because the writer is behind.
func (s *Store) AppendSpans(ids [][16]byte, req []byte) bool {
	bp := copyBuffer(frameHeader + payloadHeader + len(req) + blockTail)
	t := s.now()
	*bp = appendSpansFrame((*bp)[:0], t, req)
	s.stats.BytesIn.Add(int64(len(req)))
	return s.enqueue(item{kind: KindSpans, t: t, ids: ids, req: *bp, copied: bp, framed: true})
}

// copies are the buffers of AppendSpans' copies: the writer gives each
// back once it framed it, so that recording a pooled request allocates
// nothing in the steady state. They are pooled by size class, four a
// power of two (2^e + j·2^(e-2), j = 1 to 4: 5, 6, 7 and 8 KiB, then 10,
// 12, 14, 16 KiB...), so that a copy's buffer is at most a quarter larger
// than it needs: from one pool, a request of 1 KiB recorded after some of
// 900 KiB got one of their buffers, and the queue held 900 KiB for it.
// Copies of more than 1 MiB are not pooled.
var copies [4 * (maxCopyBits - minCopyBits)]sync.Pool

const (
	minCopyBits = 12 // classes from 4 KiB up: a copy needs more than blockTail
	maxCopyBits = 20 // to 1 MiB
)

// copyClass returns the pool of buffers of n bytes or a little more, and
// their size; ok is false when n is beyond the largest.
func copyClass(n int) (class, size int, ok bool) {
	n = max(n, 1<<minCopyBits+1)
	e := bits.Len(uint(n-1)) - 1 // 2^e < n ≤ 2^(e+1)
	step := 1 << (e - 2)
	j := (n - 1<<e + step - 1) / step
	class = 4*(e-minCopyBits) + j - 1
	return class, 1<<e + j*step, class < len(copies)
}

// copyBuffer returns an empty buffer of at least n bytes, at most a quarter
// more when it is pooled.
func copyBuffer(n int) *[]byte {
	class, size, ok := copyClass(n)
	if !ok {
		b := make([]byte, 0, n)
		return &b
	}
	if bp, _ := copies[class].Get().(*[]byte); bp != nil {
		return bp
	}
	b := make([]byte, 0, size)
	return &b
}

// release gives back the item's copy, if it holds one of a class's size.
func (it *item) release() {
	if it.copied == nil {
		return
	}
	if class, size, ok := copyClass(cap(it.req)); ok && size == cap(it.req) {
		*it.copied = it.req[:0]
		copies[class].Put(it.copied)
	}
}

// AppendSpansOwned is AppendSpans without the copy: the store reads req
// until it is written, and the caller never changes it.
func (s *Store) AppendSpansOwned(ids [][16]byte, req []byte) bool {
	s.stats.BytesIn.Add(int64(len(req)))
	return s.enqueue(item{kind: KindSpans, t: s.now(), ids: ids, req: req})
}

// AppendDecision records a decision on trace id.
func (s *Store) AppendDecision(id [16]byte, d Decision) bool {
	if d.HasRV { // a kind 2 record has no rv: a batch of one
		return s.AppendDecisions([][16]byte{id}, []Decision{d})
	}
	return s.enqueue(item{kind: KindDecision, t: s.now(), ids: [][16]byte{id}, dec: d})
}

// AppendDecisions records decisions[i] on trace ids[i], for each i.
func (s *Store) AppendDecisions(ids [][16]byte, decisions []Decision) bool {
	return s.enqueue(item{kind: KindDecision, t: s.now(), ids: ids, decs: decisions})
}

// Delivery is a delivery to the next consumer under way, from
// BeginDelivery to AppendDelivered.
type Delivery struct {
	queued bool // BeginDelivery queued its item (the caller's)
	// mark is the sequence of the last record queued before the
	// delivery began, set once the writer reached its item (begun). Only
	// the writer touches them.
	mark  uint64
	begun bool
}

// BeginDelivery notes that a delivery begins: call it before the spans to
// be delivered are handed on (before the first try of the next consumer's
// call; before reading them back from the store, followed by a Sync). The
// delivery then covers the spans records appended before it, not those
// appended while it is under way: the late spans of a kept trace recorded
// during the next consumer's call are not delivered by it. It never
// blocks.
func (s *Store) BeginDelivery() *Delivery {
	d := &Delivery{}
	d.queued = s.enqueue(item{kind: kindBegin, delivery: d})
	return d
}

// AppendDelivered records that the next consumer accepted the kept traces
// ids, handed on in delivery d (BeginDelivery): of their spans records,
// those appended before d began. Nothing is recorded when d's beginning
// was not (the queue was full, the disk failing), and the traces are sent
// again after a restart.
func (s *Store) AppendDelivered(d *Delivery, ids [][16]byte) bool {
	if d == nil || !d.queued {
		s.stats.Dropped.Add(1)
		return false
	}
	return s.enqueue(item{kind: KindDelivered, t: s.now(), ids: ids, delivery: d})
}

// Sync waits until the records appended before it are written and indexed,
// or ctx ends.
func (s *Store) Sync(ctx context.Context) error {
	// Closed first: with room in the queue, a select would pick the send
	// as often as the close, and wait for a writer that is gone.
	select {
	case <-s.done:
		return errClosed
	default:
	}
	done := make(chan struct{})
	select {
	case s.in <- &item{sync: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		select {
		case <-done: // the writer took it before it stopped
			return nil
		default:
			return errClosed
		}
	}
}

var errClosed = errors.New("store closed")

// Queued returns the bytes the records waiting for the writer hold.
func (s *Store) Queued() int64 { return s.queued.Load() }
