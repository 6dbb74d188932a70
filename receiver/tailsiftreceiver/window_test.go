package tailsiftreceiver

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// serverFrames reads, on the client's side of a connection, the HTTP/2
// frames the server sends: it counts the pings and keeps the stream window
// that the server's SETTINGS give.
type serverFrames struct {
	mu           sync.Mutex
	pings        int
	streamWindow uint32
}

// tap is a client connection whose reads are copied to a frame reader.
type tap struct {
	net.Conn
	w *io.PipeWriter
}

func (c *tap) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		_, _ = c.w.Write(p[:n])
	}
	return n, err
}

func (c *tap) Close() error {
	_ = c.w.Close()
	return c.Conn.Close()
}

func (f *serverFrames) read(r io.Reader) {
	fr := http2.NewFramer(io.Discard, r)
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			_, _ = io.Copy(io.Discard, r) // keep the tap's writes from blocking
			return
		}
		f.mu.Lock()
		switch fr := frame.(type) {
		case *http2.PingFrame:
			if !fr.IsAck() {
				f.pings++
			}
		case *http2.SettingsFrame:
			if v, ok := fr.Value(http2.SettingInitialWindowSize); ok {
				f.streamWindow = v
			}
		}
		f.mu.Unlock()
	}
}

// TestGRPCServerWindowsFixed: the gRPC server's flow-control windows are
// fixed (grpcServerOptions), so that gRPC's bandwidth estimator, which
// pings the client at every burst of data it receives, is off. Requests of
// 300 KB, more than the default 64 KiB window, are served with no ping
// from the server.
func TestGRPCServerWindowsFixed(t *testing.T) {
	g := newRig(t, testConfig(), consumertest.NewNop())
	frames := &serverFrames{}
	conn, err := grpc.NewClient(g.r.grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			pr, pw := io.Pipe()
			go frames.read(pr)
			return &tap{Conn: c, w: pw}, nil
		}))
	require.NoError(t, err)
	require.NoError(t, g.conn.Close())
	g.conn = conn // the rig's cleanup closes it

	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range 1000 {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID([16]byte{byte(i), byte(i >> 8), 1})
		s.SetSpanID([8]byte{byte(i), byte(i >> 8), 1})
		s.SetName("GET /api/v1/items")
		s.Attributes().PutStr("payload", strings.Repeat("x", 256))
	}
	body := marshal(t, td)
	require.Greater(t, len(body), 256<<10)
	for range 20 {
		_, err := g.grpcExport(context.Background(), body)
		require.NoError(t, err)
	}
	require.NoError(t, conn.Close())

	frames.mu.Lock()
	defer frames.mu.Unlock()
	assert.Equal(t, uint32(grpcStreamWindow), frames.streamWindow, "the server's SETTINGS give its fixed stream window")
	assert.Zero(t, frames.pings, "the server pinged the client: its bandwidth estimator is on")
}
