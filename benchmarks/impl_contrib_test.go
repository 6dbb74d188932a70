package benchmarks

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor"
)

func init() {
	implRegistry = append(implRegistry, impl{
		name:    "contrib",
		factory: tailsamplingprocessor.NewFactory,
		config: func(shards int) map[string]any {
			return map[string]any{
				"decision_wait": "30s",
				"num_traces":    200000,
				"num_shards":    shards,
				"decision_cache": map[string]any{
					"sampled_cache_size":     100000,
					"non_sampled_cache_size": 1000000,
				},
				// Only affects Shutdown (untimed): skip evaluating the
				// still-buffered traces when a pass is torn down.
				"drop_pending_traces_on_shutdown": true,
				"policies":                        policies(),
			}
		},
	})
}
