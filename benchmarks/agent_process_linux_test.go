//go:build linux

package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/tailsift/tailsift/internal/wire"
)

// TestAgentTier is the agent tier's whole cost per span, as processes: the
// same fixed-rate load from tailsift-loadgen (SDK-shaped requests) into one
// agent process, routed by trace ID to three gateways (OTLP gRPC servers in
// a child process that count the spans they get). Each agent is a
// collector:
//
//   - contrib: bin/otelcol-contrib-bench, upstream `otlp` receiver →
//     `load_balancing` (routing_key traceID, static resolver), what a
//     contrib user runs;
//   - route: bin/otelcol-tailsift, `tailsift` receiver in route mode →
//     `tailsift` exporter, no pdata;
//   - pdata: bin/otelcol-tailsift, `otlp` receiver → `tailsift` exporter;
//   - lb-ours: bin/otelcol-tailsift, `otlp` receiver → `load_balancing`
//     (our `otlp` is upstream's behind a nesting guard).
//
// Same compression to the gateways on every agent. cpu-µs/span is the agent
// process's user+system CPU (/proc/<pid>/stat) from just before the load
// starts until the gateways have every span the agent accepted, divided by
// those spans. Rounds interleave the agents; the ratios are per round.
//
// Without TAILSIFT_AGENT_BENCH it is a smoke run (one short round at a low
// rate) that checks every agent delivers every span, when both binaries
// are there (TAILSIFT_BIN, TAILSIFT_CONTRIB_BIN; `make bench-smoke`).
//
//	make build bin/otelcol-contrib-bench
//	cd benchmarks && TAILSIFT_AGENT_BENCH=1 TAILSIFT_BIN=$PWD/../bin/otelcol-tailsift \
//	  TAILSIFT_CONTRIB_BIN=$PWD/../bin/otelcol-contrib-bench \
//	  go test -run '^TestAgentTier$' -v -timeout 60m . | tee agent.txt
//
// Knobs: TAILSIFT_AGENT_ROUNDS (3), TAILSIFT_AGENT_RATE (spans/s, 10000),
// TAILSIFT_AGENT_DURATION (20s), TAILSIFT_AGENT_COMPRESSION (zstd,none; the
// value "default" sets no compression, so each agent sends with its own
// default: gzip for contrib's load_balancing, zstd for tailsift),
// TAILSIFT_AGENT_SHAPE (sdk), LOADGEN_BIN (built from ../cmd when unset),
// TAILSIFT_AGENT_AGENTS (a comma-separated subset of the agents, by name,
// e.g. contrib,route; the ratios need contrib), TAILSIFT_BASE_BIN (adds route-base, the route agent
// on another tailsift binary, for an A/B of two builds in the same rounds),
// TAILSIFT_AGENT_PPROF (a directory: each tailsift agent serves pprof, and
// a CPU profile of the whole load is written there per run),
// TAILSIFT_AGENT_GATEWAY_WINDOW (the gateways' HTTP/2 window in bytes,
// stream and connection; unset, gRPC's default with its bandwidth estimate),
// TAILSIFT_AGENT_TICK (the loadgen's --tick; unset, its default of 1ms:
// each request at its scheduled time, as bench-e2e sends them; 50ms, the
// default and every run before 2026-12-06, sends them in clumps 20 times a
// second).
func TestAgentTier(t *testing.T) {
	tailsift, contrib := os.Getenv("TAILSIFT_BIN"), os.Getenv("TAILSIFT_CONTRIB_BIN")
	if tailsift == "" || contrib == "" {
		t.Skip("needs TAILSIFT_BIN and TAILSIFT_CONTRIB_BIN (make bench-smoke sets both)")
	}
	full := os.Getenv("TAILSIFT_AGENT_BENCH") != ""
	rounds, rate, duration := 1, 2000, 2*time.Second
	compressions := []string{"zstd"}
	if full {
		rounds = envInt(t, "TAILSIFT_AGENT_ROUNDS", 3)
		rate = envInt(t, "TAILSIFT_AGENT_RATE", 10000)
		duration = 20 * time.Second
		if d := os.Getenv("TAILSIFT_AGENT_DURATION"); d != "" {
			var err error
			duration, err = time.ParseDuration(d)
			require.NoError(t, err)
		}
		compressions = strings.Split(envOr("TAILSIFT_AGENT_COMPRESSION", "zstd,none"), ",")
	}
	shape := envOr("TAILSIFT_AGENT_SHAPE", "sdk")
	loadgen := loadgenBin(t)
	gw := startCountingGateways(t, 3)
	agents := []agentKind{
		{name: "contrib", bin: contrib, receiver: otlpAgentReceiver, exporter: lbAgentExporter},
		{name: "route", bin: tailsift, receiver: routeAgentReceiver, exporter: tailsiftAgentExporter},
		{name: "pdata", bin: tailsift, receiver: otlpAgentReceiver, exporter: tailsiftAgentExporter},
		{name: "lb-ours", bin: tailsift, receiver: otlpAgentReceiver, exporter: lbAgentExporter},
	}
	if !full {
		agents = agents[:3]
	}
	if base := os.Getenv("TAILSIFT_BASE_BIN"); base != "" {
		agents = append(agents, agentKind{name: "route-base", bin: base, receiver: routeAgentReceiver, exporter: tailsiftAgentExporter})
	}
	agents = selectAgents(t, agents, os.Getenv("TAILSIFT_AGENT_AGENTS"))
	pprofDir := os.Getenv("TAILSIFT_AGENT_PPROF")
	if out, err := exec.Command("uptime").Output(); err == nil {
		t.Logf("uptime: %s", bytes.TrimSpace(out))
	}
	for _, comp := range compressions {
		perRound := make([]map[string]agentRun, rounds)
		for round := range rounds {
			perRound[round] = map[string]agentRun{}
			for _, a := range agents {
				var prof string
				if pprofDir != "" && a.bin != contrib {
					prof = filepath.Join(pprofDir, fmt.Sprintf("%s-%s-%d.pprof", a.name, comp, round+1))
				}
				run := runAgent(t, a, comp, gw, loadgen, rate, duration, shape, prof)
				perRound[round][a.name] = run
				t.Logf("compression=%s round=%d agent=%s spans=%d cpu-µs/span=%.3f max-rss=%.0fMiB requests-in=%d rpcs-out=%d (%.2f per request, %.0f spans each) bytes-out/span=%.1f",
					comp, round+1, a.name, run.spans, run.cpuPerSpan*1e6, run.maxRSS/(1<<20),
					run.requestsIn, run.rpcsOut, float64(run.rpcsOut)/float64(run.requestsIn),
					float64(run.spans)/float64(run.rpcsOut), float64(run.wireOut)/float64(run.spans))
			}
		}
		reportAgentRounds(t, comp, agents, perRound)
	}
}

