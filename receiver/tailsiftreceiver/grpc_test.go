package tailsiftreceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// countingExporter is an exporter that counts its calls and answers empty.
type countingExporter struct {
	info  grpc.UnaryServerInfo
	calls int
	last  []byte
}

func (c *countingExporter) exportGRPC(_ context.Context, req []byte, free func()) ([]byte, error) {
	c.calls++
	c.last = req
	if free != nil {
		free()
	}
	return nil, nil
}

func (c *countingExporter) unaryInfo() *grpc.UnaryServerInfo { return &c.info }

func (c *countingExporter) enter() bool { return true }

func (c *countingExporter) leave() {}

// TestExportHandlerAllocations: an Export call allocates its request message
// and nothing else in exportHandler, with or without an interceptor (the
// handler interceptors call is a package function, not a closure per call).
func TestExportHandlerAllocations(t *testing.T) {
	srv := &countingExporter{}
	srv.info = grpc.UnaryServerInfo{Server: srv, FullMethod: exportMethod}
	body := []byte{0x0a, 0x00}
	dec := func(v any) error {
		v.(*rawMessage).b = body
		return nil
	}
	passThrough := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod != exportMethod {
			return nil, assert.AnError
		}
		return h(ctx, req)
	}
	ctx := context.Background()
	for name, ic := range map[string]grpc.UnaryServerInterceptor{"no interceptor": nil, "interceptor": passThrough} {
		t.Run(name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				out, err := exportHandler(srv, ctx, dec, ic)
				if err != nil || out != emptyResponse {
					t.Fatalf("exportHandler: %v, %v", out, err)
				}
			})
			assert.Equal(t, 1.0, allocs, "allocations per call: the request message only")
			require.Positive(t, srv.calls)
			assert.Equal(t, body, srv.last)
		})
	}
}
