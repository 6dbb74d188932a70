package sampling

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// LatencyConfig keeps traces by duration (latest span end minus earliest
// span start, in whole milliseconds, truncated), as contrib's latency policy
// does: longer than ThresholdMs and, when UpperThresholdMs is set, at most
// UpperThresholdMs.
type LatencyConfig struct {
	// ThresholdMs is the lower bound, in milliseconds, exclusive.
	ThresholdMs int64 `mapstructure:"threshold_ms"`
	// UpperThresholdMs is the optional upper bound, in milliseconds,
	// inclusive; 0 means none.
	UpperThresholdMs int64 `mapstructure:"upper_threshold_ms"`
}

// Validate implements the config validator.
func (c *LatencyConfig) Validate() error {
	const maxMs = math.MaxInt64 / int64(time.Millisecond)
	if c.ThresholdMs > maxMs {
		return fmt.Errorf("threshold_ms: must be at most %d", maxMs)
	}
	if c.UpperThresholdMs > maxMs {
		return fmt.Errorf("upper_threshold_ms: must be at most %d", maxMs)
	}
	if c.ThresholdMs < 0 {
		return errors.New("threshold_ms: must not be negative")
	}
	if c.UpperThresholdMs < 0 {
		return errors.New("upper_threshold_ms: must not be negative")
	}
	if c.UpperThresholdMs != 0 && c.UpperThresholdMs < c.ThresholdMs {
		return errors.New("upper_threshold_ms: must not be below threshold_ms")
	}
	return nil
}

type latency struct{ lower, upper uint64 } // milliseconds

func newLatency(settings any, _ *builder) (evaluator, error) {
	c := settings.(*LatencyConfig)
	return latency{lower: uint64(c.ThresholdMs), upper: uint64(c.UpperThresholdMs)}, nil
}

// Evaluate compares the whole trace's duration. contrib checks the duration
// of a growing prefix of the spans as it walks them, so with an upper bound
// it also keeps a trace whose full duration is above the bound when some
// prefix of its spans (in arrival order) fell within; tailsift judges the
// trace as a whole, as a summary cannot replay an order.
func (p latency) Evaluate(t *Trace) Decision {
	ms := t.Duration() / uint64(time.Millisecond)
	if ms > p.lower && (p.upper == 0 || ms <= p.upper) {
		return keepAlways
	}
	return Decision{}
}
