//go:build linux

package scaleout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tailsift/tailsift/internal/membership/membershiptest"
)

// Timings of every scenario. The completion quiet is well above the gaps
// between a trace's spans (under 1 s), and max_wait above its whole window
// plus quiet, so that a gateway holding a whole trace decides it once, with
// every span.
const (
	quiet       = 2 * time.Second
	maxWait     = 7 * time.Second
	drain       = 2 * time.Second
	settle      = time.Second
	dnsInterval = 500 * time.Millisecond
	slowMs      = 1000
	hostname    = "gateways.scaleout.test"
)

// Gateway hosts: the first three start with the cluster, the fourth is
// the one the add scenario adds, and a rolling restart's replacements come
// up at .21, .22, …
var (
	initialHosts     = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	addedHost        = "127.0.0.14"
	replacementHosts = []string{"127.0.0.21", "127.0.0.22", "127.0.0.23"}
)

// clusterOptions choose a cluster's membership and the gateways' shape.
type clusterOptions struct {
	dns       bool // membership from the DNS server, else a static list of initialHosts
	cluster   bool // gateways have the cluster block
	handover  bool // and hand traces over on a ring change
	processor bool // gateways run the tailsift processor, else the tailsift receiver
}

// withCluster returns the options for gateways with the cluster block and
// handover when the binary has it, and plain gateways otherwise.
func withCluster(dns bool) clusterOptions {
	return clusterOptions{dns: dns, cluster: clusterBlock, handover: clusterBlock}
}

// cluster is an agent, gateways and a sink, the test's processes.
type cluster struct {
	t    testing.TB
	opts clusterOptions

	hosts            []string // the gateways the cluster starts with
	quiet, maxWait   time.Duration
	port, healthPort int
	metricsPort      int // self-metrics of every gateway, on its host
	dns              *membershiptest.DNSServer
	sink             *sink
	agent            *proc

	mu       sync.Mutex
	gateways map[string]*proc // by host
	listed   []string         // the hosts the DNS server answers with
}

