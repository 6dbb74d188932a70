package tailsiftexporter

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/tailsift/tailsift/internal/membership"
)

// Config is the tailsift exporter's configuration.
type Config struct {
	// Members are the gateways spans are routed to.
	Members membership.Config `mapstructure:"members"`
	// GRPC is the client every member's connection is made from; its
	// endpoint is the member's address and must be left empty here.
	GRPC configgrpc.ClientConfig `mapstructure:"grpc"`
	// Failover says when a member is marked down and how it is probed.
	Failover FailoverConfig `mapstructure:"failover"`
	// Timeout bounds one send to a member.
	Timeout exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// Queue is each member's sending queue.
	Queue configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// Retry retries what a member refused for another reason than being
	// down (down members' spans fail over instead).
	Retry configretry.BackOffConfig `mapstructure:"retry_on_failure"`
}

// FailoverConfig says when a member is marked down and how it is probed.
type FailoverConfig struct {
	// Attempts is how many sends in a row a member may refuse (connection
	// refused or UNAVAILABLE without RetryInfo) before it is marked down.
	Attempts int `mapstructure:"attempts"`
	// Backoff is the wait between those sends.
	Backoff time.Duration `mapstructure:"backoff"`
	// ProbeInterval is the time between two probes of a down member. The
	// member is up again as soon as a probe gets an answer.
	ProbeInterval time.Duration `mapstructure:"probe_interval"`
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

// Validate checks the failover settings.
func (c *FailoverConfig) Validate() error {
	switch {
	case c.Attempts < 1:
		return fmt.Errorf("attempts: must be at least 1, got %d", c.Attempts)
	case c.Backoff < 0:
		return fmt.Errorf("backoff: must not be negative, got %v", c.Backoff)
	case c.ProbeInterval <= 0:
		return fmt.Errorf("probe_interval: must be positive, got %v", c.ProbeInterval)
	}
	return nil
}

var errNoMembers = errors.New("no member known yet")
