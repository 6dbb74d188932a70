package sampling

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRouteNamesBounded(t *testing.T) {
	n, err := newRouteNames(KeyFields{"name", "status"}, 2)
	require.NoError(t, err)
	for h, name := range map[uint64]string{0: "a", 1: "b", 2: "c"} {
		n.note(h, &SpanView{Name: []byte(name), Status: 2})
	}
	assert.Len(t, n.names, 2, "at most max names")
	known := 0
	for h := range uint64(3) {
		if name := n.name(h); name != "#"+string(rune('0'+h)) {
			assert.Contains(t, []string{"a / 2", "b / 2", "c / 2"}, name)
			known++
		}
	}
	assert.Equal(t, 2, known, "an evicted route reads as its hash")

	// A hash already named costs no new name, even when the view differs.
	n.note(7, &SpanView{Name: []byte("first")})
	n.note(7, &SpanView{Name: []byte("second")})
	assert.Equal(t, "first / 0", n.name(7))
}
