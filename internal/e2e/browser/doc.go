// Package browser tests the live status page in headless Chromium: it runs
// the collector ($TAILSIFT_BIN) under load, loads the page, and checks that
// its numbers agree with /metrics. It is a module of its own so that
// chromedp stays out of the collector's module graph; `make test` runs it.
// Chromium comes from scripts/deps/status.sh; without it the test skips.
package browser
