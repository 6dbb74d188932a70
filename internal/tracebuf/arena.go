package tracebuf

import (
	"math/bits"
	"slices"
	"sync/atomic"
	"unsafe"
)

// mappedBytes is the memory all arenas of the process hold outside the Go
// heap.
var mappedBytes atomic.Int64

// MappedBytes returns the memory the trace buffers of the process hold
// outside the Go heap, in bytes: what runtime.MemStats does not show.
func MappedBytes() int64 { return mappedBytes.Load() }

// compactedBytes is the bytes the process's arenas have copied in
// compactions.
var compactedBytes atomic.Int64

// CompactedBytes returns the bytes the trace buffers of the process have
// copied to give spare memory back (arena.compact) since it started: the
// benchmarks' measure of what compaction costs.
func CompactedBytes() int64 { return compactedBytes.Load() }

// arena hands out the byte slices that hold a shard's buffered span records,
// from memory outside the Go heap (mmap'd chunks on Unix), and takes them
// back for reuse. Span bytes are most of what tailsift holds; kept on the
// heap, the garbage collector lets the heap grow to twice their size before
// it collects (GOGC=100), so the process's memory would be twice the
// buffer's. Off the heap they count once, and the collector paces itself on
// the small heap that is left.
//
// Blocks come in size classes, four per doubling (each at most 25 % larger
// than the one before), carved from 4 MiB chunks and kept on a free list per
// class when returned. Blocks larger than a chunk's eighth are mapped on
// their own and unmapped when returned.
//
// Free blocks are memory the process holds and does not use: the spare
// bytes. compact moves the blocks in use into other chunks and lets the old
// ones go, which gives the spare bytes back to the OS; the shard does so
// when they exceed its reserve, or under load what its budget leaves over
// the records (see due), and counts the reserve against its budget.
//
// A chunk compaction empties is not unmapped at once: it goes to the idle
// chunks (arena_idle.go), from which the same compaction and the next
// refills take their chunks before they map new ones. A chunk mapped anew
// costs a page fault per page the first time it is written (when compaction
// unmapped every chunk it emptied, the arena took 10-15 % of the fast path's
// CPU, about half of it in page faults); an idle chunk is already resident,
// and chunks are mapped on huge pages (mapChunk). Idle chunks count as spare
// bytes against the reserve, and go back to the OS when they have been idle
// for idleAge, when the arena holds no record, or when a spike has drained.
//
// An arena belongs to one shard goroutine: it is not safe for concurrent use.
type arena struct {
	free   [numClasses][][]byte
	cur    []byte   // what is left of the current chunk
	chunks [][]byte // mapped chunks, by address
	large  map[unsafe.Pointer]int
	// mapped is the memory taken from the OS, in bytes; reported what
	// mappedDelta last returned; high the most mapped since the shard last
	// reset it.
	mapped, reported, high int64
	// spare is the bytes on the free lists.
	spare int64
	// largeBytes is the bytes in large blocks.
	largeBytes int64
	// idle is the chunks nothing is carved from, resident and ready for
	// refill, the longest idle first; idleBytes their size.
	idle      []idleChunk
	idleBytes int64
	// reserve is the spare bytes the arena may hold before due reports
	// that it is time to compact.
	reserve int64
	// moves is compact's scratch: the slices in use, per old chunk.
	moves [][]*[]byte
}

const (
	minClassShift = 6 // smallest class: 64 bytes
	chunkSize     = 4 << 20
	maxClassSize  = chunkSize / 8
	numClasses    = (19-minClassShift)*4 + 1 // 64 B .. 512 KiB (= maxClassSize = 2^19)
)

// classSize is the size of class c: 64·2^(c/4), rounded up to 16 bytes.
func classSize(c int) int {
	base := 1 << (minClassShift + c/4)
	size := base + base*(c%4)/4
	return (size + 15) &^ 15
}

// classOf is the smallest class of at least n bytes (n ≤ maxClassSize).
func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	// The octave of n-1, then the quarter within it.
	oct := bits.Len(uint(n-1)) - 1 // 2^oct ≤ n-1 < 2^(oct+1)
	c := (oct - minClassShift) * 4
	for classSize(c) < n {
		c++
	}
	return c
}

