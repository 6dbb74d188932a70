package tailsiftreceiver

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// recvPool is the gRPC server's buffer pool: buffers in power-of-two tiers,
// handed out without being cleared. gRPC's default pool clears every buffer
// it hands out; gRPC writes a received buffer whole (frames and messages are
// read to their length) before anything reads it, and so does the codec's
// MaterializeToBuffer, so clearing buys nothing here.
type recvPool struct {
	tiers [maxPoolExp - minPoolExp + 1]sync.Pool
}

const (
	minPoolExp = 8  // 256 B
	maxPoolExp = 22 // 4 MiB; larger buffers are allocated and left to the GC
)

var _ mem.BufferPool = (*recvPool)(nil)

// tierOf is the tier whose buffers hold n bytes, or -1 when n is too large.
func tierOf(n int) int {
	if n <= 1<<minPoolExp {
		return 0
	}
	exp := bits.Len(uint(n - 1)) // 2^(exp-1) < n <= 2^exp
	if exp > maxPoolExp {
		return -1
	}
	return exp - minPoolExp
}

// Get implements mem.BufferPool.
func (p *recvPool) Get(n int) *[]byte {
	t := tierOf(n)
	if t < 0 {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[t].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<(t+minPoolExp))
	return &b
}

// Put implements mem.BufferPool. Buffers not from a tier are dropped.
func (p *recvPool) Put(b *[]byte) {
	c := cap(*b)
	t := tierOf(c)
	if t < 0 || c != 1<<(t+minPoolExp) {
		return
	}
	p.tiers[t].Put(b)
}
