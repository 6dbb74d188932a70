package tracebuf

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// mappedBytes is the memory all arenas of the process hold outside the Go
// heap.
var mappedBytes atomic.Int64

// MappedBytes returns the memory the trace buffers of the process hold
// outside the Go heap, in bytes: what runtime.MemStats does not show.
func MappedBytes() int64 { return mappedBytes.Load() }

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
// their own and unmapped when returned. Memory is reused, not given back to
// the OS, except for those large blocks.
//
// An arena belongs to one shard goroutine: it is not safe for concurrent use.
type arena struct {
	free   [numClasses][][]byte
	cur    []byte   // what is left of the current chunk
	chunks [][]byte // mapped chunks, for close
	large  map[unsafe.Pointer]int
	// mapped is the memory taken from the OS, in bytes.
	mapped int64
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

func newArena() *arena {
	return &arena{large: make(map[unsafe.Pointer]int)}
}

// alloc returns a slice of length 0 and capacity at least n.
func (a *arena) alloc(n int) []byte {
	if n > maxClassSize {
		b := mapMemory(n)
		if b == nil {
			return make([]byte, 0, n)
		}
		a.large[unsafe.Pointer(unsafe.SliceData(b))] = cap(b)
		a.addMapped(int64(cap(b)))
		return b[:0]
	}
	c := classOf(n)
	if l := len(a.free[c]); l > 0 {
		b := a.free[c][l-1]
		a.free[c][l-1] = nil
		a.free[c] = a.free[c][:l-1]
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

// refill starts a new chunk, after putting what is left of the current one
// on the free lists in the largest blocks it holds.
func (a *arena) refill() {
	for len(a.cur) >= 1<<minClassShift {
		c := classOf(len(a.cur))
		if classSize(c) > len(a.cur) {
			c--
		}
		s := classSize(c)
		a.free[c] = append(a.free[c], a.cur[:0:s])
		a.cur = a.cur[s:]
	}
	chunk := mapMemory(chunkSize)
	if chunk == nil {
		chunk = make([]byte, chunkSize)
	} else {
		a.chunks = append(a.chunks, chunk)
		a.addMapped(chunkSize)
	}
	a.cur = chunk[:chunkSize]
}

func (a *arena) addMapped(n int64) {
	a.mapped += n
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
}

// close returns all the arena's memory to the OS. Nothing it handed out may
// be used afterwards: the shard calls it when its goroutine ends.
func (a *arena) close() {
	for p, n := range a.large {
		unmapMemory(unsafe.Slice((*byte)(p), n))
	}
	clear(a.large)
	for _, c := range a.chunks {
		unmapMemory(c)
	}
	a.addMapped(-a.mapped)
	a.chunks, a.cur = nil, nil
	for c := range a.free {
		a.free[c] = nil
	}
}