// newArena returns an arena that holds up to reserve spare bytes before it
// is due for compaction.
func newArena(reserve int64) *arena {
	return &arena{large: make(map[unsafe.Pointer]int), reserve: reserve}
}

// compactFloor is the spare bytes below which an arena is never due: a
// compaction would give back less than it costs.
const compactFloor = 1 << 20

// due reports whether the spare bytes are worth giving back: they exceed
// what the arena may hold (limit), or they exceed the bytes in use (after a
// spike, when the buffer drains). A compaction copies the bytes in use: at
// most as many as it gives back in the second case. Spare bytes not in
// mapped chunks (the heap fallback where mmap fails) are not worth a
// compaction: the garbage collector has them.
//
// The arena may hold its reserve, and, when it holds more records than
// that, as many spare bytes as records, up to room, what the shard's budget
// leaves over its records. A compaction then copies at most one byte for
// each it gives back whatever the load. With the reserve alone it copied
// more per byte the more records the arena held, so the CPU per span grew
// with the rate: two shards at 1.5-1.9 times the rate of one copied 1.6-2.4
// bytes per byte given back against one shard's 1.2-1.5, and compaction
// took twice its share of the CPU (BenchmarkParallelIngest,
// benchmarks/README.md). room is 0 where no budget applies: the reserve
// alone.
func (a *arena) due(room int64) bool {
	return len(a.chunks) > 0 && a.spare > compactFloor && (a.spare > a.limit(room) || a.spare > a.inUse())
}

// limit is the spare bytes the arena may hold before it is due (see due).
func (a *arena) limit(room int64) int64 {
	return max(a.reserve, min(a.inUse(), room))
}

// inUse is the bytes in blocks handed out from chunks.
func (a *arena) inUse() int64 {
	return a.mapped - a.largeBytes - int64(len(a.cur)) - a.spare - a.idleBytes
}

// mappedDelta returns the change of the mapped bytes since its last call.
func (a *arena) mappedDelta() int64 {
	d := a.mapped - a.reported
	a.reported = a.mapped
	return d
}

// alloc returns a slice of length 0 and capacity at least n.
func (a *arena) alloc(n int) []byte {
	if n > maxClassSize {
		b := mapMemory(n)
		if b == nil {
			return make([]byte, 0, n)
		}
		a.large[unsafe.Pointer(unsafe.SliceData(b))] = cap(b)
		a.largeBytes += int64(cap(b))
		a.addMapped(int64(cap(b)))
		return b[:0]
	}
	c := classOf(n)
	if l := len(a.free[c]); l > 0 {
		b := a.free[c][l-1]
		a.free[c][l-1] = nil
		a.free[c] = a.free[c][:l-1]
		a.spare -= int64(cap(b))
		return b
	}
	size := classSize(c)
	if len(a.cur) < size {
		a.refill()
	}
	b := a.cur[:0:size]
	a.cur = a.cur[size:]
	return b
}

// refill starts a new chunk, an idle one if there is one, after putting
// what is left of the current one on the free lists in the largest blocks it
// holds.
func (a *arena) refill() {
	for len(a.cur) >= 1<<minClassShift {
		c := classOf(len(a.cur))
		if classSize(c) > len(a.cur) {
			c--
		}
		s := classSize(c)
		a.free[c] = append(a.free[c], a.cur[:0:s])
		a.spare += int64(s)
		a.cur = a.cur[s:]
	}
	chunk := a.takeIdle()
	if chunk == nil {
		chunk = mapChunk()
		if chunk == nil {
			a.cur = make([]byte, chunkSize)
			return
		}
		a.addMapped(chunkSize)
	}
	i, _ := slices.BinarySearchFunc(a.chunks, chunk, cmpChunk)
	a.chunks = slices.Insert(a.chunks, i, chunk)
	a.cur = chunk[:chunkSize]
}

func (a *arena) addMapped(n int64) {
	a.mapped += n
	a.high = max(a.high, a.mapped)
	mappedBytes.Add(n)
}

