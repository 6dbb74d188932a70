package browser

import (
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// storedTrace is what the retrieval API answers for one trace.
type storedTrace struct {
	spans      int
	errorSpans []string // span IDs, hex
	policy, th string   // Tailsift-Policy, Tailsift-Threshold
}

// fetchTrace asks the retrieval API for trace id; ok is false until the
// store has it.
func (c *collector) fetchTrace(t *testing.T, id string) (storedTrace, bool) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + c.ext + "/api/v1/traces/" + id)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusNotFound {
		return storedTrace{}, false
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(body)
	require.NoError(t, err)
	st := storedTrace{spans: td.SpanCount(), policy: resp.Header.Get("Tailsift-Policy"), th: resp.Header.Get("Tailsift-Threshold")}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if sp.Status().Code() == ptrace.StatusCodeError {
					id := sp.SpanID()
					st.errorSpans = append(st.errorSpans, hex.EncodeToString(id[:]))
				}
			}
		}
	}
	return st, true
}

// checkTraceView clicks a kept error trace on the status page (ctx is on
// it) and checks its waterfall against the retrieval API: one row per span
// (the load sends late spans, so the count lies between the API's before
// and after the page's fetch), the ERROR spans marked, the policy that
// kept it and its threshold shown. Then the list view's search box finds
// the same trace, and an unknown trace ID shows the API's 404. The waterfall's screenshot is kept as trace-view.png (and
// written to $TAILSIFT_TRACE_SCREENSHOT when set).
func checkTraceView(t *testing.T, ctx context.Context, col *collector) {
	t.Helper()
	id, err := chromedp.Run(within(t, ctx, 30*time.Second), chromedp.Poll[string](`(() => {
		const tr = [...document.querySelectorAll("section[data-component] tr")].find((tr) => tr.querySelector(".tag.error"));
		return tr ? tr.querySelector("a.id").textContent : "";
	})()`, chromedp.WithPollingInterval(250*time.Millisecond)))
	require.NoError(t, err, "no kept error trace on the status page")
	var before storedTrace
	require.Eventually(t, func() bool {
		var ok bool
		before, ok = col.fetchTrace(t, id)
		return ok
	}, 10*time.Second, 100*time.Millisecond, "the store never had kept trace %s", id)
	require.NotEmpty(t, before.errorSpans, "trace %s is listed as an error", id)

	require.NoError(t, chromedp.Do(within(t, ctx, 10*time.Second), chromedp.Click(chromedp.CSS(`a.id[href="trace.html?id=`+id+`"]`))))
	spans := waitWaterfall(t, ctx, id)
	after, ok := col.fetchTrace(t, id)
	require.True(t, ok)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#waterfall .wf-row[data-i]").length`))
	require.NoError(t, err)
	assert.Equal(t, spans, rows, "one row per span")
	assert.True(t, before.spans <= rows && rows <= after.spans,
		"the waterfall has %d rows; the API had %d spans before and %d after", rows, before.spans, after.spans)

	marked, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#waterfall .wf-row[data-status="error"]')].map((r) => r.dataset.span)`))
	require.NoError(t, err)
	assert.ElementsMatch(t, after.errorSpans, marked, "the ERROR spans are the marked rows")
	summary := map[string]string{"decision": "keep", "rule": "errors", "th": "0", "adjusted": "1"}
	assert.Equal(t, "errors", after.policy)
	assert.Equal(t, "0", after.th)
	for k, want := range summary {
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#summary [data-k="`+k+`"]`)))
		require.NoError(t, err, k)
		assert.Equal(t, want, got, "summary %s", k)
	}

	// A click on the ERROR span shows its details.
	sel := `#waterfall .wf-row[data-span="` + marked[0] + `"]`
	require.NoError(t, chromedp.Do(within(t, ctx, 10*time.Second), chromedp.Click(chromedp.CSS(sel))))
	detail, err := chromedp.Run(within(t, ctx, 10*time.Second), chromedp.Text(chromedp.CSS(sel+" + .wf-detail")))
	require.NoError(t, err)
	assert.Contains(t, detail, marked[0])
	assert.Contains(t, detail, "ERROR")
	screenshot(t, ctx, "trace-view.png", "TAILSIFT_TRACE_SCREENSHOT")

	// The list of kept traces, and its search box.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+col.ext+"/status/trace.html")))
	require.NoError(t, chromedp.Do(within(t, ctx, 10*time.Second), chromedp.WaitVisible(chromedp.CSS("#view a.id"))))
	require.NoError(t, chromedp.Do(within(t, ctx, 10*time.Second), chromedp.SendKeys(chromedp.CSS(`input[name="id"]`), id+"\r")))
	waitWaterfall(t, ctx, id)

	// A trace the store does not have: the page says so.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+col.ext+"/status/trace.html?id=0123456789abcdef0123456789abcdef")))
	require.NoError(t, chromedp.Do(within(t, ctx, 10*time.Second), chromedp.WaitVisible(chromedp.ID("error"))))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
	require.NoError(t, err)
	assert.Contains(t, msg, "404 trace not found")
}

