package cluster

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/router/routertest"
)

// decidingBuffer is a traceBuffer that also remembers kept decisions, all
// of traces other members own (a draining gateway owns none), as the
// real buffer lists them: decide moves the traces it holds to them.
type decidingBuffer struct {
	*traceBuffer
	kept []Kept
}

func (b *decidingBuffer) ForeignDecisions(context.Context, int, func(uint64) bool) (Decisions, error) {
	return Decisions{Kept: append([]Kept(nil), b.kept...)}, nil
}

// decide keeps every trace held here (they went quiet) and returns how
// many.
func (b *decidingBuffer) decide() int {
	held := b.held()
	for id := range held {
		b.kept = append(b.kept, Kept{ID: id})
	}
	b.empty()
	return len(held)
}

// spansRefusingGate wraps a gate's server: a request with spans is
// refused (an overloaded gateway), one with decisions only is taken.
type spansRefusingGate struct{ *gate }

func (g spansRefusingGate) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if req.Traces().SpanCount() > 0 {
		g.calls.Add(1)
		return ptraceotlp.NewExportResponse(), status.Error(codes.ResourceExhausted, "overloaded")
	}
	return g.gate.Export(ctx, req)
}

// startGateWith is startGate with the server wrap makes of the gate.
func startGateWith(t *testing.T, wrap func(*gate) ptraceotlp.GRPCServer) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &gate{addr: l.Addr().String(), got: map[[16]byte]int{}, kept: map[[16]byte]int{}, srv: grpc.NewServer()}
	ptraceotlp.RegisterGRPCServer(g.srv, wrap(g))
	go func() { _ = g.srv.Serve(l) }()
	t.Cleanup(g.srv.Stop)
	return g
}

// TestDrainSendsDecisionsMadeSinceLastSweep: a draining gateway's first
// sweep hands its decisions over to a, but a refuses the traces (it is
// overloaded), which are given back to be decided here. They go quiet and
// are decided here before the next sweep; their owner is a, where the
// agents send their late spans. The next sweep, the member set unchanged,
// must hand those new decisions over (a would decide the late spans
// afresh: a kept trace's late spans without an ERROR dropped), and not
// the ones a took already.
func TestDrainSendsDecisionsMadeSinceLastSweep(t *testing.T) {
	a := startGateWith(t, func(g *gate) ptraceotlp.GRPCServer { return spansRefusingGate{g} })
	var w routertest.Workload
	buf := &decidingBuffer{traceBuffer: newTraceBuffer(t, w.Batch(20, 2))}
	for i := range 40 {
		buf.kept = append(buf.kept, Kept{ID: [16]byte{byte(i), 1, 2, 3}})
	}
	obs := &decisionObserver{}
	n, _ := moveNode(t, buf, obs, nil, a.addr)
	n.BeginDrain()
	n.HandOver(context.Background())
	require.Len(t, a.decisions(), 40, "the first sweep's decisions at a")
	require.Len(t, buf.held(), 20, "the traces given back here")

	decided := buf.decide()
	n.HandOver(context.Background()) // the next sweep
	got := a.decisions()
	missing, twice := 0, 0
	for _, k := range buf.kept {
		switch got[k.ID] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	t.Logf("decisions at a: %d of %d (%d decided here after the first sweep); missing %d, taken twice %d; counted handed over %d",
		len(got), len(buf.kept), decided, missing, twice, obs.handed.Load())
	assert.Zero(t, missing, "every decision at a")
	assert.Zero(t, twice, "none twice")
	assert.Equal(t, int64(len(buf.kept)), obs.handed.Load(), "each counted once")
}
