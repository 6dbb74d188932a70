// Package ring maps trace IDs to members by consistent hashing: a hash ring
// with virtual nodes. Adding or removing one of N members moves about 1/N of
// the trace IDs, all of them to or from that member, and no other.
//
// The tailsift exporter routes spans with it; a gateway's cluster block uses
// the same ring, built from the same member list, so that agents and gateways
// agree on every trace's owner. A Ring is immutable: build a new one when the
// member set changes and swap it in atomically.
package ring // import "github.com/tailsift/tailsift/internal/ring"

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// VirtualNodes is the number of points each member has on the ring. With 256
// points the share of trace IDs a member owns is within about ±15 % of 1/N.
const VirtualNodes = 256

type point struct {
	hash   uint64
	member int32
}

// Ring is an immutable consistent-hash ring over a set of members.
type Ring struct {
	members []string
	points  []point
}

// New builds the ring of members (addresses as the membership block lists
// them). The order of members does not matter and duplicates count once: two
// processes given the same set build the same ring.
func New(members []string) *Ring {
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	r := &Ring{members: ms, points: make([]point, 0, len(ms)*VirtualNodes)}
	var key []byte
	for i, m := range ms {
		for v := range VirtualNodes {
			key = strconv.AppendInt(append(append(key[:0], m...), '#'), int64(v), 10)
			r.points = append(r.points, point{hash: xxhash.Sum64(key), member: int32(i)})
		}
	}
	slices.SortFunc(r.points, func(a, b point) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		return int(a.member - b.member) // a hash collision resolves the same way everywhere
	})
	return r
}

// Hash is the ring position of a trace ID.
func Hash(traceID [16]byte) uint64 {
	return xxhash.Sum64(traceID[:])
}

// Members returns the ring's members, sorted. Member indexes returned by the
// other methods index this slice. The caller must not modify it.
func (r *Ring) Members() []string { return r.members }

// Len is the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Index returns the index of member, or -1 when it is not on the ring.
func (r *Ring) Index(member string) int {
	i, ok := slices.BinarySearch(r.members, member)
	if !ok {
		return -1
	}
	return i
}

// Owner returns the index of the member owning hash h (see Hash), or -1 when
// the ring is empty.
func (r *Ring) Owner(h uint64) int {
	if len(r.points) == 0 {
		return -1
	}
	return int(r.points[r.search(h)].member)
}

// Next returns the first member in hash order from h on for which skip
// returns false: the owner when skip(owner) is false, otherwise the member a
// trace falls back to when its owner is down. It returns -1 when skip is true
// for every member. skip is called with member indexes; a nil skip skips
// nothing.
func (r *Ring) Next(h uint64, skip func(member int) bool) int {
	if len(r.points) == 0 {
		return -1
	}
	i := r.search(h)
	for range r.points {
		m := int(r.points[i].member)
		if skip == nil || !skip(m) {
			return m
		}
		if i++; i == len(r.points) {
			i = 0
		}
	}
	return -1
}

// search returns the index of the first point at or after h, wrapping.
func (r *Ring) search(h uint64) int {
	lo, hi := 0, len(r.points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.points[mid].hash < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(r.points) {
		return 0
	}
	return lo
}