// startCluster starts the sink, the DNS server (for DNS membership), the
// initial gateways and the agent, and waits until all are ready.
func startCluster(t testing.TB, opts clusterOptions) *cluster {
	t.Helper()
	hosts := slices.Concat(initialHosts, []string{addedHost}, replacementHosts)
	c := &cluster{
		t:          t,
		opts:       opts,
		hosts:      initialHosts,
		quiet:      quiet,
		maxWait:    maxWait,
		port:       freePort(t, hosts...),
		healthPort: freePort(t, hosts...),
		sink:       startSink(t),
		gateways:   map[string]*proc{},
	}
	c.metricsPort = freePort(t, hosts...)
	if opts.dns {
		c.dns = membershiptest.StartDNS(t, initialHosts...)
		c.listed = slices.Clone(initialHosts)
	}
	errs := make([]error, len(initialHosts))
	var wg sync.WaitGroup
	for i, h := range initialHosts {
		wg.Go(func() { errs[i] = c.startGateway(h) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	agentPort := freePort(t, "127.0.0.1")
	agentHealth := freePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(agentPort))
	health := net.JoinHostPort("127.0.0.1", strconv.Itoa(agentHealth))
	agent, err := startProc(t, "agent.yaml", "agent", addr, health, agentConfig{members: c.members(), Addr: addr, HealthAddr: health})
	require.NoError(t, err)
	c.agent = agent
	return c
}

// members is the members block of the agent and of the gateways' cluster
// block.
func (c *cluster) members() members {
	if !c.opts.dns {
		static := make([]string, 0, len(c.hosts))
		for _, h := range c.hosts {
			static = append(static, c.addr(h))
		}
		return members{Static: static}
	}
	return members{DNS: c.dns.Addr, Hostname: hostname, Port: c.port, Interval: dnsInterval}
}

// addr is the OTLP gRPC address of the gateway on host.
func (c *cluster) addr(host string) string { return net.JoinHostPort(host, strconv.Itoa(c.port)) }

// startGateway starts a gateway on host and waits until it is ready; it
// does not list it in DNS.
func (c *cluster) startGateway(host string) error {
	name := "gateway-" + host[len("127.0.0."):]
	cfg := gatewayConfig{
		members:         c.members(),
		Name:            name,
		Addr:            c.addr(host),
		HealthAddr:      net.JoinHostPort(host, strconv.Itoa(c.healthPort)),
		Host:            host,
		MetricsPort:     c.metricsPort,
		SinkAddr:        c.sink.addr,
		Quiet:           c.quiet,
		MaxWait:         c.maxWait,
		SlowThresholdMs: slowMs,
		Processor:       c.opts.processor,
		Cluster:         c.opts.cluster,
		Handover:        c.opts.handover,
		Drain:           drain,
		Settle:          settle,
	}
	p, err := startProc(c.t, "gateway.yaml", name, cfg.Addr, cfg.HealthAddr, cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gateways[host] = p
	return nil
}

// gateway returns the process on host.
func (c *cluster) gateway(host string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.gateways[host]
	require.NotNil(c.t, p, "no gateway on %s", host)
	return p
}

// list and unlist change what the DNS server answers.
func (c *cluster) list(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed = append(c.listed, host)
	c.dns.Set(c.listed...)
}

func (c *cluster) unlist(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed = slices.DeleteFunc(c.listed, func(h string) bool { return h == host })
	c.dns.Set(c.listed...)
}

// add starts a gateway on host and, once it is ready, lists it in DNS (as
// a Kubernetes Service lists a ready pod).
func (c *cluster) add(host string) {
	require.NoError(c.t, c.startGateway(host))
	c.list(host)
}

// remove takes the gateway on host out of DNS and sends it SIGTERM at the
// same moment, as Kubernetes does when it deletes a pod, and waits until
// it has exited cleanly.
func (c *cluster) remove(host string) {
	p := c.gateway(host)
	c.unlist(host)
	p.signal(c.t, syscall.SIGTERM)
	p.waitExit(c.t, drain+20*time.Second, true)
}

// kill sends the gateway on host SIGKILL and waits until it is gone.
func (c *cluster) kill(host string) {
	p := c.gateway(host)
	p.signal(c.t, syscall.SIGKILL)
	p.waitExit(c.t, 10*time.Second, false)
}

// run sends the workload through the agent while scenario runs; scenario
// gets the workload's start, which its events are timed from. run then
// waits until the gateways have decided every trace and the sink has
// settled, and returns the workload's traces.
func (c *cluster) run(w workload, scenario func(start time.Time)) []*plannedTrace {
	c.t.Helper()
	traces := w.plan()
	s, err := newSender(c.agent.addr, traces)
	require.NoError(c.t, err)
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), w.Duration+2*time.Minute)
	defer cancel()
	start := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		s.run(ctx, start)
	}()
	if scenario != nil {
		scenario(start)
	}
	<-sent
	require.Empty(c.t, s.errs(), "the agent refused spans")
	// Every trace is decided at most max_wait after its first span (plus a
	// drain, for a gateway that left), and kept spans then go out at once.
	if !c.sink.settle(time.Now().Add(maxWait+drain), 2*time.Second, time.Minute) {
		n, _ := c.sink.quietSince()
		c.t.Errorf("the sink was still receiving a minute after the workload (%d spans)", n)
	}
	return traces
}

// metric sums the samples of every series whose name starts with name in
// the self-metrics of the gateway on host.
func (c *cluster) metric(host, name string) (float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://%s/metrics", net.JoinHostPort(host, strconv.Itoa(c.metricsPort)))
	resp, err := client.Get(url)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", url, err)
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %q from %s: %w", line, url, err)
		}
		sum += v
	}
	return sum, nil
}

// at sleeps until offset after start: the scenarios' events are timed from
// the workload's start, on the wall clock, since they act on processes.
func at(start time.Time, offset time.Duration) {
	time.Sleep(time.Until(start.Add(offset)))
}

// String names the cluster's gateways, for logs.
func (c *cluster) String() string {
	kind := map[bool]string{false: "tailsift receiver", true: "tailsift processor"}[c.opts.processor]
	switch {
	case c.opts.handover:
		kind += " with cluster block"
	case c.opts.cluster:
		kind += " with cluster block, handover off"
	default:
		kind += " without cluster block"
	}
	return fmt.Sprintf("agent %s, gateways (%s) on port %d, %s membership",
		c.agent.addr, kind, c.port, map[bool]string{false: "static", true: "DNS"}[c.opts.dns])
}
