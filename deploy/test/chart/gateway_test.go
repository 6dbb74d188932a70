package chart

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// members is the `members` block (agents' exporter, gateways' cluster).
type members struct {
	DNS struct {
		Hostname string `json:"hostname"`
		Port     int    `json:"port"`
	} `json:"dns"`
}

// collectorConfig is the part of a collector config the checks read.
type collectorConfig struct {
	Extensions map[string]struct {
		Endpoint  string `json:"endpoint"`
		Directory string `json:"directory"`
	} `json:"extensions"`
	Receivers struct {
		Tailsift struct {
			Buffer struct {
				MaxBytes string `json:"max_bytes"`
			} `json:"buffer"`
			Storage string `json:"storage"`
			Output  struct {
				ShutdownTimeout string `json:"shutdown_timeout"`
			} `json:"output"`
			Cluster struct {
				Self  string `json:"self"`
				Drain string `json:"drain"`
				GRPC  struct {
					TLS struct {
						Insecure bool `json:"insecure"`
					} `json:"tls"`
				} `json:"grpc"`
				Members members `json:"members"`
			} `json:"cluster"`
		} `json:"tailsift"`
	} `json:"receivers"`
	Exporters struct {
		Tailsift struct {
			Members members `json:"members"`
		} `json:"tailsift"`
	} `json:"exporters"`
	Service struct {
		Extensions []string `json:"extensions"`
		Telemetry  struct {
			Metrics struct {
				Readers []struct {
					Pull struct {
						Exporter struct {
							Prometheus struct {
								Port int `json:"port"`
							} `json:"prometheus"`
						} `json:"exporter"`
					} `json:"pull"`
				} `json:"readers"`
			} `json:"metrics"`
		} `json:"telemetry"`
	} `json:"service"`
}

func parseConfig(t *testing.T, cm *corev1.ConfigMap) collectorConfig {
	t.Helper()
	require.NotNil(t, cm)
	var c collectorConfig
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &c))
	return c
}

