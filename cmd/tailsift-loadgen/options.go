package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/tailsift/tailsift/internal/workload"
)

// options are the command-line settings.
type options struct {
	Endpoint    string
	Protocol    string // "grpc" or "http"
	Rate        float64
	Duration    time.Duration
	Seed        int64
	ErrorPct    float64
	Connections int
	Inflight    int // concurrent requests; 0 = 4 per connection (grpc) or 1 (http)
	Manifest    string
	SummaryJSON string
	Templates   int
	Quiet       bool
	Retry       bool
	Timeout     time.Duration
	Linger      time.Duration
	Shape       string // --shape: workload.ShapeBench or workload.ShapeSDK
	// Drain bounds how long after Duration pending spans (batching delays,
	// late spans) are still sent on schedule; the rest are then sent at once.
	Drain time.Duration
	// Tick is the dispatcher's wakeup granularity.
	Tick time.Duration
	// Procs and CPUProfile are handled by realMain.
	Procs      int
	CPUProfile string

	// MixSpec is --mix: key=percent pairs over the default mix, whose
	// error share is ErrorPct. validate parses it into mix and sets
	// ErrorPct to mix.Error.
	MixSpec     string
	errorPctSet bool // --error-pct was given
	mix         workload.Mix
}

func (o *options) validate() error {
	switch o.Protocol {
	case "grpc", "http", "discard":
	default:
		return fmt.Errorf("--protocol must be grpc or http, not %q", o.Protocol)
	}
	if !(o.Rate > 0) {
		return errors.New("--rate must be > 0")
	}
	if o.Duration <= 0 {
		return errors.New("--duration must be > 0")
	}
	if o.Shape == "" {
		o.Shape = workload.ShapeBench
	}
	if o.Shape != workload.ShapeBench && o.Shape != workload.ShapeSDK {
		return fmt.Errorf("--shape must be %s or %s, not %q", workload.ShapeBench, workload.ShapeSDK, o.Shape)
	}
	if o.ErrorPct < 0 || o.ErrorPct > 50 {
		return errors.New("--error-pct must be within [0, 50]")
	}
	base := workload.DefaultMix()
	base.Error = o.ErrorPct
	m, keys, err := workload.ParseMix(o.MixSpec, base)
	if err != nil {
		return fmt.Errorf("--mix: %w", err)
	}
	if o.errorPctSet && slices.Contains(keys, "error") && m.Error != o.ErrorPct {
		return fmt.Errorf("--error-pct %g and --mix error=%g disagree", o.ErrorPct, m.Error)
	}
	o.mix, o.ErrorPct = m, m.Error
	if o.Connections < 1 {
		return errors.New("--connections must be >= 1")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Inflight <= 0 {
		if o.Protocol == "grpc" {
			o.Inflight = 4 * o.Connections
		} else {
			o.Inflight = o.Connections
		}
	}
	return nil
}

// target returns the gRPC dial target or the HTTP URL.
func (o *options) target() string {
	ep := o.Endpoint
	if o.Protocol == "grpc" {
		if ep == "" {
			return "127.0.0.1:4317"
		}
		return strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
	}
	if ep == "" {
		ep = "127.0.0.1:4318"
	}
	if scheme, rest, ok := strings.Cut(ep, "://"); ok && (scheme == "http" || scheme == "https") {
		if !strings.Contains(rest, "/") {
			return ep + "/v1/traces"
		}
		return ep
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		ep = net.JoinHostPort(ep, "4318")
	}
	return "http://" + ep + "/v1/traces"
}
