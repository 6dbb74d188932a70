package tailsiftextension

import (
	"slices"
	"strings"
	"time"

	"github.com/tailsift/tailsift/internal/statuspage"
)

// statusRoutes are the live status page's: the page at /status/ (the root
// redirects there) and its JSON at /api/v1/status, showing what the
// tailsift processors, receivers and exporters of this collector publish.
func statusRoutes() []route {
	var rs []route
	for pattern, h := range statuspage.Routes(statuspage.Default, time.Now) {
		rs = append(rs, route{pattern: pattern, handler: h})
	}
	slices.SortFunc(rs, func(a, b route) int { return strings.Compare(a.pattern, b.pattern) })
	return rs
}
