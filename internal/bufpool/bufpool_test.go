package bufpool

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPool(t *testing.T) {
	p := new(Pool)
	for _, n := range []int{0, 1, 256, 257, 4096, 16384 + 1, 1 << 22} {
		b := p.Get(n)
		assert.Len(t, *b, n)
		assert.GreaterOrEqual(t, cap(*b), n)
		c := cap(*b)
		assert.Equal(t, 0, c&(c-1), "tier buffers are powers of two (%d)", c)
		p.Put(b)
	}
	big := p.Get(1<<22 + 1)
	assert.Len(t, *big, 1<<22+1)
	p.Put(big) // not pooled, no panic

	// A buffer back from the pool serves a request of its tier.
	b := p.Get(1000)
	(*b)[999] = 7
	p.Put(b)
	b2 := p.Get(600)
	assert.Len(t, *b2, 600)
	assert.Equal(t, 1024, cap(*b2))

	// Foreign buffers are dropped, not pooled under a wrong tier.
	odd := make([]byte, 1000)
	p.Put(&odd)
	assert.Equal(t, 1024, cap(*p.Get(1000)))
}
