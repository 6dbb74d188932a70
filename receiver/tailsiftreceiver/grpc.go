package tailsiftreceiver

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// The OTLP trace service, served without generated protobuf types: requests
// arrive as their encoded bytes and responses leave pre-encoded.
const (
	traceServiceName = "opentelemetry.proto.collector.trace.v1.TraceService"
	exportMethod     = "/" + traceServiceName + "/Export"
)

// rawMessage is an encoded protobuf message that rawCodec passes through.
// For a received one, free returns its memory to gRPC's pool once the
// trace buffer is done with it (nil when there is nothing to return).
type rawMessage struct {
	b    []byte
	free func()
	// srv is the server a received request is for: exportHandler sets it,
	// so that handleExport, which interceptors call, needs no closure (one
	// allocation less per call).
	srv exporter
}

// rawCodec is the gRPC codec of the receiver's server. It is forced on the
// whole server (grpc.ForceServerCodecV2), so it hands any other message type
// to the standard proto codec; only *rawMessage skips (un)marshaling.
type rawCodec struct {
	fallback encoding.CodecV2
	pool     mem.BufferPool // where a request in several buffers is gathered
}

func newRawCodec(pool mem.BufferPool) rawCodec {
	return rawCodec{fallback: encoding.GetCodecV2(proto.Name), pool: pool}
}

// Marshal implements encoding.CodecV2.
func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMessage); ok {
		if len(m.b) == 0 {
			return nil, nil
		}
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.fallback.Marshal(v)
}

// Unmarshal implements encoding.CodecV2. gRPC reuses its buffers once this
// returns unless they are referenced: a request in one buffer is referenced
// and used in place, one in several is gathered into a buffer from gRPC's
// pool; either way m.free hands the memory back once the trace buffer,
// which copies what it keeps, is done with it. A request that never
// reaches the buffer is left to the garbage collector.
func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*rawMessage); ok {
		switch len(data) {
		case 0:
			m.b, m.free = nil, nil
		case 1:
			data.Ref()
			m.b, m.free = data[0].ReadOnlyData(), data.Free
		default:
			buf := data.MaterializeToBuffer(c.pool)
			m.b, m.free = buf.ReadOnlyData(), buf.Free
		}
		return nil
	}
	return c.fallback.Unmarshal(data, v)
}

// Name implements encoding.CodecV2; responses go out as application/grpc+proto.
func (rawCodec) Name() string { return proto.Name }

// exporter handles one Export call's request bytes; free, when not nil,
// must be called once req is read no more.
type exporter interface {
	exportGRPC(ctx context.Context, req []byte, free func()) ([]byte, error)
	// unaryInfo is the UnaryServerInfo of its Export calls, built once:
	// interceptors only read it.
	unaryInfo() *grpc.UnaryServerInfo
	// enter admits a call, unless shutting down; an admitted call ends
	// with leave.
	enter() bool
	leave()
}

// emptyResponse is the success response, shared: Marshal only reads it.
var emptyResponse = &rawMessage{}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: traceServiceName,
	HandlerType: (*exporter)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: exportHandler}},
	Streams:     []grpc.StreamDesc{},
	Metadata:    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// exportHandler is what protoc-gen-go-grpc would generate, on rawMessage.
func exportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	e := srv.(exporter)
	// The interceptors (authentication) run admitted: Shutdown waits for
	// them too. A call refused is not decoded.
	if !e.enter() {
		return nil, retryable(shuttingDown).Err()
	}
	defer e.leave()
	in := &rawMessage{srv: e}
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return handleExport(ctx, in)
	}
	return interceptor(ctx, in, in.srv.unaryInfo(), handleExport)
}

// handleExport is the Export call's grpc.UnaryHandler: req is the
// *rawMessage exportHandler decoded.
func handleExport(ctx context.Context, req any) (any, error) {
	m := req.(*rawMessage)
	out, err := m.srv.exportGRPC(ctx, m.b, m.free)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return emptyResponse, nil
	}
	return &rawMessage{b: out}, nil
}
