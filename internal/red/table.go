package red

import (
	"math"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/wire"
)

// series is one (service, span name, kind, status) combination.
type series struct {
	service, name string
	kind, status  uint8
	overflow      bool
	calls         uint64
	sumMs         float64
	// The exemplar: the last span of a kept trace seen in this series.
	hasExemplar bool
	exTrace     [16]byte
	exSpan      [8]byte
	exMs        float64
	exTime      uint64 // the span's end, in Unix nanoseconds
}

// Table aggregates RED metrics. Its methods are safe for concurrent use:
// Observe takes its lock once per request, not per span.
type Table struct {
	boundsMs []float64
	boundsNs []uint64 // boundsMs in nanoseconds, rounded up
	max      int
	start    uint64 // Unix nanoseconds of the first observation (cumulative start)

	mu sync.Mutex
	// index maps a key to its series in list (a map without pointers,
	// which the GC skips); list[0] is the overflow series. buckets holds
	// each series' len(boundsNs)+1 bucket counts, in list's order.
	index   map[string]int32
	list    []series
	buckets []uint64
	key     []byte // scratch, under mu
}

// NewTable returns an empty table with cfg's buckets and series bound.
// startNs is the start timestamp of the cumulative sums it reports.
func NewTable(cfg Config, startNs uint64) *Table {
	t := &Table{
		boundsMs: append([]float64(nil), cfg.BucketsMs...),
		max:      cfg.MaxSeries,
		start:    startNs,
		index:    make(map[string]int32),
		list:     []series{{overflow: true}},
	}
	t.boundsNs = make([]uint64, len(t.boundsMs))
	for i, b := range t.boundsMs {
		t.boundsNs[i] = uint64(math.Ceil(b * 1e6))
	}
	t.buckets = make([]uint64, len(t.boundsNs)+1)
	return t
}

// Observe counts the spans of a scanned request that have valid IDs (those
// a trace buffer accepts). Spans whose resource has no service.name are
// left out, as spanmetrics leaves them out.
func (t *Table) Observe(b *wire.Batch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lastScope := int32(-1)
	var service []byte
	var hasService bool
	for i := range b.Spans {
		sp := &b.Spans[i]
		if sp.Scope != lastScope {
			lastScope = sp.Scope
			service, hasService = serviceName(b.Scopes[sp.Scope].Resource)
		}
		if !hasService || !sp.ValidIDs() {
			continue
		}
		idx := t.lookup(service, sp.Name, sp.Kind, sp.Status)
		var ns uint64
		if sp.End > sp.Start {
			ns = sp.End - sp.Start
		}
		s := &t.list[idx]
		s.calls++
		s.sumMs += float64(ns) / 1e6
		i := 0
		for i < len(t.boundsNs) && ns > t.boundsNs[i] {
			i++
		}
		t.buckets[int(idx)*(len(t.boundsNs)+1)+i]++
	}
}

// bucketsOf returns the bucket counts of series idx.
func (t *Table) bucketsOf(idx int) []uint64 {
	n := len(t.boundsNs) + 1
	return t.buckets[idx*n : (idx+1)*n]
}

// lookup returns the index in list of the key's series, creating it, or 0
// (the overflow series) once the table holds max series. Called under mu.
func (t *Table) lookup(service, name []byte, kind, status uint8) int32 {
	k := t.makeKey(service, name, kind, status)
	if idx, ok := t.index[string(k)]; ok {
		return idx
	}
	if len(t.index) >= t.max {
		return 0
	}
	idx := int32(len(t.list))
	t.list = append(t.list, series{service: string(service), name: string(name), kind: kind, status: status})
	t.buckets = append(t.buckets, make([]uint64, len(t.boundsNs)+1)...)
	t.index[string(k)] = idx
	return idx
}

// makeKey writes the key of a series in the scratch key. Called under mu.
func (t *Table) makeKey(service, name []byte, kind, status uint8) []byte {
	k := append(t.key[:0], service...)
	k = append(k, 0xff)
	k = append(k, name...)
	k = append(k, 0xff, kind, status)
	t.key = k
	return k
}

// serviceName reads the string value of the service.name attribute of an
// encoded Resource (which wire.Scan has checked). A non-string value reads
// as "", as pcommon.Value.Str gives it.
func serviceName(resource []byte) (name []byte, ok bool) {
	for len(resource) > 0 {
		num, typ, n := protowire.ConsumeTag(resource)
		if n < 0 {
			return nil, false
		}
		resource = resource[n:]
		n = protowire.ConsumeFieldValue(num, typ, resource)
		if n < 0 {
			return nil, false
		}
		field := resource[:n]
		resource = resource[n:]
		if num != 1 || typ != protowire.BytesType {
			continue
		}
		kv, _ := protowire.ConsumeBytes(field)
		if v, found := keyValue(kv, "service.name"); found {
			return stringValue(v), true // the first, as pcommon.Map.Get finds it
		}
	}
	return nil, false
}

// keyValue returns the encoded AnyValue of kv, an encoded KeyValue, if its
// key is key.
func keyValue(kv []byte, key string) (value []byte, ok bool) {
	var k, v []byte
	for len(kv) > 0 {
		num, typ, n := protowire.ConsumeTag(kv)
		if n < 0 {
			return nil, false
		}
		kv = kv[n:]
		n = protowire.ConsumeFieldValue(num, typ, kv)
		if n < 0 {
			return nil, false
		}
		if typ == protowire.BytesType {
			b, _ := protowire.ConsumeBytes(kv[:n])
			switch num {
			case 1:
				k = b
			case 2:
				v = b
			}
		}
		kv = kv[n:]
	}
	return v, string(k) == key
}

// stringValue is an encoded AnyValue's string_value (field 1), "" if it
// holds another type.
func stringValue(v []byte) []byte {
	var s []byte
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return nil
		}
		v = v[n:]
		n = protowire.ConsumeFieldValue(num, typ, v)
		if n < 0 {
			return nil
		}
		if num == 1 && typ == protowire.BytesType {
			s, _ = protowire.ConsumeBytes(v[:n])
		} else {
			s = nil // a oneof: the last field set wins
		}
		v = v[n:]
	}
	return s
}
