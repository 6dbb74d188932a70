// Package chart tests the Helm chart in deploy/helm/tailsift: helm lint,
// helm template with several sets of values, every rendered object decoded
// strictly against the k8s.io/api types (an unknown or duplicate field
// fails), the gateway's wiring checked against its own collector config,
// and both collector configs passed through `otelcol-tailsift validate`.
//
// It runs Helm v4 from $HELM (the Makefile builds bin/helm-v4.3.2 once) and
// the collector from $TAILSIFT_BIN.
package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	release   = "ts"
	namespace = "observability"
)

// objects is one rendering of the chart, decoded.
type objects struct {
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	statefulSets []*appsv1.StatefulSet
	daemonSets   []*appsv1.DaemonSet
	pdbs         []*policyv1.PodDisruptionBudget
}

// newObject returns the Go type for a rendered object's apiVersion and kind;
// a kind the chart is not expected to render is an error.
func newObject(tm metav1.TypeMeta) (any, error) {
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	}
	return nil, fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
}

// decode splits helm's output into documents and decodes each strictly.
func decode(manifest []byte) (*objects, error) {
	objs := &objects{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{}}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split the rendered manifest: %w", err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("read apiVersion and kind: %w", err)
		}
		if tm.Kind == "" && len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, err := newObject(tm)
		if err != nil {
			return nil, err
		}
		if err := decodeStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("decode %s %q: %w\n%s", tm.Kind, tm.APIVersion, err, doc)
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			objs.configMaps[o.Name] = o
		case *corev1.Service:
			objs.services[o.Name] = o
		case *appsv1.StatefulSet:
			objs.statefulSets = append(objs.statefulSets, o)
		case *appsv1.DaemonSet:
			objs.daemonSets = append(objs.daemonSets, o)
		case *policyv1.PodDisruptionBudget:
			objs.pdbs = append(objs.pdbs, o)
		}
	}
}

// decodeStrict decodes one YAML document as the API server does in strict
// mode: keys match JSON tags case-sensitively, and an unknown or duplicate
// field is an error.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("convert to JSON: %w", err)
	}
	strict, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strict...))
	}
	return nil
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// tools returns Helm and the chart's directory, skipping when $HELM is unset.
func tools(t *testing.T) (helm, chart string) {
	t.Helper()
	helm = os.Getenv("HELM")
	if helm == "" {
		t.Skip("HELM is not set: run `make test-deploy`, which builds Helm v4 into bin/")
	}
	chart, err := filepath.Abs(filepath.Join("..", "..", "helm", "tailsift"))
	require.NoError(t, err)
	return helm, chart
}

// render runs `helm template` with the given values (YAML) and decodes it.
func render(t *testing.T, helm, chart, values string) *objects {
	t.Helper()
	// Not under t.TempDir(): helm splits --values on commas, and test names have them.
	f, err := os.CreateTemp("", "tailsift-values-*.yaml")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	_, err = f.WriteString(values)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	out, err := runHelm(helm, "template", release, chart, "--namespace", namespace, "--values", f.Name())
	require.NoError(t, err)
	objs, err := decode(out)
	require.NoError(t, err)
	return objs
}

func runHelm(helm string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w: %s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out, nil
}

func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n",
		"duplicate key": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, clusterIP: None}\n",
		"unknown kind":  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decode([]byte(doc))
			require.Error(t, err)
		})
	}
}

func TestLint(t *testing.T) {
	helm, chart := tools(t)
	out, err := runHelm(helm, "lint", "--strict", chart)
	require.NoError(t, err)
	require.Contains(t, string(out), "0 chart(s) failed")
}
