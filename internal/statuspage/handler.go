// Package statuspage is the live status page of the tailsift extension:
// a page of embedded HTML, CSS and JS (no CDN, it works offline) that
// fetches GET /api/v1/status every two seconds, and the handler of that
// JSON snapshot. Its trace view (trace.html) draws one trace of the
// extension's retrieval API as a waterfall. The trace buffers of the tailsift processor and receiver
// publish their state through a Recorder added to the Registry; the
// numbers are the same events their self-metrics count.
package statuspage

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"
)

// refresh is how often the page fetches a snapshot.
const refresh = 2 * time.Second

//go:embed assets
var assets embed.FS

// Paths the page is served at.
const (
	PagePath   = "/status/"
	StatusPath = "/api/v1/status"
)

// Routes returns the page's routes as http.ServeMux patterns: the page and
// its assets under PagePath (the server's root redirects there), and the
// JSON snapshot of g at StatusPath, taken at now().
func Routes(g *Registry, now func() time.Time) map[string]http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // unreachable: the directory is embedded
	}
	return map[string]http.Handler{
		"GET " + PagePath:   http.StripPrefix(PagePath, noStore(http.FileServerFS(sub))),
		"GET " + StatusPath: StatusHandler(g, now),
		"GET /{$}":          http.RedirectHandler(PagePath, http.StatusFound),
	}
}

// StatusHandler answers the snapshot of g as JSON.
func StatusHandler(g *Registry, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(g.Snapshot(now()))
		if err != nil {
			http.Error(w, "encode the status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
}

// noStore keeps browsers from caching the page across collector versions.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