func TestGateway(t *testing.T) {
	helm, chart := tools(t)
	const idleMiB = 128 // values.yaml gateway.idleMemoryMiB
	for _, tc := range []struct {
		name          string
		values        string
		store         bool
		wantMemoryMiB int64 // the request: idle + 1.2 x buffer.max_bytes
	}{
		{name: "defaults", store: true, wantMemoryMiB: idleMiB + 614},
		{
			name:          "larger buffer, longer drain",
			values:        "gateway: {bufferMiB: 2048, drainSeconds: 30, preStopSeconds: 12, shutdownSeconds: 20}",
			store:         true,
			wantMemoryMiB: idleMiB + 2457,
		},
		{name: "no store", values: "gateway: {store: {enabled: false}}", wantMemoryMiB: idleMiB + 614},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, helm, chart, tc.values)
			require.Len(t, objs.statefulSets, 1)
			sts := objs.statefulSets[0]
			cfg := parseConfig(t, objs.configMaps[sts.Spec.Template.Spec.Volumes[0].ConfigMap.Name])
			pod := sts.Spec.Template
			require.Len(t, pod.Spec.Containers, 1)
			c := pod.Spec.Containers[0]

			// Membership: the headless Service selects the gateways, and the
			// cluster block names it.
			svc := objs.services[sts.Spec.ServiceName]
			require.NotNil(t, svc, "the StatefulSet's serviceName %q is rendered", sts.Spec.ServiceName)
			assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
			assertSelects(t, svc.Spec.Selector, pod.Labels)
			assert.Equal(t, fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, namespace), cfg.Receivers.Tailsift.Cluster.Members.DNS.Hostname)
			assert.Equal(t, "${env:POD_IP}:4317", cfg.Receivers.Tailsift.Cluster.Self)
			assert.Equal(t, 4317, cfg.Receivers.Tailsift.Cluster.Members.DNS.Port)
			assert.True(t, cfg.Receivers.Tailsift.Cluster.GRPC.TLS.Insecure, "plain gRPC between gateways, as the receivers serve it")
			assert.Equal(t, int32(4317), containerPort(t, c, "otlp-grpc"))
			require.Len(t, c.Env, 1)
			assert.Equal(t, "POD_IP", c.Env[0].Name)
			assert.Equal(t, "status.podIP", c.Env[0].ValueFrom.FieldRef.FieldPath)

			// Readiness comes from health_check.
			require.NotNil(t, c.ReadinessProbe.HTTPGet)
			assert.Equal(t, endpointPort(t, cfg.Extensions["health_check"].Endpoint),
				portNumber(t, c, c.ReadinessProbe.HTTPGet.Port))

			// preStop, then output.shutdown_timeout fit in the grace period,
			// with the chart's 5 s margin. The receiver's shutdown runs the
			// drain within output.shutdown_timeout, and gives it at most half
			// of it: the timeout is at least twice the drain, and leaves the
			// flush shutdownSeconds at least.
			require.NotNil(t, c.Lifecycle.PreStop.Sleep, "preStop sleeps (no shell in the image)")
			preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			drain := duration(t, cfg.Receivers.Tailsift.Cluster.Drain)
			shutdown := duration(t, cfg.Receivers.Tailsift.Output.ShutdownTimeout)
			assert.GreaterOrEqual(t, shutdown, 2*drain, "the drain gets at most half of output.shutdown_timeout")
			assert.GreaterOrEqual(t, shutdown-drain, 10*time.Second, "the flush after the drain (shutdownSeconds)")
			require.NotNil(t, pod.Spec.TerminationGracePeriodSeconds)
			grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
			assert.Equal(t, preStop+shutdown+5*time.Second, grace)

			// A PodDisruptionBudget covers the gateways.
			require.Len(t, objs.pdbs, 1)
			assertSelects(t, objs.pdbs[0].Spec.Selector.MatchLabels, pod.Labels)
			assert.Equal(t, "1", objs.pdbs[0].Spec.MaxUnavailable.String())

			// Memory from the sizing rule, on the configured buffer.
			assert.Equal(t, tc.wantMemoryMiB, c.Resources.Requests.Memory().Value()>>20)
			assert.Equal(t, idleMiB+byteSize(t, cfg.Receivers.Tailsift.Buffer.MaxBytes)*12/10>>20,
				c.Resources.Requests.Memory().Value()>>20, "request = idle + 1.2 x buffer.max_bytes, in MiB")
			assert.Equal(t, 1, c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()), "limit above request")
			assert.True(t, c.Resources.Requests.Cpu().Cmp(resource.MustParse("1")) == 0)

			assertScrape(t, pod.ObjectMeta, c, cfg)
			assertSecure(t, pod.Spec, c)

			// The durable store is on the StatefulSet's volume, at the
			// extension's directory.
			if !tc.store {
				assert.Empty(t, sts.Spec.VolumeClaimTemplates)
				assert.NotContains(t, cfg.Extensions, "tailsift")
				assert.Empty(t, cfg.Receivers.Tailsift.Storage)
				return
			}
			require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
			claim := sts.Spec.VolumeClaimTemplates[0]
			dir := cfg.Extensions["tailsift"].Directory
			require.NotEmpty(t, dir)
			assert.Contains(t, cfg.Service.Extensions, "tailsift")
			assert.Equal(t, "tailsift", cfg.Receivers.Tailsift.Storage, "the receiver records to the extension's store")
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.Name == claim.Name {
					mounted = m.MountPath == dir && !m.ReadOnly
				}
			}
			assert.True(t, mounted, "claim %q mounted read-write at %s", claim.Name, dir)
			assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, claim.Spec.AccessModes)
			assert.False(t, claim.Spec.Resources.Requests.Storage().IsZero())
			assert.Equal(t, endpointPort(t, cfg.Extensions["tailsift"].Endpoint), containerPort(t, c, "store-api"))
		})
	}
}

func TestAgent(t *testing.T) {
	helm, chart := tools(t)
	objs := render(t, helm, chart, "")
	require.Len(t, objs.daemonSets, 1)
	ds := objs.daemonSets[0]
	pod := ds.Spec.Template
	c := pod.Spec.Containers[0]
	cfg := parseConfig(t, objs.configMaps[pod.Spec.Volumes[0].ConfigMap.Name])
	require.Len(t, objs.statefulSets, 1)

	// The agents route to the gateways' headless Service.
	gateways := objs.statefulSets[0].Spec.ServiceName
	assert.Equal(t, fmt.Sprintf("%s.%s.svc.cluster.local", gateways, namespace), cfg.Exporters.Tailsift.Members.DNS.Hostname)
	assert.Equal(t, 4317, cfg.Exporters.Tailsift.Members.DNS.Port)
	assertSelects(t, ds.Spec.Selector.MatchLabels, pod.Labels)
	for _, p := range c.Ports {
		if p.Name == "otlp-grpc" || p.Name == "otlp-http" {
			assert.Equal(t, p.ContainerPort, p.HostPort, "%s on the node's address", p.Name)
		}
	}
	assert.Equal(t, endpointPort(t, cfg.Extensions["health_check"].Endpoint), portNumber(t, c, c.ReadinessProbe.HTTPGet.Port))
	assertScrape(t, pod.ObjectMeta, c, cfg)
	assertSecure(t, pod.Spec, c)
}

