// Package routertest has in-process OTLP gateways and a trace workload for
// tests of routing by trace ID: the router's, the tailsift exporter's and
// the gateways' cluster block's.
package routertest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// Received is where a gateway saw a span, and under which resource.
type Received struct {
	Gateway string
	TraceID [16]byte
	Service string
}

// Gateways are in-process OTLP gRPC servers on loopback addresses, one port,
// recording every span they get.
type Gateways struct {
	t      *testing.T
	mu     sync.Mutex
	spans  map[[8]byte][]Received // by span ID: more than one is a duplicate
	srvs   map[string]*grpc.Server
	calls  map[string]int     // Export calls answered, by gateway
	refuse map[string][]error // answers of the next calls, by gateway
	order  map[[16]byte][][8]byte
	opts   []grpc.ServerOption
}

// StartGateways starts a gateway on each of hosts, on one port, and
// returns their addresses; they stop when the test ends. Their gRPC
// servers have the defaults: a 4 MiB receive limit.
func StartGateways(t *testing.T, hosts ...string) (*Gateways, []string) {
	t.Helper()
	return StartGatewaysWith(t, nil, hosts...)
}

// StartGatewaysWith is StartGateways with opts for every gateway's gRPC
// server, such as grpc.MaxRecvMsgSize.
func StartGatewaysWith(t *testing.T, opts []grpc.ServerOption, hosts ...string) (*Gateways, []string) {
	t.Helper()
	g := &Gateways{
		t: t, spans: map[[8]byte][]Received{}, srvs: map[string]*grpc.Server{},
		calls: map[string]int{}, refuse: map[string][]error{}, order: map[[16]byte][][8]byte{}, opts: opts,
	}
	first, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(first.Addr().String())
	require.NoError(t, err)
	addrs := []string{first.Addr().String()}
	g.serve(addrs[0], first)
	for _, h := range hosts[1:] {
		addr := net.JoinHostPort(h, port)
		addrs = append(addrs, addr)
		g.Start(addr)
	}
	t.Cleanup(func() {
		for _, a := range addrs {
			g.Stop(a)
		}
	})
	return g, addrs
}

// Start starts (again) the gateway at addr.
func (g *Gateways) Start(addr string) {
	g.t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(g.t, err)
	g.serve(addr, l)
}

func (g *Gateways) serve(addr string, l net.Listener) {
	srv := grpc.NewServer(g.opts...)
	ptraceotlp.RegisterGRPCServer(srv, &gatewayServer{g: g, addr: addr})
	g.mu.Lock()
	g.srvs[addr] = srv
	g.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Stop kills the gateway at addr: its listener and connections close once
// the calls in flight are answered. (A gateway killed before answering a call
// it processed gets that call again elsewhere: delivery is at least once.)
func (g *Gateways) Stop(addr string) {
	g.mu.Lock()
	srv := g.srvs[addr]
	delete(g.srvs, addr)
	g.mu.Unlock()
	if srv != nil {
		srv.GracefulStop()
	}
}

// Count is the number of distinct spans received.
func (g *Gateways) Count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.spans)
}

// Snapshot returns a copy of what the gateways received.
func (g *Gateways) Snapshot() map[[8]byte][]Received {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[[8]byte][]Received, len(g.spans))
	for k, v := range g.spans {
		out[k] = append([]Received(nil), v...)
	}
	return out
}

// Order returns the span IDs of each trace in the order the gateways
// received them.
func (g *Gateways) Order() map[[16]byte][][8]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[[16]byte][][8]byte, len(g.order))
	for k, v := range g.order {
		out[k] = append([][8]byte(nil), v...)
	}
	return out
}

// Calls is the number of Export calls the gateway at addr has answered,
// refusals included.
func (g *Gateways) Calls(addr string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[addr]
}

// Refuse makes the gateway at addr answer its next len(errs) Export calls
// with errs, in order, without recording their spans.
func (g *Gateways) Refuse(addr string, errs ...error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refuse[addr] = append(g.refuse[addr], errs...)
}

type gatewayServer struct {
	ptraceotlp.UnimplementedGRPCServer
	g    *Gateways
	addr string
}

func (s *gatewayServer) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.calls[s.addr]++
	if errs := s.g.refuse[s.addr]; len(errs) > 0 {
		s.g.refuse[s.addr] = errs[1:]
		return ptraceotlp.NewExportResponse(), errs[0]
	}
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s.g.spans[sp.SpanID()] = append(s.g.spans[sp.SpanID()], Received{Gateway: s.addr, TraceID: sp.TraceID(), Service: svc.Str()})
				s.g.order[sp.TraceID()] = append(s.g.order[sp.TraceID()], sp.SpanID())
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// Workload makes batches of traces with unique IDs: each batch holds traces
// traces of spans spans each, spread over two services and two scopes.
type Workload struct {
	next uint64
}

// Batch returns the next batch.
func (w *Workload) Batch(traces, spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	var scopes []ptrace.SpanSlice
	for s := range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
		for sc := range 2 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("scope-%d", sc))
			scopes = append(scopes, ss.Spans())
		}
	}
	for range traces {
		w.next++
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], w.next*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(tid[8:], w.next)
		for j := range spans {
			w.next++
			sp := scopes[(int(w.next)+j)%len(scopes)].AppendEmpty()
			sp.SetTraceID(tid)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], w.next)
			sp.SetSpanID(sid)
			sp.SetName("op")
			sp.Attributes().PutInt("i", int64(j))
		}
	}
	return td
}

// Pad gives the n-th span of td (in order) an attribute "pad" of size(n)
// bytes: large spans, such as those with stack traces or big events.
func Pad(td ptrace.Traces, size func(n int) int) {
	n := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				sp.Attributes().PutStr("pad", strings.Repeat("x", size(n)))
				n++
			}
		}
	}
}

// ServiceOf returns the service.name each span of td was sent under.
func ServiceOf(td ptrace.Traces) map[[8]byte]string {
	out := map[[8]byte]string{}
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out[sp.SpanID()] = svc.Str()
			}
		}
	}
	return out
}

// PartialSuccessResponse encodes an ExportTraceServiceResponse with a partial
// success.
func PartialSuccessResponse(t *testing.T, rejected int64, msg string) []byte {
	t.Helper()
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(rejected)
	resp.PartialSuccess().SetErrorMessage(msg)
	b, err := resp.MarshalProto()
	require.NoError(t, err)
	return b
}
