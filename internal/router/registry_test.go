package router

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/component"
)

// TestRegistry: Lookup finds the router registered under an ID until it is
// unregistered; a replaced router's unregister leaves its replacement.
func TestRegistry(t *testing.T) {
	id := component.MustNewIDWithName("tailsift", "registry")
	a, b := &Router{}, &Router{}
	assert.Nil(t, Lookup(id))
	unregA := Register(id, a)
	assert.Same(t, a, Lookup(id))
	assert.Nil(t, Lookup(component.MustNewID("tailsift")))
	unregB := Register(id, b)
	unregA()
	assert.Same(t, b, Lookup(id), "the replaced router's unregister removed its replacement")
	unregB()
	assert.Nil(t, Lookup(id))
}
