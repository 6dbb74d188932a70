package otlpguardreceiver

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/otlpguard"
)

var _ extensionmiddleware.GRPCServer = (*guard)(nil)

// GetGRPCServerOptions returns a codec that checks a request's bytes before
// pdata's codec decodes them, and an interceptor that answers the refusals
// with InvalidArgument.
//
// A gRPC interceptor alone runs too late: the generated handler decodes the
// request before it calls the interceptors. A codec runs early enough, but
// grpc-go turns any error a codec returns into codes.Internal. So the codec
// leaves a too-deep request undecoded (empty) and records why, and the
// interceptor, which receives that very request value, answers
// InvalidArgument with the reason instead of calling the receiver.
func (g *guard) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	c := &codec{delegate: encoding.GetCodecV2(codecName), refused: g.refused}
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(c),
		grpc.ChainUnaryInterceptor(g.intercept),
	}, nil
}

func (g *guard) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err, ok := g.refused.take(req); ok {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return handler(ctx, req)
}

// codecName is the content subtype of protobuf gRPC; pdata registers its
// own codec for OTLP messages under it, which the guard's codec delegates to.
const codecName = "proto"

type codec struct {
	delegate encoding.CodecV2
	refused  *refusals
}

func (c *codec) Name() string { return codecName }

func (c *codec) Marshal(v any) (mem.BufferSlice, error) { return c.delegate.Marshal(v) }

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	sig, ok := signalOf(v)
	if !ok {
		return c.delegate.Unmarshal(data, v)
	}
	// One contiguous buffer (a reference, not a copy, when the message came
	// in one piece), which pdata's codec then takes without copying again.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := otlpguard.Check(sig, buf.ReadOnlyData()); err != nil {
		if c.refused.add(v, err) {
			return nil
		}
		// Too many refusals in flight: still refuse, as Internal.
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return c.delegate.Unmarshal(mem.BufferSlice{buf}, v)
}

// pdataInternal is the package of the request types pdata's gRPC services
// decode into; they are not exported, so they are recognised by name (a
// test runs the real services to catch a rename).
const pdataInternal = "go.opentelemetry.io/collector/pdata/internal"

var requestSignals = map[string]otlpguard.Signal{
	"ExportTraceServiceRequest":    otlpguard.Traces,
	"ExportMetricsServiceRequest":  otlpguard.Metrics,
	"ExportLogsServiceRequest":     otlpguard.Logs,
	"ExportProfilesServiceRequest": otlpguard.Profiles,
}

func signalOf(v any) (otlpguard.Signal, bool) {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().PkgPath() != pdataInternal {
		return 0, false
	}
	sig, ok := requestSignals[t.Elem().Name()]
	return sig, ok
}

// maxRefusals bounds the refusals waiting for the interceptor. An entry
// normally lives for microseconds: the interceptor runs right after the
// codec. It stays only when an earlier interceptor (authentication) ends
// the call first; such entries are dropped once older than refusalTTL.
const (
	maxRefusals = 1024
	refusalTTL  = time.Minute
)

// refusals maps the request values the codec refused to the reason.
type refusals struct {
	now     func() time.Time
	pending atomic.Int64 // len(byReq), read without the lock on every call
	mu      sync.Mutex
	byReq   map[any]refusal
}

type refusal struct {
	err error
	at  time.Time
}

func newRefusals(now func() time.Time) *refusals {
	return &refusals{now: now, byReq: map[any]refusal{}}
}

// add records that req was refused for err; it returns false when too many
// refusals are pending.
func (r *refusals) add(req any, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.byReq) >= maxRefusals {
		for k, e := range r.byReq {
			if now.Sub(e.at) > refusalTTL {
				delete(r.byReq, k)
			}
		}
		if len(r.byReq) >= maxRefusals {
			return false
		}
	}
	r.byReq[req] = refusal{err: err, at: now}
	r.pending.Store(int64(len(r.byReq)))
	return true
}

// take returns and forgets the reason req was refused, if it was.
func (r *refusals) take(req any) (error, bool) {
	if r.pending.Load() == 0 {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byReq[req]
	if ok {
		delete(r.byReq, req)
		r.pending.Store(int64(len(r.byReq)))
	}
	return e.err, ok
}
