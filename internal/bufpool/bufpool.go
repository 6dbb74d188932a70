// Package bufpool is a gRPC buffer pool (mem.BufferPool) that does not
// clear the buffers it hands out, in power-of-two tiers.
//
// gRPC's default pool clears every buffer it hands out, and its tiers jump
// from 32 KiB to 1 MiB, so a message of a few hundred KiB costs a cleared
// MiB. gRPC writes a buffer from its pool to its length before anything
// reads it (frames and messages are read to their length, a message in
// several buffers is copied whole into one, compressed bytes are copied in
// whole), so clearing buys nothing. The tailsift receiver's server and the
// router's connections to the gateways use it.
package bufpool // import "github.com/tailsift/tailsift/internal/bufpool"

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// Pool is a mem.BufferPool of power-of-two tiers from 256 B to 4 MiB;
// larger buffers are allocated and left to the garbage collector. The zero
// value is ready to use.
type Pool struct {
	tiers [maxExp - minExp + 1]sync.Pool
}

const (
	minExp = 8  // 256 B
	maxExp = 22 // 4 MiB
)

var _ mem.BufferPool = (*Pool)(nil)

// tierOf is the tier whose buffers hold n bytes, or -1 when n is too large.
func tierOf(n int) int {
	if n <= 1<<minExp {
		return 0
	}
	exp := bits.Len(uint(n - 1)) // 2^(exp-1) < n <= 2^exp
	if exp > maxExp {
		return -1
	}
	return exp - minExp
}

// Get implements mem.BufferPool.
func (p *Pool) Get(n int) *[]byte {
	t := tierOf(n)
	if t < 0 {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[t].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<(t+minExp))
	return &b
}

// Put implements mem.BufferPool. Buffers not from a tier are dropped.
func (p *Pool) Put(b *[]byte) {
	c := cap(*b)
	t := tierOf(c)
	if t < 0 || c != 1<<(t+minExp) {
		return
	}
	p.tiers[t].Put(b)
}
