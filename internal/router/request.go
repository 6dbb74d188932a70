package router

import (
	"context"
	"errors"
	"fmt"
	"math"

	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/tailsift/tailsift/internal/wire"
)

// request is what a member's sending queue holds: an encoded TracesData,
// sent as is as the body of an ExportTraceServiceRequest (both messages carry
// the resource spans in field 1). It is in pieces, whose concatenation is
// the message: a merge appends the other request's pieces, and gRPC writes
// them one after the other, so a batch is never copied into one buffer.
type request struct {
	bufs  [][]byte
	spans int
	// size is the message's size in bytes: the pieces' lengths summed.
	size int
	// maxBytes caps the size of the requests MergeSplit makes of this one
	// (Settings.MaxRequestBytes; 0: no cap). An int32, with pooled, keeps
	// a request in 48 bytes, as before the cap.
	maxBytes int32
	// pooled: the pieces came from getBuffer (or are the router's to
	// recycle), and go back to the pool once sent.
	pooled bool
}

var _ xexporterhelper.Request = (*request)(nil)

// ItemsCount implements xexporterhelper.Request.
func (r *request) ItemsCount() int { return r.spans }

// newRequest is a request of one piece.
func newRequest(data []byte, spans, maxBytes int, pooled bool) *request {
	return &request{bufs: [][]byte{data}, spans: spans, size: len(data), maxBytes: int32(min(maxBytes, math.MaxInt32)), pooled: pooled}
}

// BytesSize implements xexporterhelper.Request: the size of the
// ExportTraceServiceRequest the member is sent, uncompressed.
func (r *request) BytesSize() int { return r.size }

// bytes returns the message in one piece, joining the pieces (once) when a
// merge left several: what scanning it (a split, a failover) needs.
func (r *request) bytes() []byte {
	switch len(r.bufs) {
	case 0:
		return nil
	case 1:
		return r.bufs[0]
	}
	joined := getBuffer(r.size)
	for _, b := range r.bufs {
		joined = append(joined, b...)
	}
	size := r.size
	r.release()
	r.bufs, r.size, r.pooled = [][]byte{joined}, size, true
	return joined
}

// release recycles the pieces, which nothing may use afterwards.
func (r *request) release() {
	if r.pooled {
		for _, b := range r.bufs {
			putBuffer(b)
		}
	}
	r.bufs, r.size = nil, 0
}

// MergeSplit implements xexporterhelper.Request for the items sizer (Validate
// refuses the others for batching), when the members' queues batch rather
// than the router (see routerBatching). Two encoded TracesData concatenated
// are their merge: other's pieces are appended to r's, without copying
// bytes. Besides maxSize spans, a request holds at most r.maxBytes bytes
// (Settings.MaxRequestBytes). When both would exceed a limit, r and other go
// out as they are (the batcher flushes r and keeps other as its next batch)
// rather than being re-encoded; only a request over a limit by itself is
// split, by re-encoding its spans in chunks within both. The batcher drops
// r once this returns, so r is changed in place.
func (r *request) MergeSplit(_ context.Context, maxSize int, sizer exporterhelper.RequestSizerType, other xexporterhelper.Request) ([]xexporterhelper.Request, error) {
	if maxSize > 0 && sizer != exporterhelper.RequestSizerTypeItems {
		return nil, fmt.Errorf("split by %s: only items is supported", sizer.String())
	}
	maxSize = max(maxSize, 0)
	if other == nil {
		if r.fits(maxSize, r.spans, r.size) {
			return []xexporterhelper.Request{r}, nil
		}
		return r.split(maxSize)
	}
	o, ok := other.(*request)
	if !ok {
		return nil, fmt.Errorf("merge a %T into a tailsift request", other)
	}
	if !r.fits(maxSize, r.spans+o.spans, r.size+o.size) {
		if r.fits(maxSize, r.spans, r.size) && r.fits(maxSize, o.spans, o.size) {
			return []xexporterhelper.Request{r, o}, nil
		}
		r.merge(o)
		return r.split(maxSize)
	}
	r.merge(o)
	return []xexporterhelper.Request{r}, nil
}

