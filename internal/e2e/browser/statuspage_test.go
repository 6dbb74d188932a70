package browser

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium finds the browser, or skips the test saying why.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("no chromium on PATH: run scripts/deps/status.sh as root to install it")
	return ""
}

// pageCounters are the page's counters and the self-metric each one is.
var pageCounters = []struct{ metric, selfMetric string }{
	{"spans_received", "otelcol_processor_tailsift_spans_received"},
	{"traces_decided", "otelcol_processor_tailsift_traces_decided"},
	{"spans_kept", `otelcol_processor_tailsift_spans_decided{decision="keep"}`},
	{"late_spans_kept", `otelcol_processor_tailsift_late_spans{decision="keep"}`},
	{"late_spans_dropped", `otelcol_processor_tailsift_late_spans{decision="drop"}`},
}

// TestStatusPageUnderLoad loads the status page in headless Chromium while
// the collector takes traffic: every section fills in, and each counter on
// the page lies between the /metrics values scraped before the page's
// snapshot was taken and after it was shown. The screenshot is kept as a
// test artifact (go test -artifacts), and written to
// $TAILSIFT_STATUS_SCREENSHOT too when that is set. Then, on the same
// collector, a click on a kept error trace opens its waterfall
// (checkTraceView), and a trace of 2500 spans draws 2000 of them
// (checkLargeTrace).
func TestStatusPageUnderLoad(t *testing.T) {
	browserPath := chromium(t)
	col := startCollector(t)
	stop := sendLoad(t, col.grpc)
	defer stop()

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()

	// The root redirects to the page.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+col.ext+"/")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, "http://"+col.ext+"/status/", loc)

	// Wait, by the page's own refreshes, until every section has data:
	// decisions with rates, routes, and a kept error or anomaly.
	ready := `(() => {
		const n = (m) => +(document.querySelector('[data-metric="' + m + '"]')?.dataset.value || 0);
		return n("traces_decided") > 500 && n("late_spans_kept") + n("late_spans_dropped") > 0 &&
			document.querySelectorAll("a.id").length > 0 &&
			document.querySelectorAll("[data-class]").length === 3 &&
			[...document.querySelectorAll("td")].some((td) => td.textContent === "checkout / GET /cart");
	})()`
	_, err = chromedp.Run(within(t, ctx, 90*time.Second), chromedp.Poll[bool](ready, chromedp.WithPollingInterval(250*time.Millisecond), chromedp.WithPollingTimeout(0)))
	require.NoError(t, err, "the page never showed every section")

	// Agreement with /metrics: scrape, wait for a snapshot taken after the
	// scrape, read the page, scrape again.
	match := []string{`decision="keep"`, `decision="drop"`}
	before := col.scrape(t, match...)
	scraped := time.Now()
	_, err = chromedp.Run(within(t, ctx, 10*time.Second), chromedp.Poll[bool](
		`Date.parse(document.getElementById("updated").dataset.time) > `+strconv.FormatInt(scraped.UnixMilli(), 10),
		chromedp.WithPollingInterval(50*time.Millisecond)))
	require.NoError(t, err, "the page did not refresh within 10s")
	shown := map[string]float64{}
	for _, c := range pageCounters {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[data-component] [data-metric="`+c.metric+`"]`)))
		require.NoError(t, err, c.metric)
		v, err := strconv.ParseFloat(strings.ReplaceAll(text, ",", ""), 64)
		require.NoError(t, err, "%s shows %q", c.metric, text)
		shown[c.metric] = v
	}
	after := col.scrape(t, match...)
	for _, c := range pageCounters {
		lo, hi := before[c.selfMetric], after[c.selfMetric]
		require.Contains(t, after, c.selfMetric, "/metrics lacks %s", c.selfMetric)
		assert.True(t, lo <= shown[c.metric] && shown[c.metric] <= hi,
			"%s: the page shows %v, /metrics had %v before the page's snapshot and %v after", c.metric, shown[c.metric], lo, hi)
	}
	assert.Positive(t, shown["traces_decided"])

	// A kept error or anomaly links to the trace view.
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("a.id"), "href"))
	require.NoError(t, err)
	assert.Regexp(t, `^trace\.html\?id=[0-9a-f]{32}$`, href.Value)
	hidden, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("error"), "hidden"))
	require.NoError(t, err)
	assert.True(t, hidden.Exists, "the page shows a fetch error")

	screenshot(t, ctx, "status-page.png", "TAILSIFT_STATUS_SCREENSHOT")

	checkTraceView(t, ctx, col)
	checkLargeTrace(t, ctx, col)
}
