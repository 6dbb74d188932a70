package tailsiftprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/processor/tailsiftprocessor/internal/metadata"
	"github.com/tailsift/tailsift/sampling"
)

// NewFactory returns the tailsift processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Shards: 0,
		Completion: tracebuf.CompletionConfig{
			Quiet:    2 * time.Second,
			MaxWait:  30 * time.Second,
			MaxSpans: 10000,
		},
		Buffer: tracebuf.BufferConfig{
			MaxBytes:       512 << 20,
			MaxQueuedBytes: 64 << 20,
		},
		DecisionCache: tracebuf.DecisionCacheConfig{
			KeptMaxBytes:      16 << 20,
			DroppedMaxEntries: 1_000_000,
		},
		Policies: []sampling.PolicyConfig{
			sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
			sampling.NewPolicyConfig("slow", "latency", &sampling.LatencyConfig{ThresholdMs: 1000}),
			sampling.NewPolicyConfig("baseline", "probabilistic", &sampling.ProbabilisticConfig{SamplingPercentage: 0.01}),
		},
	}
}

func createTraces(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	return newProcessor(set, cfg.(*Config), next)
}
