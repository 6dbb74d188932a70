package tailsiftextension

import "net/http"

type route struct {
	pattern string
	handler http.Handler
}

// builtinRoutes are the routes the extension serves itself. Other tailsift
// components add theirs with Extension.Handle.
func builtinRoutes(*Extension) []route {
	return statusRoutes()
}
