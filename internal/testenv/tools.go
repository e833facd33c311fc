package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Pinned versions of the Flux controllers, matching hack/tools/<name>/build.sh.
// The CRDs are read from the same versions' module downloads.
const (
	sourceControllerModule    = "github.com/fluxcd/source-controller@v1.9.6"
	kustomizeControllerModule = "github.com/fluxcd/kustomize-controller@v1.9.6"
	helmControllerModule      = "github.com/fluxcd/helm-controller@v1.6.4"
)

// Tools are the paths of the binaries the environment runs.
type Tools struct {
	KubeAPIServer, KubeControllerManager, Etcd            string
	SourceController, KustomizeController, HelmController string
	Helm                                                  string
	// Flux is the flux CLI, built only when asked for (Options.WithFluxCLI or ToolPath).
	Flux string
}

// RepoRoot finds the Storefleet checkout: $STOREFLEET_ROOT, else the nearest parent
// of the working directory whose go.mod is the storefleet module.
func RepoRoot() (string, error) {
	if r := os.Getenv("STOREFLEET_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/storefleet/storefleet\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: not inside the storefleet checkout (no go.mod of github.com/storefleet/storefleet above the working directory); set STOREFLEET_ROOT")
		}
		dir = parent
	}
}

// ToolDir returns the directory holding the binaries of hack/tools/<name>, building
// them first if this machine has not yet (hack/tools/install.sh caches them by
// version outside the checkout; the first build of kube-apiserver takes minutes).
func ToolDir(ctx context.Context, root, name string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack/tools/install.sh"), name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testenv: building tool %q with hack/tools/install.sh failed (%v); run `make testenv-tools` to see why:\n%s",
			name, err, lastLines(stderr.String(), 20))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// FindTools locates (and if needed builds) every binary the environment runs.
func FindTools(ctx context.Context, root string, withFlux bool) (*Tools, error) {
	dirs := map[string]string{}
	names := []string{"etcd", "kubernetes", "source-controller", "kustomize-controller", "helm-controller", "helm"}
	if withFlux {
		names = append(names, "flux")
	}
	for _, n := range names {
		d, err := ToolDir(ctx, root, n)
		if err != nil {
			return nil, err
		}
		dirs[n] = d
	}
	t := &Tools{
		Etcd:                  filepath.Join(dirs["etcd"], "etcd"),
		KubeAPIServer:         filepath.Join(dirs["kubernetes"], "kube-apiserver"),
		KubeControllerManager: filepath.Join(dirs["kubernetes"], "kube-controller-manager"),
		SourceController:      filepath.Join(dirs["source-controller"], "source-controller"),
		KustomizeController:   filepath.Join(dirs["kustomize-controller"], "kustomize-controller"),
		HelmController:        filepath.Join(dirs["helm-controller"], "helm-controller"),
		Helm:                  filepath.Join(dirs["helm"], "helm"),
	}
	if withFlux {
		t.Flux = filepath.Join(dirs["flux"], "flux")
	}
	for _, p := range []string{t.Etcd, t.KubeAPIServer, t.KubeControllerManager, t.SourceController,
		t.KustomizeController, t.HelmController, t.Helm, t.Flux} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("testenv: %s is missing although install.sh reported it built: %w", p, err)
		}
	}
	return t, nil
}

// crdDirs returns the Flux CRD directories from the module cache, downloading the
// controller modules if the cache lacks them.
func crdDirs(ctx context.Context) ([]string, error) {
	var dirs []string
	for _, m := range []string{sourceControllerModule, kustomizeControllerModule, helmControllerModule} {
		cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", m)
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
		cmd.Dir = os.TempDir() // outside any module: the query is about the module itself
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("testenv: go mod download %s (for its CRDs): %v: %s", m, err, stderr.String())
		}
		var info struct{ Dir, Error string }
		if err := json.Unmarshal(out, &info); err != nil {
			return nil, fmt.Errorf("testenv: go mod download %s: %w", m, err)
		}
		if info.Error != "" || info.Dir == "" {
			return nil, fmt.Errorf("testenv: go mod download %s: %s", m, info.Error)
		}
		d := filepath.Join(info.Dir, "config", "crd", "bases")
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("testenv: %s has no CRDs: %w", m, err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
