package tracebuf

import (
	"bytes"
	"encoding/binary"

	"github.com/cespare/xxhash/v2"

	"github.com/tailsift/tailsift/internal/wire"
)

// groupOverhead is the bookkeeping counted per interned group.
const groupOverhead = 96

// group is one interned resource+scope framing, shared by every buffered
// span that arrived under it.
type group struct {
	sc   wire.Scope // slices into data
	data []byte
	hash uint64
	refs int
}

// interner deduplicates the resource and scope framing of buffered spans: a
// service's resource (often hundreds of bytes) is held once per shard, not
// once per trace.
type interner struct {
	byHash map[uint64]uint32
	groups []group
	free   []uint32
	digest *xxhash.Digest
	bytes  int64
}

func newInterner() *interner {
	return &interner{byHash: make(map[uint64]uint32), digest: xxhash.New()}
}

func (in *interner) hash(sc *wire.Scope) uint64 { return hashScope(in.digest, sc) }

// hashScope is the hash a group is interned under, computed with d.
func hashScope(d *xxhash.Digest, sc *wire.Scope) uint64 {
	var lens [16]byte
	binary.LittleEndian.PutUint32(lens[0:], uint32(len(sc.Resource)))
	binary.LittleEndian.PutUint32(lens[4:], uint32(len(sc.ResourceSchemaURL)))
	binary.LittleEndian.PutUint32(lens[8:], uint32(len(sc.Scope)))
	binary.LittleEndian.PutUint32(lens[12:], uint32(len(sc.ScopeSchemaURL)))
	if sc.Resource == nil {
		lens[3] |= 0x80
	}
	if sc.Scope == nil {
		lens[11] |= 0x80
	}
	d.Reset()
	_, _ = d.Write(lens[:])
	_, _ = d.Write(sc.Resource)
	_, _ = d.Write(sc.ResourceSchemaURL)
	_, _ = d.Write(sc.Scope)
	_, _ = d.Write(sc.ScopeSchemaURL)
	return d.Sum64()
}

func sameScope(a, b *wire.Scope) bool {
	return (a.Resource == nil) == (b.Resource == nil) && (a.Scope == nil) == (b.Scope == nil) &&
		bytes.Equal(a.Resource, b.Resource) && bytes.Equal(a.ResourceSchemaURL, b.ResourceSchemaURL) &&
		bytes.Equal(a.Scope, b.Scope) && bytes.Equal(a.ScopeSchemaURL, b.ScopeSchemaURL)
}

// lookup returns the id of sc's group, interning a copy of it if new. It
// does not take a reference.
func (in *interner) lookup(sc *wire.Scope) uint32 { return in.lookupHashed(sc, in.hash(sc)) }

// lookupHashed is lookup for a scope whose hash h is known.
func (in *interner) lookupHashed(sc *wire.Scope, h uint64) uint32 {
	for {
		id, ok := in.byHash[h]
		if !ok {
			break
		}
		if sameScope(&in.groups[id].sc, sc) {
			return id
		}
		h++ // a 64-bit collision of different framings: probe on
	}
	n := len(sc.Resource) + len(sc.ResourceSchemaURL) + len(sc.Scope) + len(sc.ScopeSchemaURL)
	data := make([]byte, 0, n) // unref frees cap(data), which is n
	var g group
	g.hash, g.data = h, data
	g.sc.Resource, data = own(data, sc.Resource)
	g.sc.ResourceSchemaURL, data = own(data, sc.ResourceSchemaURL)
	g.sc.Scope, data = own(data, sc.Scope)
	g.sc.ScopeSchemaURL, _ = own(data, sc.ScopeSchemaURL)
	var id uint32
	if k := len(in.free); k > 0 {
		id = in.free[k-1]
		in.free = in.free[:k-1]
		in.groups[id] = g
	} else {
		id = uint32(len(in.groups))
		in.groups = append(in.groups, g)
	}
	in.byHash[h] = id
	in.bytes += int64(n + groupOverhead)
	return id
}

// own appends b to data and returns the appended part (nil stays nil).
func own(data, b []byte) ([]byte, []byte) {
	if b == nil {
		return nil, data
	}
	start := len(data)
	data = append(data, b...)
	return data[start:len(data):len(data)], data
}

func (in *interner) ref(id uint32) { in.groups[id].refs++ }

// unref drops n references; the group is freed when none remain.
func (in *interner) unref(id uint32, n int) {
	g := &in.groups[id]
	g.refs -= n
	if g.refs > 0 {
		return
	}
	in.bytes -= int64(cap(g.data) + groupOverhead)
	delete(in.byHash, g.hash)
	*g = group{}
	in.free = append(in.free, id)
}
