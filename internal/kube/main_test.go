package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/storefleet/storefleet/internal/testenv"
)

// These tests need a real kube-apiserver with the Flux CRDs, and must not have
// Flux's controllers rewriting the statuses they write themselves, so they run
// etcd and kube-apiserver only (the binaries internal/testenv builds, started by
// controller-runtime's envtest) instead of the whole testenv.
var (
	apiConfig *rest.Config
	apiEnv    *envtest.Environment
)

// Pinned as internal/testenv pins them (the versions of go.mod's Flux APIs).
var crdModules = []string{
	"github.com/fluxcd/source-controller@v1.9.6",
	"github.com/fluxcd/kustomize-controller@v1.9.6",
	"github.com/fluxcd/helm-controller@v1.6.4", // the watcher also lists HelmReleases
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	te, err := startAPIServer(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: kube-apiserver with the Flux CRDs did not start:", err)
		return 1
	}
	apiConfig, apiEnv = te.Config, te
	code := m.Run()
	if err := te.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: stopping kube-apiserver/etcd:", err)
		code = 1
	}
	return code
}

func startAPIServer(ctx context.Context) (*envtest.Environment, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	etcd, err := testenv.ToolDir(ctx, root, "etcd")
	if err != nil {
		return nil, err
	}
	k8s, err := testenv.ToolDir(ctx, root, "kubernetes")
	if err != nil {
		return nil, err
	}
	var crds []string
	for _, m := range crdModules {
		d, err := moduleDir(ctx, m)
		if err != nil {
			return nil, err
		}
		crds = append(crds, filepath.Join(d, "config", "crd", "bases"))
	}
	noExisting := false
	te := &envtest.Environment{
		CRDDirectoryPaths:     crds,
		ErrorIfCRDPathMissing: true,
		UseExistingCluster:    &noExisting,
	}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(etcd, "etcd")}
	api := te.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(k8s, "kube-apiserver")
	// Without it kube-apiserver refuses to advertise 127.0.0.1 (testenv-facts.md).
	api.Configure().Set("endpoint-reconciler-type", "none")
	if _, err := te.Start(); err != nil {
		return nil, err
	}
	return te, nil
}

// moduleDir is a module's directory in the module cache, downloading it if needed.
func moduleDir(ctx context.Context, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s (for its CRDs): %v: %s", mod, err, stderr.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, info.Error)
	}
	return info.Dir, nil
}

// namespace creates a namespace of the test's own, so that tests do not see each
// other's objects.
func namespace(t testing.TB, name string) string {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := dynClient(t).Resource(Namespaces).Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func dynClient(t testing.TB) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(apiConfig)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
