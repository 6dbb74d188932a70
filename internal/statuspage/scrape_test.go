package statuspage

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	otelsampling "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/sampling"
)

func statusEngine(t *testing.T) *sampling.Engine {
	t.Helper()
	cfgs := []sampling.PolicyConfig{
		sampling.NewPolicyConfig("errors", "status_code", &sampling.StatusCodeConfig{StatusCodes: []string{"ERROR"}}),
		sampling.NewPolicyConfig("anomalies", "adaptive", nil),
	}
	require.NoError(t, sampling.ValidatePolicies(cfgs))
	e, err := sampling.NewEngine(cfgs)
	require.NoError(t, err)
	return e
}

// TestNoDecisionYet: a recorder that had decided nothing answered
// "decisions": null, which status.js iterated without a guard: the page
// threw and showed "cannot fetch the status" instead of the components
// until the first decision. The list is [] now, and the page guards it.
func TestNoDecisionYet(t *testing.T) {
	rec := NewRecorder("tailsift", "processor", 1000, nil)
	rec.Bind(statusEngine(t))
	var g Registry
	defer g.Add(rec)()
	srv := httptest.NewServer(StatusHandler(&g, time.Now))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Contains(t, string(body), `"decisions":[]`)
	js, err := assets.ReadFile("assets/status.js")
	require.NoError(t, err)
	require.Contains(t, string(js), "for (const d of c.decisions || [])")
}

// TestConcurrentScrapes: scrapes while the data path records events, under
// -race: every answer is 200.
func TestConcurrentScrapes(t *testing.T) {
	rec := NewRecorder("tailsift", "processor", 1000, nil)
	rec.Bind(statusEngine(t))
	var g Registry
	defer g.Add(rec)()
	h := StatusHandler(&g, time.Now)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rec.Received(1)
				rec.Decided(fmt.Sprintf("p%d", i%3), i%2 == 0, 3, tracebuf.ReasonMaxSpans, 0, 0)
				rec.CountDecided(fmt.Sprintf("p%d", i%3), i%2 == 0, 1, 3)
				tr := &sampling.Trace{SpanCount: 2, StatusMask: sampling.StatusErrorBit}
				tr.ID[0] = byte(w)
				rec.Kept(tr, sampling.Decision{Verdict: sampling.Sampled, Threshold: otelsampling.AlwaysSampleThreshold, Policy: "errors"})
				rec.RouteCompletion(tracebuf.RouteCompletion{Route: fmt.Sprintf("r%d", i%300), Traces: 1})
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for range 200 {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, StatusPath, nil))
				if rr.Code != 200 {
					t.Errorf("status %d: %s", rr.Code, rr.Body)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
}
