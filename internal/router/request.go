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
// the resource spans in field 1).
type request struct {
	data  []byte
	spans int
	// pooled: data came from getBuffer, so a merge may append to it in
	// place and recycle it.
	pooled bool
}

var _ xexporterhelper.Request = (*request)(nil)

// ItemsCount implements xexporterhelper.Request.
func (r *request) ItemsCount() int { return r.spans }

// BytesSize implements xexporterhelper.Request.
func (r *request) BytesSize() int { return len(r.data) }

// MergeSplit implements xexporterhelper.Request for the items sizer (Validate
// refuses the others for batching). Two encoded TracesData concatenated are
// their merge: other is appended to r's buffer, which grows by doubling, so
// a batch of n parts costs about one copy of its bytes, not n. When both
// would exceed maxSize, r and other go out as they are (the batcher flushes
// r and keeps other as its next batch) rather than being re-encoded; only a
// single request larger than maxSize is split, by re-encoding its spans in
// chunks of at most maxSize. The batcher drops r once this returns, so r is
// changed in place.
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
	if need := len(r.data) + len(o.data); !r.pooled || cap(r.data) < need {
		grown := append(getBuffer(max(need, 2*cap(r.data))), r.data...)
		if r.pooled {
			putBuffer(r.data)
		}
		r.data, r.pooled = grown, true
	}
	r.data = append(r.data, o.data...)
	r.spans += o.spans
	if o.pooled {
		putBuffer(o.data)
	}
	o.data, o.spans, o.pooled = nil, 0, false
}

// split re-encodes r's spans in requests of at most maxSize spans.
func (r *request) split(maxSize int) ([]xexporterhelper.Request, error) {
	var s splitter
	if err := wire.Scan(r.data, &s.batch); err != nil {
		return nil, fmt.Errorf("split a request: %w", err)
	}
	idx := make([]int32, len(s.batch.Spans))
	for i := range idx {
		idx[i] = int32(i)
	}
	var out []xexporterhelper.Request
	for start := 0; start < len(idx); start += maxSize {
		chunk := idx[start:min(start+maxSize, len(idx))]
		out = append(out, &request{data: s.encode(nil, chunk), spans: len(chunk), pooled: true})
	}
	if r.pooled {
		putBuffer(r.data)
	}
	r.data = nil
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
	return &request{data: data, spans: td.SpanCount()}, nil
}

// queueEncoding stores requests in a persistent queue as their bytes.
type queueEncoding struct{}

func (queueEncoding) Marshal(_ context.Context, r xexporterhelper.Request) ([]byte, error) {
	req, ok := r.(*request)
	if !ok {
		return nil, fmt.Errorf("persist a %T", r)
	}
	return req.data, nil
}

func (queueEncoding) Unmarshal(data []byte) (context.Context, xexporterhelper.Request, error) {
	var b wire.Batch
	if err := wire.Scan(data, &b); err != nil {
		return nil, nil, fmt.Errorf("read a persisted request: %w", err)
	}
	return context.Background(), &request{data: data, spans: len(b.Spans)}, nil
}

// rawMessage is a message whose encoding the caller already has (sending) or
// wants as is (answers).
type rawMessage struct{ data []byte }

// rawCodec sends and receives rawMessages without re-encoding them.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("raw codec cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.data)}, nil
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
