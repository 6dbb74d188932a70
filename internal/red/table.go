package red

import (
	"encoding/binary"
	"math"
	"sync"
	"unicode/utf8"

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
	forEachServiceSpan(b, func(service []byte, sp *wire.Span) {
		if !sp.ValidIDs() {
			return
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
	})
}

// forEachServiceSpan calls f with each span of b whose resource has a
// service.name, and that name (spanmetrics leaves the others out).
func forEachServiceSpan(b *wire.Batch, f func(service []byte, sp *wire.Span)) {
	lastScope := int32(-1)
	var service []byte
	var hasService bool
	for i := range b.Spans {
		sp := &b.Spans[i]
		if sp.Scope != lastScope {
			lastScope = sp.Scope
			service, hasService = serviceName(b.Scopes[sp.Scope].Resource)
		}
		if hasService {
			f(service, sp)
		}
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
	service, name, kind = seriesOf(service, name, kind)
	t.list = append(t.list, series{service: string(service), name: string(name), kind: kind, status: status})
	t.buckets = append(t.buckets, make([]uint64, len(t.boundsNs)+1)...)
	t.index[string(k)] = idx
	return idx
}

// makeKey writes the key of a series (seriesOf) in the scratch key.
// Called under mu. The service name is length-prefixed: joined with a
// separator byte, which names may hold (the scan does not check UTF-8),
// service "a\xffb" with name "c" and service "a" with name "b\xffc" were
// one series.
func (t *Table) makeKey(service, name []byte, kind, status uint8) []byte {
	service, name, kind = seriesOf(service, name, kind)
	t.key = binary.AppendUvarint(t.key[:0], uint64(len(service)))
	t.key = append(t.key, service...)
	t.key = append(t.key, name...)
	t.key = append(t.key, kind, status)
	return t.key
}

// seriesOf is how a span's names and kind identify its series: the names
// cut to maxNameBytes, and a kind OTLP does not define as
// SPAN_KIND_UNSPECIFIED, as the series is written (one series for them,
// not one per unknown value with the same attributes).
func seriesOf(service, name []byte, kind uint8) ([]byte, []byte, uint8) {
	if kind > maxSpanKind {
		kind = 0
	}
	return capName(service), capName(name), kind
}

// maxSpanKind is the highest span kind OTLP defines (CONSUMER).
const maxSpanKind = 5

// maxNameBytes caps the service and span names a series is keyed and
// labelled by: each series holds its names for the process's life, and
// names come from untrusted spans (100 names of 256 KiB held 51 MiB).
const maxNameBytes = 256

// capName is name cut to maxNameBytes, at a UTF-8 boundary.
func capName(name []byte) []byte {
	if len(name) <= maxNameBytes {
		return name
	}
	cut := maxNameBytes
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}

// serviceName reads the string value of the service.name attribute of an
// encoded Resource (which wire.Scan has checked): the first one, as
// pcommon.Map.Get finds it. A non-string value reads as "", as
// pcommon.Value.Str gives it.
func serviceName(resource []byte) (name []byte, ok bool) {
	eachField(resource, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != 1 || typ != protowire.BytesType {
			return true
		}
		if value, found := keyValue(v, "service.name"); found {
			name, ok = stringValue(value), true
		}
		return !ok
	})
	return name, ok
}

// keyValue returns the encoded AnyValue of kv, an encoded KeyValue, if its
// key is key.
func keyValue(kv []byte, key string) (value []byte, ok bool) {
	var k []byte
	eachField(kv, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if typ == protowire.BytesType {
			switch num {
			case 1:
				k = v
			case 2:
				value = v
			}
		}
		return true
	})
	return value, string(k) == key
}

// stringValue is an encoded AnyValue's string_value (field 1), "" if it
// holds another type (a oneof: the last field set wins).
func stringValue(anyValue []byte) []byte {
	var s []byte
	eachField(anyValue, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		s = nil
		if num == 1 && typ == protowire.BytesType {
			s = v
		}
		return true
	})
	return s
}

// eachField calls fn with each field of msg, the payload of a
// length-delimited one, until fn returns false or msg ends or is
// malformed.
func eachField(msg []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) bool) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return
		}
		msg = msg[n:]
		n = protowire.ConsumeFieldValue(num, typ, msg)
		if n < 0 {
			return
		}
		v := msg[:n]
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(v)
		}
		msg = msg[n:]
		if !fn(num, typ, v) {
			return
		}
	}
}
