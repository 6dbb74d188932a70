package statuspage_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/statuspage"
	"github.com/tailsift/tailsift/internal/tracebuf"
	"github.com/tailsift/tailsift/sampling"
)

type fakeCluster struct{ s statuspage.ClusterStatus }

func (f fakeCluster) ClusterStatus() statuspage.ClusterStatus { return f.s }

func server(t *testing.T, g *statuspage.Registry) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, h := range statuspage.Routes(g, func() time.Time { return t0 }) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test against a local server
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestStatusHandler(t *testing.T) {
	var g statuspage.Registry
	srv := server(t, &g)

	resp, body := get(t, srv.URL+statuspage.StatusPath)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.JSONEq(t, `{"time":"2026-12-04T12:00:00Z","refresh_ms":2000,"components":[],"clusters":[]}`, body,
		"nothing registered: empty lists, not null")

	rec := statuspage.NewRecorder("tailsift/gw", "receiver", 4096, nil)
	e, err := sampling.NewEngine([]sampling.PolicyConfig{sampling.NewPolicyConfig("anomalies", "adaptive", nil)})
	require.NoError(t, err)
	rec.Bind(e)
	g.Add(rec)
	rec.Received(7)
	rec.Buffered(1024, 1)
	decided(rec, "anomalies", true, 7, tracebuf.ReasonQuiet, 0, 0)
	rec.Kept(&sampling.Trace{ID: [16]byte{0xab}, SpanCount: 7, Now: t0.UnixNano()}, kept("anomalies"))
	g.AddCluster(fakeCluster{statuspage.ClusterStatus{
		Component: "tailsift/gw", Role: "gateway", Rerouted: 3,
		Members:   []statuspage.ClusterMember{{Address: "10.0.0.1:4317", Up: true, Self: true, Spans: 9}},
		Handovers: map[string]int64{"sent": 2, "received": 1},
	}})

	_, body = get(t, srv.URL+statuspage.StatusPath)
	var s statuspage.Snapshot
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Len(t, s.Components, 1)
	c := s.Components[0]
	assert.Equal(t, int64(7), c.Counters.SpansReceived)
	assert.Equal(t, 0.25, c.Buffer.Fill)
	require.Len(t, c.Recent, 1)
	assert.Equal(t, "/api/v1/traces/ab000000000000000000000000000000", c.Recent[0].Link)
	require.Len(t, s.Clusters, 1)
	assert.Equal(t, map[string]int64{"sent": 2, "received": 1}, s.Clusters[0].Handovers)
	assert.Contains(t, body, `"role":"gateway"`)
}

func TestPageAssets(t *testing.T) {
	srv := server(t, new(statuspage.Registry))
	tests := []struct {
		path, contentType, contains string
	}{
		{statuspage.PagePath, "text/html", `<script src="status.js">`},
		{statuspage.PagePath + "page.js", "text/javascript", `"../api/v1/status"`},
		{statuspage.PagePath + "status.js", "text/javascript", `traceLink(k.trace_id)`},
		{statuspage.PagePath + "status.css", "text/css", "--keep"},
		{statuspage.PagePath + "trace.html", "text/html", `<script src="trace.js">`},
		{statuspage.PagePath + "trace.js", "text/javascript", `"../api/v1/traces/"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType), resp.Header.Get("Content-Type"))
			assert.Contains(t, body, tt.contains)
			assert.NotContains(t, body, "://", "no CDN: the page loads nothing from elsewhere")
		})
	}
	resp, _ := get(t, srv.URL+statuspage.PagePath+"missing.js")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