// agentRun is one agent's measurement in one round.
type agentRun struct {
	spans      int64
	cpuPerSpan float64 // seconds
	maxRSS     float64 // bytes (VmHWM)
	requestsIn int64   // Export requests the agent accepted
	rpcsOut    int64   // Export calls the gateways got from it
	wireOut    int64   // their message bytes, as sent (compressed)
}

// selectAgents keeps the agents named in list (comma-separated), all when
// list is empty.
func selectAgents(t *testing.T, agents []agentKind, list string) []agentKind {
	if list == "" {
		return agents
	}
	var out []agentKind
	for name := range strings.SplitSeq(list, ",") {
		i := slices.IndexFunc(agents, func(a agentKind) bool { return a.name == name })
		require.GreaterOrEqual(t, i, 0, "TAILSIFT_AGENT_AGENTS: no agent %q", name)
		out = append(out, agents[i])
	}
	return out
}

// reportAgentRounds logs each agent's median and every round's ratio to
// contrib's load_balancing.
func reportAgentRounds(t *testing.T, comp string, agents []agentKind, rounds []map[string]agentRun) {
	for _, a := range agents {
		var cpu, ratio []float64
		for _, r := range rounds {
			cpu = append(cpu, r[a.name].cpuPerSpan*1e6)
			if c, ok := r["contrib"]; ok {
				ratio = append(ratio, r[a.name].cpuPerSpan/c.cpuPerSpan)
			}
		}
		if len(ratio) == 0 {
			t.Logf("SUMMARY compression=%s agent=%-8s cpu-µs/span median %.3f (rounds %s)", comp, a.name, median(cpu), fmtList(cpu))
			continue
		}
		t.Logf("SUMMARY compression=%s agent=%-8s cpu-µs/span median %.3f (rounds %s)  vs contrib: median %.3f (rounds %s)",
			comp, a.name, median(cpu), fmtList(cpu), median(ratio), fmtList(ratio))
	}
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(parts, " ")
}

