package routertest

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// Hung is a gateway that accepts connections and Export calls and answers
// none: each call waits until its caller gives up (a wedged process, a
// paused VM, a black-holed address behind a proxy that accepts).
type Hung struct {
	ptraceotlp.UnimplementedGRPCServer
	calls atomic.Int64
}

// Export waits for its caller to give up.
func (h *Hung) Export(ctx context.Context, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return ptraceotlp.NewExportResponse(), ctx.Err()
}

// Calls is the number of Export calls the gateway took (and never
// answered).
func (h *Hung) Calls() int64 { return h.calls.Load() }

// StartHung starts a Hung gateway on host (port chosen by the system) and
// returns it and its address; it stops when the test ends.
func StartHung(t *testing.T, host string) (*Hung, string) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	h := &Hung{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, h)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return h, l.Addr().String()
}
