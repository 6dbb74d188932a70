package tailsiftexporter

import (
	"fmt"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/router"
)

// Config is the tailsift exporter's configuration.
type Config struct {
	// Members are the gateways spans are routed to.
	Members membership.Config `mapstructure:"members"`
	// GRPC is the client every member's connection is made from; its
	// endpoint is the member's address and must be left empty here.
	GRPC configgrpc.ClientConfig `mapstructure:"grpc"`
	// Failover says when a member is marked down and how it is probed.
	Failover router.FailoverConfig `mapstructure:"failover"`
	// Timeout bounds one send to a member.
	Timeout exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// Queue is each member's sending queue.
	Queue configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// Retry retries what a member refused for another reason than being
	// down (down members' spans fail over instead).
	Retry configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// MaxRequestBytes caps each request sent to a member: the size of the
	// encoded ExportTraceServiceRequest before compression, which is what
	// a gateway's gRPC receive limit checks. Batches are sent before they
	// would grow past it, a member's share of a larger incoming request is
	// cut to fit, and a span bigger by itself is sent alone (and counted in
	// exporter_tailsift_spans_oversized). 0 is no cap.
	MaxRequestBytes int `mapstructure:"max_request_bytes"`
}

// Validate checks the exporter's own settings; the members block, the gRPC
// client and the queue validate themselves.
func (c *Config) Validate() error {
	if c.MaxRequestBytes < 0 {
		return fmt.Errorf("max_request_bytes: must not be negative (0 is no cap), got %d", c.MaxRequestBytes)
	}
	if c.Timeout.Timeout <= 0 {
		// exporterhelper takes 0 as no time-out: a member that accepts the
		// connection and never answers would hold its sends for ever, and
		// failover::timeouts could never find it hung.
		return fmt.Errorf("timeout: must be positive (a send to a member that never answers would wait for ever), got %v", c.Timeout.Timeout)
	}
	if c.GRPC.Endpoint != "" {
		return fmt.Errorf("grpc::endpoint: must be empty, the members block gives each member's address (got %q)", c.GRPC.Endpoint)
	}
	q := c.Queue.Get()
	if !c.Queue.HasValue() || q == nil {
		return nil
	}
	if q.Batch.HasValue() {
		if b := q.Batch.Get(); b.Sizer != exporterhelper.RequestSizerTypeItems {
			return fmt.Errorf("sending_queue::batch::sizer: only items is supported, got %q "+
				"(a batch block takes sending_queue::sizer when it sets none: add sizer: items to it)", b.Sizer.String())
		}
	}
	// The queue is sized in bytes by default: a queue_size meant as a
	// count of requests would hold nothing.
	if q.Sizer == exporterhelper.RequestSizerTypeBytes && c.MaxRequestBytes > 0 && q.QueueSize < int64(c.MaxRequestBytes) {
		return fmt.Errorf("sending_queue::queue_size: in bytes (sending_queue::sizer is bytes, the default) it must hold one request of max_request_bytes (%d), got %d; "+
			"for a count of requests set sizer: requests", c.MaxRequestBytes, q.QueueSize)
	}
	// Without a cap (max_request_bytes: 0) a request is as large as its
	// batch: a queue of 5000 bytes, meant as 5000 requests, refused every
	// request larger, retryably, for ever.
	if q.Sizer == exporterhelper.RequestSizerTypeBytes && c.MaxRequestBytes == 0 && q.QueueSize < minUncappedQueueBytes {
		return fmt.Errorf("sending_queue::queue_size: in bytes (sending_queue::sizer is bytes, the default) with no max_request_bytes it must be at least %d, "+
			"a request of the otlp receiver's default size limit, got %d; for a count of requests set sizer: requests", minUncappedQueueBytes, q.QueueSize)
	}
	return nil
}

// minUncappedQueueBytes is the least queue_size in bytes without
// max_request_bytes: 4 MiB, the largest request an otlp receiver takes by
// default.
const minUncappedQueueBytes = 4 << 20
