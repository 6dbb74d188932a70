package tracebuf

import (
	"context"
	"testing"
)

// BenchmarkCallWithin is the cost CallWithin adds to each hand-off to the
// next consumer (a goroutine and a channel), against the call made
// directly:
//
//	go test -run='^$' -bench=CallWithin -count=6 ./internal/tracebuf/ | benchstat -
func BenchmarkCallWithin(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := func() error { return nil }
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = call()
		}
	})
	b.Run("within", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = CallWithin(ctx, call)
		}
	})
}
