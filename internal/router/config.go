package router

import (
	"fmt"
	"time"
)

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
	// Timeouts is how many sends in a row a member may leave unanswered
	// until they time out, answering no other send meanwhile, before it
	// is marked down as a refusing one is: a member that accepts the
	// connection and never answers. 0 never marks a member down for
	// that: its sends are retried, and dropped when the retries end.
	Timeouts int `mapstructure:"timeouts"`
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
	case c.Timeouts < 0:
		return fmt.Errorf("timeouts: must not be negative, got %d", c.Timeouts)
	}
	return nil
}
