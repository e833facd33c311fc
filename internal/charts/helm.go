package charts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// PodSecurityAnnotation is the Chart.yaml annotation naming the Pod Security Standard
// level (privileged, baseline, restricted) the chart's namespace must allow. The renderer
// sets the store namespace's pod-security.kubernetes.io/enforce label to match.
const PodSecurityAnnotation = "storefleet.io/pod-security"

// ErrNoHelm is returned when the pinned helm binary cannot be built or found.
var ErrNoHelm = errors.New("charts: pinned helm binary unavailable")

// Helm runs one helm binary.
type Helm struct {
	// Bin is the path of the helm executable.
	Bin string
}

// RepoRoot returns the repository root: the nearest parent of the working directory
// holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("charts: no go.mod above the working directory")
		}
		dir = parent
	}
}

// FindHelm builds (once per machine; cached) and locates the pinned helm through
// hack/tools/install.sh. The first build compiles Helm from its Go module and can take
// minutes; install.sh serialises concurrent callers on a lock.
func FindHelm(ctx context.Context, repoRoot string) (Helm, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "hack", "tools", "install.sh"), "helm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Helm{}, fmt.Errorf("%w: hack/tools/install.sh helm: %v\n%s", ErrNoHelm, err, stderr.String())
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), "helm")
	if _, err := os.Stat(bin); err != nil {
		return Helm{}, fmt.Errorf("%w: %v", ErrNoHelm, err)
	}
	return Helm{Bin: bin}, nil
}

// Run runs helm with args and returns its combined output. The environment is pinned
// so no user configuration, plugin or repository cache changes the result.
func (h Helm) Run(ctx context.Context, args ...string) ([]byte, error) {
	home, err := os.MkdirTemp("", "storefleet-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cmd := exec.CommandContext(ctx, h.Bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_PLUGINS="+filepath.Join(home, "plugins"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.Bytes(), nil
}

// Lint runs `helm lint --strict` on a chart with the given values files.
func (h Helm) Lint(ctx context.Context, chartDir string, valuesFiles ...string) ([]byte, error) {
	args := []string{"lint", "--strict", chartDir}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	return h.Run(ctx, args...)
}

// TemplateOptions are the inputs of one `helm template`.
type TemplateOptions struct {
	Release   string
	Namespace string
	// ValuesFiles are passed in order (--values).
	ValuesFiles []string
	// Set are --set-json key=JSON pairs applied after the files.
	Set []string
	// APIVersions are extra capabilities (--api-versions), e.g.
	// "gateway.networking.k8s.io/v1/HTTPRoute".
	APIVersions []string
}

// Render runs `helm template` and returns the manifest as Helm prints it.
func (h Helm) Render(ctx context.Context, chartDir string, o TemplateOptions) ([]byte, error) {
	args := []string{"template", o.Release, chartDir, "--namespace", o.Namespace}
	for _, f := range o.ValuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range o.Set {
		args = append(args, "--set-json", s)
	}
	for _, a := range o.APIVersions {
		args = append(args, "--api-versions", a)
	}
	return h.Run(ctx, args...)
}

// Template renders a chart and returns its objects in output order.
func (h Helm) Template(ctx context.Context, chartDir string, o TemplateOptions) ([]*unstructured.Unstructured, error) {
	out, err := h.Render(ctx, chartDir, o)
	if err != nil {
		return nil, err
	}
	return DecodeObjects(out)
}

// DecodeObjects splits a multi-document YAML stream into objects, skipping empty documents.
func DecodeObjects(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("charts: decode manifest: %w\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// PodSecurityLevel returns the level a chart declares in its Chart.yaml annotation
// PodSecurityAnnotation.
func PodSecurityLevel(chartDir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	var c struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("charts: %s/Chart.yaml: %w", chartDir, err)
	}
	level := c.Annotations[PodSecurityAnnotation]
	switch level {
	case "privileged", "baseline", "restricted":
		return level, nil
	}
	return "", fmt.Errorf("charts: %s/Chart.yaml: annotation %s is %q, want privileged, baseline or restricted", chartDir, PodSecurityAnnotation, level)
}