// release takes back a slice alloc returned. The slice must not be used
// afterwards. A slice alloc did not return (nil, or one Go's append moved
// to the heap) is left to the garbage collector.
func (a *arena) release(b []byte) {
	n := cap(b)
	if n == 0 {
		return
	}
	if n > maxClassSize {
		p := unsafe.Pointer(unsafe.SliceData(b[:1]))
		if size, ok := a.large[p]; ok && size == n {
			delete(a.large, p)
			a.largeBytes -= int64(n)
			a.addMapped(-int64(n))
			unmapMemory(b[:n])
		}
		return
	}
	c := classOf(n)
	if classSize(c) != n {
		return // not one of ours
	}
	a.free[c] = append(a.free[c], b[:0])
	a.spare += int64(n)
}

// cmpChunk orders chunks by address.
func cmpChunk(x, y []byte) int {
	return cmpAddr(unsafe.SliceData(x), unsafe.SliceData(y))
}

func cmpAddr(x, y *byte) int {
	px, py := uintptr(unsafe.Pointer(x)), uintptr(unsafe.Pointer(y))
	switch {
	case px < py:
		return -1
	case px > py:
		return 1
	}
	return 0
}

// chunkOf is the index of the chunk b lies in among chunks (by address),
// or -1.
func chunkOf(chunks [][]byte, b []byte) int {
	p := unsafe.SliceData(b[:1])
	i, found := slices.BinarySearchFunc(chunks, p, func(c []byte, p *byte) int {
		return cmpAddr(unsafe.SliceData(c), p)
	})
	if found {
		return i
	}
	if i == 0 {
		return -1
	}
	c := chunks[i-1]
	if uintptr(unsafe.Pointer(p))-uintptr(unsafe.Pointer(unsafe.SliceData(c))) < uintptr(len(c)) {
		return i - 1
	}
	return -1
}

// compact gives the spare bytes back to the OS. live calls move exactly once
// for each slice alloc returned that is still in use; compact copies the slice
// into another chunk, with the same capacity, and points it there. Old chunks
// go idle one by one as soon as what they held has moved, and the moves that
// follow fill them again: the arena maps at most one chunk more than before
// meanwhile, none when it had an idle chunk. Then what the reserve does not
// allow of the idle chunks (all of them when no record is left) is unmapped.
// Large blocks and slices not in a chunk stay where they are. now is the
// shard's clock, in nanoseconds, for the idle chunks' age.
func (a *arena) compact(now int64, live func(move func(*[]byte))) {
	old := a.chunks
	a.chunks, a.cur = nil, nil
	for c := range a.free {
		a.free[c] = nil
	}
	a.spare = 0
	if cap(a.moves) < len(old) {
		a.moves = make([][]*[]byte, len(old))
	}
	moves := a.moves[:len(old)]
	live(func(b *[]byte) {
		if cap(*b) == 0 || cap(*b) > maxClassSize {
			return
		}
		if i := chunkOf(old, *b); i >= 0 {
			moves[i] = append(moves[i], b)
		}
	})
	var copied int64
	for i, c := range old {
		for _, b := range moves[i] {
			nb := a.alloc(cap(*b))[:len(*b)]
			copied += int64(copy(nb, *b))
			*b = nb
		}
		clear(moves[i])
		moves[i] = moves[i][:0]
		a.putIdle(c, now)
	}
	compactedBytes.Add(copied)
	a.trimIdle(now)
}

// close returns all the arena's memory to the OS. Nothing it handed out may
// be used afterwards: the shard calls it when its goroutine ends.
func (a *arena) close() {
	for p, n := range a.large {
		unmapMemory(unsafe.Slice((*byte)(p), n))
	}
	clear(a.large)
	a.largeBytes = 0
	for _, c := range a.chunks {
		unmapMemory(c)
	}
	a.releaseIdle(len(a.idle))
	a.addMapped(-a.mapped)
	a.chunks, a.cur, a.spare = nil, nil, 0
	for c := range a.free {
		a.free[c] = nil
	}
}
