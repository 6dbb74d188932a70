package router

import (
	"sync"

	"go.opentelemetry.io/collector/component"
)

// registry links the routers of started tailsift exporters to the receivers
// that feed them bytes (the tailsift receiver's route mode): a pipeline
// hands an exporter pdata only, and an agent that routes never builds any.
// The collector starts exporters before receivers and shuts receivers down
// first, so a receiver finds its exporter's router at its own start, and the
// router outlives it.
var registry = struct {
	sync.Mutex
	m map[component.ID]*Router
}{m: make(map[component.ID]*Router)}

// Register makes r the router of the exporter id until the returned func is
// called. A later Register of the same id (a second collector in the same
// process, or a reload) replaces it; the replaced one's unregister then
// leaves the newer one in place.
func Register(id component.ID, r *Router) (unregister func()) {
	registry.Lock()
	registry.m[id] = r
	registry.Unlock()
	return func() {
		registry.Lock()
		if registry.m[id] == r {
			delete(registry.m, id)
		}
		registry.Unlock()
	}
}

// Lookup returns the router registered as id, nil when there is none.
func Lookup(id component.ID) *Router {
	registry.Lock()
	defer registry.Unlock()
	return registry.m[id]
}
