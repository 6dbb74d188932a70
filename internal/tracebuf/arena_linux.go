//go:build linux

package tracebuf

import "golang.org/x/sys/unix"

// adviseHuge asks Linux for transparent huge pages in b.
func adviseHuge(b []byte) error { return unix.Madvise(b, unix.MADV_HUGEPAGE) }
