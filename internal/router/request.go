package router

import (
	"context"
	"errors"
	"fmt"

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
	// pooled: the pieces came from getBuffer (or are the router's to
	// recycle), and go back to the pool once sent.
	pooled bool
}

var _ xexporterhelper.Request = (*request)(nil)

// ItemsCount implements xexporterhelper.Request.
func (r *request) ItemsCount() int { return r.spans }

// BytesSize implements xexporterhelper.Request.
func (r *request) BytesSize() int {
	n := 0
	for _, b := range r.bufs {
		n += len(b)
	}
	return n
}

// bytes returns the message in one piece, joining the pieces (once) when a
// merge left several: what scanning it (a split, a failover) needs.
func (r *request) bytes() []byte {
	switch len(r.bufs) {
	case 0:
		return nil
	case 1:
		return r.bufs[0]
	}
	joined := getBuffer(r.BytesSize())
	for _, b := range r.bufs {
		joined = append(joined, b...)
	}
	r.release()
	r.bufs, r.pooled = [][]byte{joined}, true
	return joined
}

// release recycles the pieces, which nothing may use afterwards.
func (r *request) release() {
	if r.pooled {
		for _, b := range r.bufs {
			putBuffer(b)
		}
	}
	r.bufs = nil
}

// MergeSplit implements xexporterhelper.Request for the items sizer (Validate
// refuses the others for batching). Two encoded TracesData concatenated are
// their merge: other's pieces are appended to r's, without copying bytes.
// When both would exceed maxSize, r and other go out as they are (the
// batcher flushes r and keeps other as its next batch) rather than being
// re-encoded; only a single request larger than maxSize is split, by
// re-encoding its spans in chunks of at most maxSize. The batcher drops r
// once this returns, so r is changed in place.
func (r *request) MergeSplit(_ context.Context, maxSize int, sizer exporterhelper.RequestSizerType, other xexporterhelper.Request) ([]xexporterhelper.Request, error) {
	if maxSize > 0 && sizer != exporterhelper.RequestSizerTypeItems {
		return nil, fmt.Errorf("split by %s: only items is supported", sizer.String())
	}
	if other == nil {
		if maxSize <= 0 || r.spans <= maxSize {
			return []xexporterhelper.Request{r}, nil
		}
		return r.split(maxSize)
	}
	o, ok := other.(*request)
	if !ok {
		return nil, fmt.Errorf("merge a %T into a tailsift request", other)
	}
	if maxSize > 0 && r.spans+o.spans > maxSize {
		if r.spans <= maxSize && o.spans <= maxSize {
			return []xexporterhelper.Request{r, o}, nil
		}
		r.merge(o)
		return r.split(maxSize)
	}
	r.merge(o)
	return []xexporterhelper.Request{r}, nil
}

// merge appends o to r; o is not used afterwards.
func (r *request) merge(o *request) {
	r.bufs = append(r.bufs, o.bufs...)
	r.spans += o.spans
	// Pieces of a request that is not the router's stay unrecycled.
	r.pooled = r.pooled && o.pooled
	o.bufs, o.spans = nil, 0
}

// split re-encodes r's spans in requests of at most maxSize spans.
func (r *request) split(maxSize int) ([]xexporterhelper.Request, error) {
	var s splitter
	if err := wire.Scan(r.bytes(), &s.batch); err != nil {
		return nil, fmt.Errorf("split a request: %w", err)
	}
	idx := make([]int32, len(s.batch.Spans))
	for i := range idx {
		idx[i] = int32(i)
	}
	var out []xexporterhelper.Request
	for start := 0; start < len(idx); start += maxSize {
		chunk := idx[start:min(start+maxSize, len(idx))]
		out = append(out, &request{bufs: [][]byte{s.encode(nil, chunk)}, spans: len(chunk), pooled: true})
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
func convert(ctx context.Context, td ptrace.Traces) (xexporterhelper.Request, error) {
	if r, ok := ctx.Value(routedKey{}).(*request); ok {
		return r, nil
	}
	data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("marshal traces: %w", err)
	}
	return &request{bufs: [][]byte{data}, spans: td.SpanCount(), pooled: true}, nil
}

// queueEncoding stores requests in a persistent queue as their bytes.
type queueEncoding struct{}

func (queueEncoding) Marshal(_ context.Context, r xexporterhelper.Request) ([]byte, error) {
	req, ok := r.(*request)
	if !ok {
		return nil, fmt.Errorf("persist a %T", r)
	}
	return req.bytes(), nil
}

func (queueEncoding) Unmarshal(data []byte) (context.Context, xexporterhelper.Request, error) {
	var b wire.Batch
	if err := wire.Scan(data, &b); err != nil {
		return nil, nil, fmt.Errorf("read a persisted request: %w", err)
	}
	// data is the queue's: it is not recycled.
	return context.Background(), &request{bufs: [][]byte{data}, spans: len(b.Spans)}, nil
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
