// Package image tests the container image that `make image` builds: its
// user, entrypoint, ports and labels, that it has no shell, and that a
// container started from it on its own default configuration accepts OTLP,
// keeps an error trace in the kept-traces file, drops a plain one, and stops
// cleanly on SIGTERM.
//
// It needs podman (scripts/deps/deploy.sh installs it when run as root) and
// skips, saying so, where podman is missing. Rootful podman with its default
// bridge network publishes the container's ports on random loopback ports;
// no port on the host is fixed.
package image

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// uid is the numeric user the Dockerfile runs the collector as.
	uid = "10001"
	// keptTraceID has an ERROR span: the image's `errors` policy keeps it.
	keptTraceID = "5b8efff798038103d269b633813fc60c"
	// droppedTraceID's low 56 bits are zero, so its randomness is 0 and the
	// 0.01 % `baseline` policy never keeps it; it is fast and OK.
	droppedTraceID = "0af7651916cd43dd8400000000000000"
)

func TestImage(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (scripts/deps/deploy.sh installs it when run as root): the image is not tested")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	if os.Getenv("CONTAINERS_CONF") == "" {
		// crun fails on these machines; this file selects runc.
		t.Setenv("CONTAINERS_CONF", filepath.Join(root, "deploy", "image", "containers.conf"))
	}
	pm := func(ctx context.Context, args ...string) (string, error) {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, podman, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return string(out), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out), nil
	}

	tag := fmt.Sprintf("localhost/tailsift-test:%d", os.Getpid())
	build := exec.CommandContext(t.Context(), "make", "-C", root, "image", "IMAGE="+tag)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "make image:\n%s", out)
	t.Cleanup(func() { _, _ = pm(context.Background(), "rmi", "--force", tag) })

	t.Run("config", func(t *testing.T) {
		out, err := pm(t.Context(), "image", "inspect", tag)
		require.NoError(t, err)
		var images []struct {
			Config struct {
				User         string
				Entrypoint   []string
				Cmd          []string
				ExposedPorts map[string]struct{}
				Labels       map[string]string
				WorkingDir   string
			}
		}
		require.NoError(t, json.Unmarshal([]byte(out), &images))
		require.Len(t, images, 1)
		c := images[0].Config
		assert.Equal(t, uid+":"+uid, c.User, "numeric non-root user and group")
		assert.Equal(t, []string{"/otelcol-tailsift"}, c.Entrypoint)
		assert.Equal(t, []string{"--config", "/etc/tailsift/config.yaml"}, c.Cmd)
		ports := make([]string, 0, len(c.ExposedPorts))
		for p := range c.ExposedPorts {
			ports = append(ports, p)
		}
		assert.ElementsMatch(t, []string{"4317/tcp", "4318/tcp", "13133/tcp", "13134/tcp", "8888/tcp"}, ports)
		assert.Equal(t, "tailsift", c.Labels["org.opencontainers.image.title"])
		assert.Regexp(t, `^\d+\.\d+\.\d+`, c.Labels["org.opencontainers.image.version"])
		assert.NotEmpty(t, c.Labels["org.opencontainers.image.source"])
		assert.Equal(t, "/var/lib/tailsift", c.WorkingDir)
	})

	t.Run("no shell", func(t *testing.T) {
		for _, sh := range []string{"/bin/sh", "/bin/bash", "/busybox"} {
			_, err := pm(t.Context(), "run", "--rm", "--entrypoint", sh, tag, "-c", "true")
			assert.Error(t, err, "%s ran in the image", sh)
		}
	})

	t.Run("run", func(t *testing.T) {
		runContainer(t, pm, tag)
	})
}

// podmanFunc runs podman with the given arguments and returns its stdout.
type podmanFunc func(ctx context.Context, args ...string) (string, error)

