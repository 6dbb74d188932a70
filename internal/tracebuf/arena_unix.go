//go:build unix

package tracebuf

import "syscall"

// mapMemory maps n bytes of anonymous memory; nil when the OS refuses.
func mapMemory(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return b
}

// unmapMemory unmaps a slice mapMemory returned, whole.
func unmapMemory(b []byte) { _ = syscall.Munmap(b) }
