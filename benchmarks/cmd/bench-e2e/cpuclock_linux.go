package main

import (
	"syscall"
	"time"
	"unsafe"
)

// processClock returns the CPU time of every thread of process pid, the
// exited ones included, in nanoseconds: clock_gettime on the process's CPU
// clock (CPUCLOCK_SCHED, what clock_getcpuclockid(3) returns), the
// scheduler's sum_exec_runtime. /proc/PID/stat's utime+stime is the same
// total cut to clock ticks (10 ms): at 0.02 cores over 20 s that is ±2.5 %
// of a figure, and more on a share of it (a CPU cost above a baseline).
func processClock(pid int) (time.Duration, error) {
	// include/linux/posix-timers.h: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED).
	clk := int32((^pid)<<3 | 2)
	var ts syscall.Timespec
	_, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(clk), uintptr(unsafe.Pointer(&ts)), 0)
	if e != 0 {
		return 0, e
	}
	return time.Duration(ts.Nano()), nil
}
