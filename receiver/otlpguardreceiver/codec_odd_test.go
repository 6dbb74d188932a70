package otlpguardreceiver

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/tailsift/tailsift/internal/otlpguard"
	"github.com/tailsift/tailsift/internal/otlpguard/otlpguardtest"
)

// TestGRPCCodecOddMessages: odd messages (random bytes, mutated and cut
// requests, a deep request padded past several HTTP/2 frames) through the
// real gRPC server and the guard's codec, concurrently: the process
// survives, and a normal request still goes through after them.
func TestGRPCCodecOddMessages(t *testing.T) {
	r := startReceiver(t, nil)
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sc := range signalCases {
		normal := sc.normal(t)
		deep := otlpguardtest.Request(sc.deepPath, otlpguardtest.NestedAnyValue(otlpguard.MaxDepth+1))
		msgs := [][]byte{{}, {0xff}, {0x0a}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, normal[:len(normal)/2], deep[:len(deep)-1]}
		for range 200 {
			b := make([]byte, rng.IntN(64))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			msgs = append(msgs, b)
		}
		for range 200 { // mutations of a valid request
			b := append([]byte(nil), normal...)
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = byte(rng.Uint32())
			}
			msgs = append(msgs, b)
		}
		// Large: a deep request padded past several HTTP/2 frames.
		big := append(append([]byte(nil), normal...), deep...)
		for len(big) < 300<<10 {
			big = append(big, normal...)
		}
		msgs = append(msgs, big)
		codes := map[string]int{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, m := range msgs {
			wg.Go(func() {
				var reply []byte
				err := conn.Invoke(ctx, sc.method, m, &reply, grpc.ForceCodec(rawCodec{}))
				mu.Lock()
				codes[grpcstatus.Code(err).String()]++
				if grpcstatus.Code(err).String() == "Internal" && codes["Internal"] <= 2 {
					t.Logf("Internal for %x...: %v", m[:min(len(m), 16)], err)
				}
				mu.Unlock()
				_ = i
			})
		}
		wg.Wait()
		var reply []byte
		require.NoError(t, conn.Invoke(ctx, sc.method, normal, &reply, grpc.ForceCodec(rawCodec{})))
		cancel()
		t.Logf("%v: %d odd messages, codes %v", sc.sig, len(msgs), codes)
	}
}
