// Package benchmarks compares the tailsift processor with the contrib
// tail_sampling processor on the same deterministic trace workload, the one
// internal/workload generates for tailsift-loadgen.
//
// The benchmarks live in this package's _test.go files; see README.md for
// the commands and recorded results, and cmd/bench-e2e for the end-to-end
// comparison of the two distributions.
package benchmarks