// agentKind is one agent configuration: its binary and the YAML of its
// receiver and exporter blocks.
type agentKind struct {
	name     string
	bin      string
	receiver func(endpoint string) (id, yaml string)
	exporter func(gateways []string, compression string) (id, yaml string)
}

func otlpAgentReceiver(endpoint string) (string, string) {
	return "otlp", fmt.Sprintf("otlp: {protocols: {grpc: {endpoint: %q}}}", endpoint)
}

func routeAgentReceiver(endpoint string) (string, string) {
	return "tailsift", fmt.Sprintf("tailsift: {protocols: {grpc: {endpoint: %q}}, route: {exporter: tailsift}}", endpoint)
}

// compressionKey is the YAML that sets compression: none when the
// compression is "default" (the exporter's own default).
func compressionKey(compression string) string {
	switch compression {
	case "default":
		return ""
	case "none":
		return `, compression: ""`
	}
	return ", compression: " + compression
}

func tailsiftAgentExporter(gateways []string, compression string) (string, string) {
	return "tailsift", fmt.Sprintf("tailsift: {members: {static: [%s]}, grpc: {tls: {insecure: true}%s}}",
		strings.Join(gateways, ", "), compressionKey(compression))
}

func lbAgentExporter(gateways []string, compression string) (string, string) {
	return "loadbalancing", fmt.Sprintf("loadbalancing: {routing_key: traceID, resolver: {static: {hostnames: [%s]}}, "+
		"protocol: {otlp: {tls: {insecure: true}%s}}}", strings.Join(gateways, ", "), compressionKey(compression))
}