// fits reports whether a request of spans spans and size bytes is within
// maxSpans (0: any) and r's byte cap.
func (r *request) fits(maxSpans, spans, size int) bool {
	return (maxSpans == 0 || spans <= maxSpans) && (r.maxBytes == 0 || size <= int(r.maxBytes))
}

// merge appends o to r; o is not used afterwards.
func (r *request) merge(o *request) {
	r.bufs = append(r.bufs, o.bufs...)
	r.spans += o.spans
	r.size += o.size
	// Pieces of a request that is not the router's stay unrecycled.
	r.pooled = r.pooled && o.pooled
	o.bufs, o.spans, o.size = nil, 0, 0
}

// split re-encodes r's spans, in order, in requests of at most maxSpans
// spans (0: any) and r.maxBytes bytes, but for a span bigger by itself,
// which is a request of its own. What r's pieces held besides spans (a
// Settings.Prefix) is not kept: a router that has a prefix does not batch
// (internal/cluster), and its parts were cut to r.maxBytes as they were
// routed.
func (r *request) split(maxSpans int) ([]xexporterhelper.Request, error) {
	var s splitter
	if err := wire.Scan(r.bytes(), &s.batch); err != nil {
		return nil, fmt.Errorf("split a request: %w", err)
	}
	idx := make([]int32, len(s.batch.Spans))
	for i := range idx {
		idx[i] = int32(i)
	}
	var out []xexporterhelper.Request
	start := 0
	for _, c := range s.cut(idx, maxSpans, int(r.maxBytes)) {
		out = append(out, newRequest(s.encode(nil, idx[start:c.end]), c.end-start, int(r.maxBytes), true))
		start = c.end
	}
	r.release()
	return out, nil
}

// routedKey carries a routed request from a member's ConsumeTraces to its
// converter: the exporterhelper API takes pdata, and the bytes are already
// encoded. The pdata passed along is empty.
type routedKey struct{}

// convert is the member exporters' RequestConverterFunc. A routed request
// passes through; pdata (from any other caller) is marshalled.
func (r *Router) convert(ctx context.Context, td ptrace.Traces) (xexporterhelper.Request, error) {
	if req, ok := ctx.Value(routedKey{}).(*request); ok {
		return req, nil
	}
	data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("marshal traces: %w", err)
	}
	return newRequest(data, td.SpanCount(), r.cfg.MaxRequestBytes, true), nil
}

// queueEncoding stores requests in a persistent queue as their bytes.
// maxBytes is the router's Settings.MaxRequestBytes, for the requests it
// reads back.
type queueEncoding struct{ maxBytes int }

func (queueEncoding) Marshal(_ context.Context, r xexporterhelper.Request) ([]byte, error) {
	req, ok := r.(*request)
	if !ok {
		return nil, fmt.Errorf("persist a %T", r)
	}
	return req.bytes(), nil
}

func (e queueEncoding) Unmarshal(data []byte) (context.Context, xexporterhelper.Request, error) {
	var b wire.Batch
	if err := wire.Scan(data, &b); err != nil {
		return nil, nil, fmt.Errorf("read a persisted request: %w", err)
	}
	// data is the queue's: it is not recycled.
	return context.Background(), newRequest(data, len(b.Spans), e.maxBytes, false), nil
}

// rawMessage is an answer, kept as its encoding.
type rawMessage struct{ data []byte }

// outMessage is a request whose encoding the router has, in pieces.
type outMessage struct{ bufs [][]byte }

// rawCodec sends outMessages and receives rawMessages without re-encoding
// them.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*outMessage)
	if !ok {
		return nil, fmt.Errorf("raw codec cannot marshal %T", v)
	}
	out := make(mem.BufferSlice, 0, len(m.bufs))
	for _, b := range m.bufs {
		if len(b) > 0 {
			out = append(out, mem.SliceBuffer(b))
		}
	}
	return out, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("raw codec cannot unmarshal into %T", v)
	}
	m.data = data.Materialize()
	return nil
}

// Name is the content subtype: the bytes are protobuf.
func (rawCodec) Name() string { return "proto" }

var errAllDown = errors.New("every member is down")