// runContainer starts the image on its default configuration, with its
// state directory on a host directory, and checks what comes out.
func runContainer(t *testing.T, pm podmanFunc, tag string) {
	data := t.TempDir()
	// The collector runs as uid 10001; let it write the host directory.
	require.NoError(t, os.Chmod(data, 0o777))
	name := fmt.Sprintf("tailsift-test-%d", os.Getpid())
	_, err := pm(t.Context(), "run", "--detach", "--name", name,
		"--publish", "127.0.0.1::4318", "--publish", "127.0.0.1::13133", "--publish", "127.0.0.1::8888",
		"--volume", data+":/var/lib/tailsift/data", tag)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("podman", "logs", name).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		_, _ = pm(context.Background(), "rm", "--force", name)
	})
	port := func(p string) string {
		out, err := pm(t.Context(), "port", name, p)
		require.NoError(t, err)
		// "127.0.0.1:34487"
		return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	}
	health, otlp, metrics := port("13133"), port("4318"), port("8888")

	// The default config listens on 0.0.0.0: the published ports answer.
	waitFor(t, 30*time.Second, "health_check ready", func() (bool, error) {
		code, _, err := get("http://" + health + "/")
		return code == http.StatusOK, err
	})
	for id, status := range map[string]int{keptTraceID: 2, droppedTraceID: 1} {
		require.NoError(t, postTrace(t.Context(), "http://"+otlp+"/v1/traces", id, status))
	}

	// The processor decides both after completion.quiet (2s).
	waitFor(t, 60*time.Second, "both traces decided", func() (bool, error) {
		_, body, err := get("http://" + metrics + "/metrics")
		return decided(body, "keep") >= 1 && decided(body, "drop") >= 1, err
	})
	waitFor(t, 30*time.Second, "the kept trace in data/kept-traces.otlp", func() (bool, error) {
		spans, err := keptBytes(filepath.Join(data, "kept-traces.otlp"))
		return bytes.Contains(spans, mustHex(keptTraceID)), err
	})
	spans, err := keptBytes(filepath.Join(data, "kept-traces.otlp"))
	require.NoError(t, err)
	assert.False(t, bytes.Contains(spans, mustHex(droppedTraceID)), "the dropped trace was written")

	// SIGTERM (podman stop) shuts the collector down cleanly as PID 1.
	_, err = pm(t.Context(), "stop", "--time", "30", name)
	require.NoError(t, err)
	code, err := pm(t.Context(), "inspect", "--format", "{{.State.ExitCode}}", name)
	require.NoError(t, err)
	assert.Equal(t, "0", strings.TrimSpace(code), "exit code after SIGTERM")
}

// postTrace sends one single-span trace as OTLP/HTTP JSON.
func postTrace(ctx context.Context, url, traceID string, status int) error {
	now := time.Now()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"image-test"}}]},
"scopeSpans":[{"spans":[{"traceId":%q,"spanId":"00f067aa0ba902b7","name":"GET /","kind":2,
"startTimeUnixNano":"%d","endTimeUnixNano":"%d","status":{"code":%d}}]}]}]}`,
		traceID, now.UnixNano(), now.Add(time.Millisecond).UnixNano(), status)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("make the OTLP request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("send trace %s: %w", traceID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("send trace %s: %s: %s", traceID, resp.Status, msg)
	}
	return nil
}

// decided sums otelcol_processor_tailsift_spans_decided for one decision.
func decided(metrics, decision string) float64 {
	re := regexp.MustCompile(`(?m)^otelcol_processor_tailsift_spans_decided(?:_total)?\{[^}]*decision="` +
		regexp.QuoteMeta(decision) + `"[^}]*\} (\S+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// keptBytes decodes the file exporter's output (proto format, zstd): each
// message is a 4-byte big-endian length and a zstd frame of an OTLP
// ExportTraceServiceRequest. It returns the decompressed messages
// concatenated; a trace ID appears in them as its 16 raw bytes.
func keptBytes(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the kept-traces file: %w", err)
	}
	defer func() { _ = f.Close() }()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return nil, fmt.Errorf("make a zstd decoder: %w", err)
	}
	defer dec.Close()
	var all []byte
	r := bufio.NewReader(f)
	for {
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			// A message being written shows up as a short read; the next poll sees it whole.
			return all, nil
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return all, nil
		}
		plain, err := dec.DecodeAll(msg, nil)
		if err != nil {
			return nil, fmt.Errorf("decompress a kept-traces message: %w", err)
		}
		all = append(all, plain...)
	}
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url) //nolint:gosec // the container's published loopback port
	if err != nil {
		return 0, "", nil // not up yet: poll again
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitFor polls cond until it holds: the container is a separate process,
// so there is no clock to drive.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		require.NoError(t, err, what)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out waiting for "+what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