func TestTiersApart(t *testing.T) {
	helm, chart := tools(t)
	for _, tc := range []struct {
		values           string
		gateways, agents int
		configMaps, pdbs int
	}{
		{values: "agent: {enabled: false}", gateways: 1, configMaps: 1, pdbs: 1},
		{values: "gateway: {enabled: false}", agents: 1, configMaps: 1},
		{values: "gateway: {podDisruptionBudget: {enabled: false}}", gateways: 1, agents: 1, configMaps: 2},
	} {
		t.Run(tc.values, func(t *testing.T) {
			objs := render(t, helm, chart, tc.values)
			assert.Len(t, objs.statefulSets, tc.gateways)
			assert.Len(t, objs.daemonSets, tc.agents)
			assert.Len(t, objs.configMaps, tc.configMaps)
			assert.Len(t, objs.pdbs, tc.pdbs)
		})
	}
}

// assertScrape checks the Prometheus annotations against the container's
// metrics port and the collector's telemetry.
func assertScrape(t *testing.T, meta metav1.ObjectMeta, c corev1.Container, cfg collectorConfig) {
	t.Helper()
	assert.Equal(t, "true", meta.Annotations["prometheus.io/scrape"])
	assert.Equal(t, "/metrics", meta.Annotations["prometheus.io/path"])
	require.Len(t, cfg.Service.Telemetry.Metrics.Readers, 1)
	port := cfg.Service.Telemetry.Metrics.Readers[0].Pull.Exporter.Prometheus.Port
	assert.Equal(t, strconv.Itoa(port), meta.Annotations["prometheus.io/port"])
	assert.Equal(t, int32(port), containerPort(t, c, "metrics"))
}

// assertSecure checks the pod runs as the image's non-root user, read-only.
func assertSecure(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	require.NotNil(t, spec.SecurityContext.RunAsNonRoot)
	assert.True(t, *spec.SecurityContext.RunAsNonRoot)
	assert.Equal(t, int64(10001), *spec.SecurityContext.RunAsUser)
	assert.Equal(t, int64(10001), *spec.SecurityContext.FSGroup)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.False(t, *spec.AutomountServiceAccountToken)
}

func assertSelects(t *testing.T, selector, labels map[string]string) {
	t.Helper()
	require.NotEmpty(t, selector)
	for k, v := range selector {
		assert.Equal(t, v, labels[k], "selector %s=%s", k, v)
	}
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	require.Failf(t, "no port", "container has no port %q", name)
	return 0
}

// portNumber resolves a probe's port, named or numbered, on the container.
func portNumber(t *testing.T, c corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	if port.StrVal != "" {
		return containerPort(t, c, port.StrVal)
	}
	return port.IntVal
}

func endpointPort(t *testing.T, endpoint string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(endpoint)
	require.NoError(t, err)
	n, err := strconv.ParseInt(p, 10, 32)
	require.NoError(t, err)
	return int32(n)
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	require.NoError(t, err)
	return d
}

// byteSize parses the collector's "<n>MiB"/"<n>GiB" sizes.
func byteSize(t *testing.T, s string) int64 {
	t.Helper()
	for suffix, unit := range map[string]int64{"MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			require.NoError(t, err)
			return v * unit
		}
	}
	require.Failf(t, "size", "unexpected size %q", s)
	return 0
}

// TestEnv: agent.env and gateway.env reach their tier's container, and the
// gateway keeps its own POD_IP (cluster.self) beside them.
func TestEnv(t *testing.T) {
	helm, chart := tools(t)
	for _, values := range []string{"", "agent: {env: []}\ngateway: {env: []}"} {
		objs := render(t, helm, chart, values)
		assert.Empty(t, objs.daemonSets[0].Spec.Template.Spec.Containers[0].Env, "agent env with %q", values)
		env := objs.statefulSets[0].Spec.Template.Spec.Containers[0].Env
		require.Len(t, env, 1, "gateway env with %q", values)
		assert.Equal(t, "POD_IP", env[0].Name)
	}
	objs := render(t, helm, chart, `
agent: {env: [{name: GOMAXPROCS, value: "2"}]}
gateway:
  env:
    - {name: GODEBUG, value: "schedtrace=2000000000"}
    - name: NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
`)
	assert.Equal(t, []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "2"}}, objs.daemonSets[0].Spec.Template.Spec.Containers[0].Env)
	env := objs.statefulSets[0].Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 3)
	assert.Equal(t, "POD_IP", env[0].Name)
	assert.Equal(t, corev1.EnvVar{Name: "GODEBUG", Value: "schedtrace=2000000000"}, env[1])
	assert.Equal(t, "NODE", env[2].Name)
	require.NotNil(t, env[2].ValueFrom)
	assert.Equal(t, "spec.nodeName", env[2].ValueFrom.FieldRef.FieldPath)
}
