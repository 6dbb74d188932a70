package sampling

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// LatencyConfig keeps traces whose duration (latest span end minus earliest
// span start) is at least ThresholdMs and, when UpperThresholdMs is set, at
// most UpperThresholdMs, as contrib's latency policy does.
type LatencyConfig struct {
	// ThresholdMs is the lower bound, in milliseconds.
	ThresholdMs int64 `mapstructure:"threshold_ms"`
	// UpperThresholdMs is the optional upper bound, in milliseconds; 0 means none.
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
	if c.ThresholdMs == 0 && c.UpperThresholdMs == 0 {
		return errors.New("threshold_ms: set threshold_ms or upper_threshold_ms")
	}
	return nil
}

type latency struct{ lower, upper uint64 }

func newLatency(settings any, _ *Builder) (Policy, error) {
	c := settings.(*LatencyConfig)
	return latency{
		lower: uint64(c.ThresholdMs) * uint64(time.Millisecond),
		upper: uint64(c.UpperThresholdMs) * uint64(time.Millisecond),
	}, nil
}

func (p latency) Evaluate(t *Trace) Decision {
	d := t.Duration()
	if d >= p.lower && (p.upper == 0 || d <= p.upper) {
		return keepAlways
	}
	return Decision{}
}
