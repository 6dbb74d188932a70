// Package cluster is the gateways' side of scale-out: the `cluster` block of
// the tailsift processor and receiver, and the Node that runs it. A gateway
// with a cluster block knows the ring of gateways (the same ring and the
// same members block as the agents' tailsift exporter), forwards the spans
// of traces it does not own to their owner, hands its buffered traces and
// recent decisions over when the ring changes, and drains on shutdown.
package cluster // import "github.com/tailsift/tailsift/internal/cluster"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"

	"github.com/tailsift/tailsift/internal/membership"
)

// Config is the cluster block:
//
//	cluster:
//	  self: ${env:POD_IP}:4317
//	  members: {dns: {hostname: gateways.tailsift.svc, port: 4317}}
//	  drain: 15s
//	  handover: {enabled: true, settle: 5s, bytes_per_second: 33554432, max_bytes: 268435456, timeout: 10s}
//	  grpc: {tls: {insecure: true}}
type Config struct {
	// Self is this gateway's address exactly as the members block lists
	// it (host:port): the member the ring must not forward to.
	Self string `mapstructure:"self"`
	// Members are the gateways of the cluster, this one included; the
	// same block as the tailsift exporter's.
	Members membership.Config `mapstructure:"members"`
	// Drain is how long a gateway that is shutting down keeps receiving,
	// forwarding what arrives to the remaining members, before it exits:
	// the time agents and the other gateways need to see it leave (one
	// DNS interval, plus their failover delay). Its buffer is handed over
	// as the drain begins. 0 skips it.
	Drain time.Duration `mapstructure:"drain"`
	// Handover says how buffered traces and decisions move to their new
	// owner when the ring changes.
	Handover HandoverConfig `mapstructure:"handover"`
	// Budget is what the budget block's limits apply to: "local" (the
	// default), each gateway, so that a fleet of N keeps up to N times
	// them; or "shared", the whole cluster: the members report their
	// demand to each other every second and each takes its share
	// (docs/scale-out.md, "Fleet-wide budget").
	Budget string `mapstructure:"budget"`
	// GRPC is the client the gateway forwards and hands over with; each
	// member's address is its endpoint, which must be left empty here.
	GRPC configgrpc.ClientConfig `mapstructure:"grpc"`
}

// HandoverConfig bounds the handover that follows a ring change.
type HandoverConfig struct {
	// Enabled turns handover on. Off, the traces buffered here when the
	// ring changes are decided here, split from their later spans, which
	// go to the new owner.
	Enabled bool `mapstructure:"enabled"`
	// Settle is how long the member set must stay unchanged before a
	// handover starts (hysteresis): a member that flaps within it moves
	// nothing. Spans that arrive meanwhile already go to the new owner.
	Settle time.Duration `mapstructure:"settle"`
	// BytesPerSecond limits the rate of handover sends, in OTLP bytes.
	BytesPerSecond int64 `mapstructure:"bytes_per_second"`
	// MaxBytes bounds one handover; traces past it are decided here.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// Timeout bounds one handover; traces not handed over by then are
	// decided here.
	Timeout time.Duration `mapstructure:"timeout"`
}

// The values of cluster::budget.
const (
	BudgetLocal  = "local"
	BudgetShared = "shared"
)

// NewDefaultConfig returns the defaults of a cluster block.
func NewDefaultConfig() Config {
	grpc := configgrpc.NewDefaultClientConfig()
	grpc.Compression = configcompression.TypeZstd
	// A send to a member that cannot be reached fails at once, so that the
	// traces are decided here rather than waiting for it.
	grpc.WaitForReady = false
	return Config{
		Members: membership.NewDefaultConfig(),
		Drain:   15 * time.Second,
		Budget:  BudgetLocal,
		Handover: HandoverConfig{
			Enabled:        true,
			Settle:         5 * time.Second,
			BytesPerSecond: 32 << 20,
			MaxBytes:       256 << 20,
			Timeout:        10 * time.Second,
		},
		GRPC: grpc,
	}
}

// Validate checks the cluster's own settings; the members block and the
// gRPC client validate themselves.
func (c *Config) Validate() error {
	if c.Self == "" {
		return errors.New("self: must be this gateway's host:port as the members block lists it")
	}
	if err := membership.ValidateHostPort(c.Self); err != nil {
		return fmt.Errorf("self: %w", err)
	}
	if c.Drain < 0 || c.Drain > 10*time.Minute {
		return fmt.Errorf("drain: must be between 0 and 10m, got %v", c.Drain)
	}
	if c.Budget != BudgetLocal && c.Budget != BudgetShared {
		return fmt.Errorf("budget: must be %q or %q, got %q", BudgetLocal, BudgetShared, c.Budget)
	}
	if c.GRPC.Endpoint != "" {
		return fmt.Errorf("grpc::endpoint: must be empty, the members block gives each member's address (got %q)", c.GRPC.Endpoint)
	}
	return nil
}

// Validate checks the handover bounds when handover is on.
func (c *HandoverConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case c.Settle <= 0:
		return fmt.Errorf("settle: must be positive, got %v", c.Settle)
	case c.BytesPerSecond < 64<<10:
		return fmt.Errorf("bytes_per_second: must be at least 65536, got %d", c.BytesPerSecond)
	case c.MaxBytes < 1<<20:
		return fmt.Errorf("max_bytes: must be at least 1048576, got %d", c.MaxBytes)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout: must be positive, got %v", c.Timeout)
	}
	return nil
}
