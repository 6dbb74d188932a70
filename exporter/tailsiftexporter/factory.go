package tailsiftexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/router"
)

// NewFactory returns the tailsift exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	grpc := configgrpc.NewDefaultClientConfig()
	grpc.Compression = configcompression.TypeZstd
	// A send to a gateway that cannot be reached fails at once, so that its
	// spans fail over instead of waiting for the connection.
	grpc.WaitForReady = false
	// As the otlp exporter: a request goes out in one write, not one per
	// 32 KiB (gRPC's default), which halves the agent's write syscalls.
	grpc.WriteBufferSize = 512 * 1024
	return &Config{
		Members: membership.NewDefaultConfig(),
		GRPC:    grpc,
		Failover: router.FailoverConfig{
			Attempts:      2,
			Backoff:       100 * time.Millisecond,
			ProbeInterval: time.Second,
			// A gateway that leaves two sends in a row unanswered for the
			// whole timeout (5 s each) is down: its spans fail over.
			Timeouts: 2,
		},
		Timeout: exporterhelper.NewDefaultTimeoutConfig(),
		Queue:   configoptional.Some(defaultQueue()),
		Retry:   configretry.NewDefaultBackOffConfig(),

		MaxRequestBytes: defaultMaxRequestBytes,
	}
}

// defaultMaxRequestBytes is 3.5 MiB: under the 4 MiB that gRPC servers
// receive by default (max_recv_msg_size_mib of the otlp and the tailsift
// receivers), with an eighth of it spare for
// what may re-encode a request on the way (a proxy, or a gateway that
// forwards a share under its own control field and framing). Batches of
// the default 2048 spans stay under it up to about 1.7 KiB per span, so
// that for ordinary spans the span count, not this cap, cuts batches.
const defaultMaxRequestBytes = 7 << 19

// Each member's queue batches what it is handed across incoming requests:
// an agent that sends each gateway its share of every request makes one
// Export call per request and gateway, and a call costs the agent more
// than the spans it carries (gRPC and HTTP/2 framing, syscalls, a
// compressor per message). Batches are flushed after at most
// defaultBatchLinger (exporterhelper's and the batch processor's 200 ms),
// or once they hold defaultBatchMin spans; they hold at most
// defaultBatchMax (about 0.5 MB at 250 B per span), and at most
// defaultMaxRequestBytes, which cuts batches of large spans. At 20 000
// spans/s over three gateways, 200 ms rather than 100 ms means 0.37 calls
// per incoming request rather than 0.65 (with the router's fixed windows, a
// third fewer context switches in the agent).
const (
	defaultBatchLinger = 200 * time.Millisecond
	defaultBatchMin    = 2048
	defaultBatchMax    = 2048
)

// defaultQueueBytes bounds each member's sending queue in bytes of encoded
// requests (sizer: bytes): 64 MiB, about 3 s of a gateway's share at
// 20 000 spans/s of 500 B spans over one gateway, 20 s over six. In
// requests (exporterhelper's default, 1000) a queue of batches held up to
// 1000 × max_request_bytes: 3.5 GB for one slow gateway.
const defaultQueueBytes = 64 << 20

func defaultQueue() exporterhelper.QueueBatchConfig {
	q := exporterhelper.NewDefaultQueueConfig()
	q.Sizer = exporterhelper.RequestSizerTypeBytes
	q.QueueSize = defaultQueueBytes
	q.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: defaultBatchLinger,
		Sizer:        exporterhelper.RequestSizerTypeItems,
		MinSize:      defaultBatchMin,
		MaxSize:      defaultBatchMax,
	})
	return q
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	return newExporter(ctx, set, cfg.(*Config))
}