// runAgent starts agent a, sends it the load, waits until the gateways have
// every span it accepted, and measures its CPU over that. With prof set, the
// agent serves pprof and its CPU profile over the load is written to prof.
func runAgent(t *testing.T, a agentKind, compression string, gw *countingGateways, loadgen string, rate int, duration time.Duration, shape, prof string) agentRun {
	t.Helper()
	dir := t.TempDir()
	endpoint := freeAddr(t)
	rid, ryaml := a.receiver(endpoint)
	eid, eyaml := a.exporter(gw.addrs, compression)
	ext, extList, pprofAddr := "", "", ""
	if prof != "" {
		pprofAddr = freeAddr(t)
		ext = fmt.Sprintf("extensions: {pprof: {endpoint: %q}}\n", pprofAddr)
		extList = "  extensions: [pprof]\n"
	}
	conf := fmt.Sprintf(`receivers:
  %s
exporters:
  %s
%sservice:
%s  telemetry: {metrics: {level: none}, logs: {level: warn}}
  pipelines:
    traces: {receivers: [%s], exporters: [%s]}
`, ryaml, eyaml, ext, extList, rid, eid)
	cfgPath := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(conf), 0o600))
	// The agent writes its output to a file the test reads for failure
	// messages: no copying goroutine, nothing shared.
	logs := outputFile(filepath.Join(dir, "agent.log"))
	logFile, err := os.Create(string(logs))
	require.NoError(t, err)
	cmd := exec.Command(a.bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Start()
	require.NoError(t, logFile.Close()) // the agent has its own descriptor
	require.NoError(t, err)
	defer func() {
		if cmd.ProcessState == nil { // a failed check: stop it
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	waitListening(t, endpoint, logs)

	before := gw.count(t)
	cpu0 := procCPUSeconds(t, cmd.Process.Pid)
	profDone := make(chan error, 1)
	if prof != "" {
		go func() { profDone <- fetchProfile(pprofAddr, duration, prof) }()
	}
	summary := filepath.Join(dir, "loadgen.json")
	args := []string{"--endpoint", endpoint, "--rate", strconv.Itoa(rate),
		"--duration", duration.String(), "--drain", "1s", "--mix", "late=0", "--shape", shape,
		"--seed", "7", "--quiet", "--summary-json", summary}
	if tick := os.Getenv("TAILSIFT_AGENT_TICK"); tick != "" {
		args = append(args, "--tick", tick)
	}
	lg := exec.Command(loadgen, args...)
	out, err := lg.CombinedOutput()
	require.NoError(t, err, "loadgen: %s\nagent: %s", out, logs.String())
	var s struct {
		Accepted int64 `json:"accepted_spans"`
		Refused  int64 `json:"refused_spans"`
		Requests int64 `json:"accepted_requests"`
	}
	b, err := os.ReadFile(summary)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &s))
	require.Positive(t, s.Accepted)
	deadline := time.Now().Add(60 * time.Second)
	for gw.count(t).spans-before.spans < s.Accepted {
		require.True(t, time.Now().Before(deadline), "%s: the gateways got %d of the %d spans the agent accepted\n%s",
			a.name, gw.count(t).spans-before.spans, s.Accepted, logs.String())
		time.Sleep(50 * time.Millisecond)
	}
	cpu1 := procCPUSeconds(t, cmd.Process.Pid)
	require.Zero(t, s.Refused, "%s refused spans at %d spans/s: the agent does not keep up; lower TAILSIFT_AGENT_RATE", a.name, rate)
	got := gw.count(t)
	require.Equal(t, s.Accepted, got.spans-before.spans, "%s: spans duplicated", a.name)
	if prof != "" {
		require.NoError(t, <-profDone, "CPU profile of %s", a.name)
	}
	run := agentRun{
		spans: s.Accepted, cpuPerSpan: (cpu1 - cpu0) / float64(s.Accepted), maxRSS: procHWM(cmd.Process.Pid),
		requestsIn: s.Requests, rpcsOut: got.rpcs - before.rpcs, wireOut: got.bytes - before.bytes,
	}
	// The agent stops cleanly (route mode: the receiver stops before the
	// exporter whose router it feeds).
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "%s did not exit cleanly:\n%s", a.name, logs.String())
	return run
}

func waitListening(t *testing.T, addr string, logs fmt.Stringer) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return
		}
		require.Less(t, time.Since(start), 60*time.Second, "the agent does not listen on %s:\n%s", addr, logs.String())
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// procCPUSeconds is pid's utime+stime (/proc/<pid>/stat fields 14 and 15).
func procCPUSeconds(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, err := strconv.ParseFloat(f[11], 64)
	require.NoError(t, err)
	st, err := strconv.ParseFloat(f[12], 64)
	require.NoError(t, err)
	return (ut + st) / 100 // USER_HZ
}

// procHWM is pid's peak RSS in bytes, 0 when unknown.
func procHWM(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, key)
	return n
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// loadgenBin is LOADGEN_BIN, or tailsift-loadgen built from ../cmd.
func loadgenBin(t *testing.T) string {
	if p := os.Getenv("LOADGEN_BIN"); p != "" {
		return p
	}
	p := filepath.Join(t.TempDir(), "tailsift-loadgen")
	cmd := exec.Command("go", "build", "-o", p, "./cmd/tailsift-loadgen")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build tailsift-loadgen: %s", out)
	return p
}

// countingGateways are OTLP gRPC servers in a child process (this test
// binary, TestAgentGatewayProcess) that count the spans they receive.
type countingGateways struct {
	addrs []string
	in    io.Writer
	out   *bufio.Scanner
}

