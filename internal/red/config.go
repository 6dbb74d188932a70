// Package red aggregates request, error and duration (RED) metrics from
// every span a trace buffer accepts, before sampling, read from the fields
// wire.Scan records. It writes them as contrib's spanmetrics connector
// (v0.161.0) does with its defaults: a cumulative calls sum and an
// explicit-bucket duration histogram in milliseconds, per service.name,
// span.name, span.kind and status.code, with exemplars of kept traces.
package red

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `red` block of the tailsift receiver.
type Config struct {
	// Interval is how often the metrics are sent to the metrics pipeline
	// (spanmetrics' metrics_flush_interval).
	Interval time.Duration `mapstructure:"interval"`
	// MaxSeries bounds the (service, span name, kind, status) series kept;
	// spans of further series are counted in one series marked
	// otel.metric.overflow=true, as spanmetrics'
	// aggregation_cardinality_limit does.
	MaxSeries int `mapstructure:"max_series"`
	// BucketsMs are the duration histogram's explicit bounds in
	// milliseconds, ascending; spanmetrics' default bounds by default.
	BucketsMs []float64 `mapstructure:"buckets_ms"`
}

// DefaultBucketsMs are spanmetrics' default histogram bounds (v0.161.0,
// connector/spanmetricsconnector/config.go).
var DefaultBucketsMs = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000}

// DefaultConfig is spanmetrics' flush interval and default buckets, with
// at most 10000 series.
func DefaultConfig() Config {
	return Config{Interval: 60 * time.Second, MaxSeries: 10_000, BucketsMs: append([]float64(nil), DefaultBucketsMs...)}
}

// Validate names the key at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval: must be positive, got %v", c.Interval))
	}
	if c.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("max_series: must be positive, got %d", c.MaxSeries))
	}
	for i, b := range c.BucketsMs {
		if b <= 0 || (i > 0 && b <= c.BucketsMs[i-1]) {
			errs = append(errs, fmt.Errorf("buckets_ms: must be positive and strictly ascending, got %v", c.BucketsMs))
			break
		}
	}
	return errors.Join(errs...)
}
