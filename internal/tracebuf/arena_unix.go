//go:build unix

package tracebuf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMemory maps n bytes of anonymous memory; nil when the OS refuses. The
// arena unmaps its memory in parts (see mapChunk), which syscall.Mmap's
// bookkeeping does not allow, so it calls mmap itself.
func mapMemory(n int) []byte {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

// unmapMemory unmaps b[:cap(b)], which mapMemory or mapChunk mapped.
func unmapMemory(b []byte) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(cap(b)))
}

// hugePage is the size of a transparent huge page on x86-64 and arm64
// (with 4 KiB base pages).
const hugePage = 2 << 20

// mapChunk maps a chunk aligned on a huge page and asks for transparent huge
// pages (MADV_HUGEPAGE, which Linux honours when
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or "always"):
// the first write to a huge page then costs one page fault instead of 512.
// On this project's VM a 4 KiB page fault costs about 1.6 µs, 0.4 ns per
// byte a span record adds to a fresh chunk; a huge page about 0.1 µs per
// 4 KiB. A chunk's pages are held once written to, 2 MiB at a time: the
// arena counts the whole chunk anyway. Where the advice is refused the chunk
// has ordinary pages; nil when the OS refuses the memory.
func mapChunk() []byte {
	raw := mapMemory(chunkSize + hugePage)
	if raw == nil {
		return nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	off := int((hugePage - p%hugePage) % hugePage)
	if off > 0 {
		unmapMemory(raw[:off:off])
	}
	if end := off + chunkSize; end < len(raw) {
		unmapMemory(raw[end:])
	}
	b := raw[off : off+chunkSize : off+chunkSize]
	_ = adviseHuge(b)
	return b
}
