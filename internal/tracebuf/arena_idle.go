package tracebuf

import "time"

// idleChunk is a chunk of an arena that nothing is carved from.
type idleChunk struct {
	b     []byte
	since int64 // when it went idle, on the shard's clock
}

// idleAge is how long a chunk may stay idle before it goes back to the OS.
// A chunk that has waited that long is not needed for the load of the
// moment, and a buffer whose load stops gives its memory back within it
// even when records are left.
const idleAge = 10 * time.Second

// putIdle makes c, a chunk compact has emptied, idle.
func (a *arena) putIdle(c []byte, now int64) {
	a.idle = append(a.idle, idleChunk{b: c, since: now})
	a.idleBytes += chunkSize
}

// takeIdle returns the chunk that went idle last (its pages are the most
// likely to be in the caches), or nil.
func (a *arena) takeIdle() []byte {
	n := len(a.idle)
	if n == 0 {
		return nil
	}
	c := a.idle[n-1].b
	a.idle[n-1] = idleChunk{}
	a.idle = a.idle[:n-1]
	a.idleBytes -= chunkSize
	return c
}

// trimIdle unmaps the idle chunks the arena may not keep: all of them when
// it holds no record, else those idle for idleAge or longer, and the longest
// idle until the idle and spare bytes together are within the reserve (which
// the shard counts against its budget). It is cheap when there is nothing
// to do: the shard calls it on every turn of its loop.
func (a *arena) trimIdle(now int64) {
	if len(a.idle) == 0 {
		return
	}
	if a.inUse() == 0 {
		a.releaseIdle(len(a.idle))
		return
	}
	n := 0
	for n < len(a.idle) && (now-a.idle[n].since >= int64(idleAge) || a.spare+a.idleBytes-int64(n)*chunkSize > a.reserve) {
		n++
	}
	a.releaseIdle(n)
}

// releaseIdle unmaps the n longest idle chunks.
func (a *arena) releaseIdle(n int) {
	if n == 0 {
		return
	}
	for _, c := range a.idle[:n] {
		unmapMemory(c.b)
	}
	a.idle = append(a.idle[:0], a.idle[n:]...)
	clear(a.idle[len(a.idle):cap(a.idle)])
	a.idleBytes -= int64(n) * chunkSize
	a.addMapped(-int64(n) * chunkSize)
}
