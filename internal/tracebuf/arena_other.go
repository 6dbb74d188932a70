//go:build !unix

package tracebuf

// mapMemory: off-heap memory is only mapped on Unix; elsewhere the arena
// allocates on the Go heap.
func mapMemory(int) []byte { return nil }

func unmapMemory([]byte) {}

func mapChunk() []byte { return nil }
