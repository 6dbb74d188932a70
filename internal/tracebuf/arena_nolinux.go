//go:build unix && !linux

package tracebuf

// adviseHuge: transparent huge pages are Linux's.
func adviseHuge([]byte) error { return nil }