// checkLargeTrace sends one trace of 2500 spans and opens its view: the
// page fetches them all and draws the first 2000, saying so.
func checkLargeTrace(t *testing.T, ctx context.Context, col *collector) {
	t.Helper()
	const spans, drawn = 2500, 2000
	conn, err := grpc.NewClient(col.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	td := ptrace.NewTraces()
	rng := rand.New(rand.NewPCG(2500, 2500))
	r := routes[0]
	tid := appendTrace(td, rng, r, time.Now(), time.Second, true)
	root := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	for range spans - 4 {
		appendSpan(td, rng, r, tid, time.Now(), time.Millisecond, false, false).SetParentSpanID(root.SpanID())
	}
	require.Equal(t, spans, td.SpanCount())
	_, err = ptraceotlp.NewGRPCClient(conn).Export(within(t, ctx, 10*time.Second), ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)

	id := hex.EncodeToString(tid[:])
	require.Eventually(t, func() bool {
		st, ok := col.fetchTrace(t, id)
		return ok && st.spans == spans
	}, 10*time.Second, 100*time.Millisecond, "the store never had the large trace %s", id)
	start := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+col.ext+"/status/trace.html?id="+id)))
	assert.Equal(t, spans, waitWaterfall(t, ctx, id))
	t.Logf("the %d-span trace's view loaded and drew in %v", spans, time.Since(start).Round(time.Millisecond))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#waterfall .wf-row[data-i]").length`))
	require.NoError(t, err)
	assert.Equal(t, drawn, rows)
	note, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("cut")))
	require.NoError(t, err)
	assert.Equal(t, "Showing the first 2,000 of 2,500 spans.", note)
}

// waitWaterfall waits until the page is trace id's view and has drawn it;
// it returns the number of spans the page fetched. It evaluates afresh
// each time, as the page may be navigating (a poll dies with its page).
func waitWaterfall(t *testing.T, ctx context.Context, id string) int {
	t.Helper()
	var spans string
	require.Eventually(t, func() bool {
		var err error
		spans, err = chromedp.Run(within(t, ctx, time.Second), chromedp.Evaluate[string](
			`location.search === "?id=`+id+`" && document.getElementById("view").dataset.spans || ""`))
		return err == nil && spans != ""
	}, 10*time.Second, 50*time.Millisecond, "the trace view of %s never showed", id)
	n, err := strconv.Atoi(spans)
	require.NoError(t, err)
	hidden, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("error"), "hidden"))
	require.NoError(t, err)
	assert.True(t, hidden.Exists, "the trace view shows an error")
	return n
}

// screenshot keeps the page's screenshot as a test artifact named name, and
// writes it to $env too when that is set.
func screenshot(t *testing.T, ctx context.Context, name, env string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	shot := filepath.Join(t.ArtifactDir(), name)
	require.NoError(t, os.WriteFile(shot, png, 0o600))
	t.Logf("screenshot: %s", shot)
	if extra := os.Getenv(env); extra != "" {
		require.NoError(t, os.WriteFile(extra, png, 0o600))
		t.Logf("screenshot: %s", extra)
	}
}
