package tracebuf

import (
	"bufio"
	"fmt"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertMapped checks in /proc/self/maps whether b's memory is mapped
// (want) or not mapped at all: whether the arena really gave it back.
func assertMapped(t *testing.T, b []byte, want bool) {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	lo := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	hi := lo + uint64(len(b))
	covered := uint64(0)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var start, end uint64
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x", &start, &end); err != nil {
			continue
		}
		if s, e := max(start, lo), min(end, hi); s < e {
			covered += e - s
		}
	}
	require.NoError(t, sc.Err())
	if want {
		assert.Equal(t, uint64(len(b)), covered, "chunk at %#x mapped whole", lo)
	} else {
		assert.Zero(t, covered, "chunk at %#x given back", lo)
	}
}

// assertGivenBack checks that b, whose first bytes were set to marker while
// the arena held it, is no longer the arena's memory: reading it through
// /proc/self/mem fails (unmapped) or finds other bytes. Unlike a look in
// /proc/self/maps, this does not fail when something else in the process
// (a new thread's stack, the race detector) has since been mapped there.
func assertGivenBack(t *testing.T, b []byte, marker []byte) {
	t.Helper()
	f, err := os.Open("/proc/self/mem")
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	got := make([]byte, len(marker))
	_, err = f.ReadAt(got, int64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))))
	assert.True(t, err != nil || string(got) != string(marker), "chunk at %p still holds the arena's bytes", unsafe.SliceData(b))
}
