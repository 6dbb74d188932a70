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
}

// Validate checks the exporter's own settings; the members block, the gRPC
// client and the queue validate themselves.
func (c *Config) Validate() error {
	if c.GRPC.Endpoint != "" {
		return fmt.Errorf("grpc::endpoint: must be empty, the members block gives each member's address (got %q)", c.GRPC.Endpoint)
	}
	if q := c.Queue.Get(); c.Queue.HasValue() && q != nil && q.Batch.HasValue() {
		if b := q.Batch.Get(); b.Sizer != exporterhelper.RequestSizerTypeItems {
			return fmt.Errorf("sending_queue::batch::sizer: only items is supported, got %q", b.Sizer.String())
		}
	}
	return nil
}
