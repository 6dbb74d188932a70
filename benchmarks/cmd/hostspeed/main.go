// Command hostspeed measures how fast the CPU it runs on is, over time: every
// interval it does a fixed piece of work and prints the thread CPU time the
// work took. The work is the same every time, so a change in the figure is
// the machine's: on this project's shared VM, memory-bound work took 1x to 7x
// as long from one second to the next, which the guest's accounting charges
// to whatever ran (benchmarks/README.md, "Concurrent rounds").
//
// Usage (pin it to the CPU to watch; -mem 0 for compute only):
//
//	taskset -c 0 go run ./cmd/hostspeed -n 240 -mem 8 > cpu0.txt
//
// Each line: wall clock, CPU ms of the work, wall ms of the work. A summary
// (min, p10, median, p90, max of the CPU ms) goes to stderr at the end.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 240, "samples")
	every := flag.Duration("interval", time.Second, "time between the starts of two samples' sleeps")
	memMiB := flag.Int("mem", 8, "MiB of memory the work updates at random (0: compute only)")
	iters := flag.Int("iters", 2_000_000, "work per sample: xorshift steps")
	flag.Parse()
	if err := run(os.Stdout, os.Stderr, *n, *every, *memMiB, *iters); err != nil {
		fmt.Fprintln(os.Stderr, "hostspeed:", err)
		os.Exit(2)
	}
}

func run(out, summary io.Writer, n int, every time.Duration, memMiB, iters int) error {
	if n <= 0 || iters <= 0 || memMiB < 0 {
		return fmt.Errorf("-n and -iters must be > 0 and -mem >= 0")
	}
	runtime.LockOSThread() // the thread's CPU clock is the work's
	w := newWork(memMiB)
	cpus := make([]float64, 0, n)
	for i := range n {
		c0, err := threadCPU()
		if err != nil {
			return err
		}
		t0 := time.Now()
		w.do(iters)
		c1, err := threadCPU()
		if err != nil {
			return err
		}
		cpu := float64(c1-c0) / 1e6
		cpus = append(cpus, cpu)
		fmt.Fprintf(out, "%s %.2f %.2f\n", t0.Format("15:04:05.000"), cpu, float64(time.Since(t0))/1e6)
		if i < n-1 {
			time.Sleep(every)
		}
	}
	slices.Sort(cpus)
	q := func(p float64) float64 { return cpus[int(p*float64(len(cpus)-1))] }
	fmt.Fprintf(summary, "hostspeed: %d samples, CPU ms per sample: min %.2f p10 %.2f median %.2f p90 %.2f max %.2f\n",
		len(cpus), cpus[0], q(0.1), q(0.5), q(0.9), cpus[len(cpus)-1])
	return nil
}

// work is a xorshift generator that adds into a table: with a table larger
// than the caches, each step is a cache miss, as a collector's lookups of
// buffered traces are; with a tiny one, it is compute only.
type work struct {
	x     uint64
	table []uint64
	mask  uint64
}

func newWork(memMiB int) *work {
	words := 8
	if memMiB > 0 {
		words = memMiB << 20 / 8
		for words&(words-1) != 0 { // a power of two, for the mask
			words &= words - 1
		}
	}
	return &work{x: 88172645463325252, table: make([]uint64, words), mask: uint64(words - 1)}
}

func (w *work) do(iters int) {
	x := w.x
	for range iters {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		w.table[x&w.mask] += x
	}
	w.x = x
}

func threadCPU() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, err
	}
	return ts.Nano(), nil
}
