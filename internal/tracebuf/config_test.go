package tracebuf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
	"github.com/tailsift/tailsift/sampling"
)

func TestConfigBudget(t *testing.T) {
	cfg := DefaultConfig()
	require.False(t, cfg.Budget.Enabled(), "off by default")
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"budget": map[string]any{
			"traces_per_second": 200,
			"classes": []any{
				map[string]any{"name": "errors", "policies": []any{"errors"}, "never_drop": true},
				map[string]any{"name": "rest", "policies": []any{"slow", "baseline"}},
			},
		},
	}).Unmarshal(&cfg))
	require.NoError(t, confmap.Validate(&cfg))
	assert.Equal(t, sampling.BudgetConfig{
		TracesPerSecond: 200,
		Classes: []sampling.BudgetClass{
			{Name: "errors", Policies: []string{"errors"}, NeverDrop: true},
			{Name: "rest", Policies: []string{"slow", "baseline"}},
		},
	}, cfg.Budget)

	// The buffer's engine applies it.
	b, err := New(cfg, func(_ context.Context, _ ptrace.Traces) error { return nil }, Settings{Clock: clocktest.NewFake(time.Unix(0, 0))})
	require.NoError(t, err)
	b.Start()
	defer func() { require.NoError(t, b.Shutdown(context.Background())) }()
	assert.Equal(t, []sampling.ClassProbability{{Name: "errors", Probability: 1}, {Name: "rest", Probability: 1}},
		b.Engine().ClassProbabilities(nil))
}

func TestConfigBudgetInvalid(t *testing.T) {
	tests := []struct {
		name   string
		budget map[string]any
		err    string
	}{
		{
			name:   "both rates",
			budget: map[string]any{"traces_per_second": 1, "spans_per_second": 1},
			err:    "budget: set only one of spans_per_second and traces_per_second",
		},
		{
			name:   "negative rate",
			budget: map[string]any{"spans_per_second": -1},
			err:    "budget::spans_per_second: must be a finite number, not negative, got -1",
		},
		{
			name: "unknown policy",
			budget: map[string]any{"traces_per_second": 1, "classes": []any{
				map[string]any{"name": "a", "policies": []any{"errors", "slow", "baseline"}},
				map[string]any{"name": "b", "policies": []any{"x"}},
			}},
			err: `budget::classes::1::policies::0: no policy named "x"`,
		},
		{
			name: "policy in two classes",
			budget: map[string]any{"traces_per_second": 1, "classes": []any{
				map[string]any{"name": "a", "policies": []any{"errors", "slow"}},
				map[string]any{"name": "b", "policies": []any{"baseline", "errors"}},
			}},
			err: `budget::classes::1::policies::1: policy "errors" is already in budget::classes::0`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(map[string]any{"budget": tt.budget}).Unmarshal(&cfg))
			require.EqualError(t, confmap.Validate(&cfg), tt.err)
		})
	}
}

func TestConfigSharedBudget(t *testing.T) {
	shared := map[string]any{"self": "a:1", "members": map[string]any{"static": []any{"a:1", "b:1"}}, "budget": "shared"}
	tests := []struct {
		name string
		conf map[string]any
		err  string
	}{
		{name: "with a budget", conf: map[string]any{"cluster": shared, "budget": map[string]any{"traces_per_second": 100}}},
		{name: "local without a budget", conf: map[string]any{"cluster": map[string]any{"self": "a:1", "members": map[string]any{"static": []any{"a:1"}}}}},
		{
			name: "shared without a budget",
			conf: map[string]any{"cluster": shared},
			err:  "cluster::budget: shared, but there is no budget to share (set budget::traces_per_second or budget::spans_per_second)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(tt.conf).Unmarshal(&cfg))
			err := confmap.Validate(&cfg)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.err)
		})
	}
}
