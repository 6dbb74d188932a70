package tracebuftest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
)

// ShutdownWithin runs c's Shutdown on a goroutine and requires it to return
// within bound; it returns how long it took and Shutdown's error.
func ShutdownWithin(t *testing.T, ctx context.Context, c component.Component, bound time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Shutdown(ctx) }()
	var err error
	require.Eventually(t, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	}, bound, 5*time.Millisecond, "Shutdown did not return")
	return time.Since(start), err
}