const agentGatewaysEnv = "TAILSIFT_AGENT_GATEWAYS"

func startCountingGateways(t *testing.T, n int) *countingGateways {
	in, out, addrs := startGatewayChild(t, "TestAgentGatewayProcess", agentGatewaysEnv, n)
	return &countingGateways{addrs: addrs, in: in, out: out}
}

// gatewayCounts is what the gateways received so far: spans, Export calls,
// and those calls' message bytes as they came over the wire (compressed).
type gatewayCounts struct{ spans, rpcs, bytes int64 }

// count asks the gateways' process for what they received so far.
func (g *countingGateways) count(t *testing.T) gatewayCounts {
	_, err := io.WriteString(g.in, "count\n")
	require.NoError(t, err)
	for g.out.Scan() {
		var c gatewayCounts
		if n, _ := fmt.Sscanf(g.out.Text(), "spans %d rpcs %d bytes %d", &c.spans, &c.rpcs, &c.bytes); n == 3 {
			return c
		}
	}
	t.Fatal("the gateway process exited")
	return gatewayCounts{}
}

// fetchProfile writes to path the CPU profile of the agent serving pprof on
// addr, over d.
func fetchProfile(addr string, d time.Duration, path string) error {
	secs := max(int(d/time.Second), 1)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return fmt.Errorf("fetch the CPU profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch the CPU profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("write the CPU profile: %w", err)
	}
	return f.Close()
}

// TestAgentGatewayProcess is TestAgentTier's gateways' process: it serves
// while its standard input is open and answers each line with the spans
// received so far. Run directly, it does nothing.
func TestAgentGatewayProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(agentGatewaysEnv))
	if n == 0 {
		t.Skip("run by TestAgentTier only")
	}
	var spans, rpcs, wireBytes atomic.Int64
	desc := nopTraceService
	desc.Methods = []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in rawBytes
			if err := dec(&in); err != nil {
				return nil, err
			}
			var b wire.Batch
			if err := wire.Scan(in.data, &b); err != nil {
				return nil, err
			}
			spans.Add(int64(len(b.Spans)))
			rpcs.Add(1)
			return &rawBytes{}, nil
		},
	}}
	countBytes := grpc.StatsHandler(inPayloadBytes{&wireBytes})
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer(append(gatewayWindow(t), grpc.ForceServerCodecV2(rawServerCodec{}), countBytes)...)
		srv.RegisterService(&desc, struct{}{})
		go func() { _ = srv.Serve(l) }()
		defer srv.Stop()
		fmt.Printf("gateway %s\n", l.Addr())
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Printf("spans %d rpcs %d bytes %d\n", spans.Load(), rpcs.Load(), wireBytes.Load())
	}
}

// gatewayWindow is the gateways' HTTP/2 flow-control window from
// TAILSIFT_AGENT_GATEWAY_WINDOW (bytes, stream and connection): unset, gRPC's
// default (64 KiB, grown by its bandwidth estimate, which pings the agent).
func gatewayWindow(t *testing.T) []grpc.ServerOption {
	n := envInt(t, "TAILSIFT_AGENT_GATEWAY_WINDOW", 0)
	if n == 0 {
		return nil
	}
	return []grpc.ServerOption{grpc.InitialWindowSize(int32(n)), grpc.InitialConnWindowSize(int32(n))}
}

// inPayloadBytes adds up the wire size (compressed) of received messages.
type inPayloadBytes struct{ n *atomic.Int64 }

func (inPayloadBytes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (inPayloadBytes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (inPayloadBytes) HandleConn(context.Context, stats.ConnStats) {}

func (h inPayloadBytes) HandleRPC(_ context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.InPayload); ok {
		h.n.Add(int64(p.CompressedLength))
	}
}

// outputFile is the path of a file a process writes its output to; String
// reads what it has written so far.
type outputFile string

func (f outputFile) String() string {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return fmt.Sprintf("(output unreadable: %v)", err)
	}
	return string(b)
}
