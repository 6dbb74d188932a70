package tracebuftest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/tailsift/tailsift/internal/clock/clocktest"
)

// Env is what a test of a component on the buffer starts it with: a fake
// clock at T0, telemetry to read its metrics from, and the next consumer.
type Env struct {
	Clock *clocktest.Fake
	Tel   *componenttest.Telemetry
	Next  consumer.Traces
	Sink  *consumertest.TracesSink // Next when NewEnv was given none, else nil
}

// NewEnv returns an Env whose next consumer is next or, when next is nil, a
// new sink.
func NewEnv(next consumer.Traces) *Env {
	e := &Env{Clock: clocktest.NewFake(T0), Tel: componenttest.NewTelemetry(), Next: next}
	if next == nil {
		e.Sink = new(consumertest.TracesSink)
		e.Next = e.Sink
	}
	return e
}

// Start starts c and, when the test ends, shuts c and the telemetry down.
func (e *Env) Start(t *testing.T, c component.Component) {
	t.Helper()
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		assert.NoError(t, c.Shutdown(context.Background()))
		assert.NoError(t, e.Tel.Shutdown(context.Background()))
	})
}
