package charts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var (
	repoRoot string
	helm     Helm
	helmErr  error
)

func TestMain(m *testing.M) {
	var err error
	repoRoot, err = RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// helm reads the charts in a subprocess, which go test's cache cannot see: reading
	// every chart file here makes a chart edit invalidate cached results.
	if err := filepath.WalkDir(filepath.Join(repoRoot, "charts"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_, err = os.ReadFile(p)
		}
		return err
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A cold build of Helm takes minutes on 2 cores; later runs find it cached.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	helm, helmErr = FindHelm(ctx, repoRoot)
	cancel()
	os.Exit(m.Run())
}

// needHelm fails (never skips) a test when the pinned helm is missing: these tests are
// the charts' only check before a cluster sees them.
func needHelm(t *testing.T) Helm {
	t.Helper()
	if helmErr != nil {
		t.Fatalf("the pinned helm (hack/tools/install.sh helm, Helm v4 built from helm.sh/helm/v4) is required and could not be built: %v", helmErr)
	}
	return helm
}

var (
	storeEngines = []string{"woocommerce", "medusa"}
	plans        = []string{"basic", "standard", "premium"}
)

func chartDir(name string) string { return filepath.Join(repoRoot, "charts", name) }

func fixture(engine, plan string) string {
	return filepath.Join(repoRoot, "internal", "charts", "testdata", fmt.Sprintf("values-%s-%s.yaml", engine, plan))
}

// readValues parses a values file into a generic map.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// writeValues writes v to a temporary values file and returns its path.
func writeValues(t *testing.T, v map[string]any) string {
	t.Helper()
	raw, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func template(t *testing.T, chart string, o TemplateOptions) []*unstructured.Unstructured {
	t.Helper()
	if o.Namespace == "" {
		o.Namespace = "store-" + o.Release
	}
	objs, err := needHelm(t).Template(context.Background(), chartDir(chart), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("helm template %s rendered no objects", chart)
	}
	return objs
}

// field walks a nested map by dotted path.
func field(v map[string]any, path string) any {
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
