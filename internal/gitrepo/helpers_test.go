package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/store"
)

// skeleton stands in for the fleet/ directory: something outside stores/ that every
// commit must keep.
var skeleton = fstest.MapFS{
	"README.md":                 {Data: []byte("# Fleet\n")},
	"clusters/local/fleet.yaml": {Data: []byte("kind: Kustomization\n")},
	"stores/local/.keep":        {Data: []byte("")},
}

func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := gitCmd(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func gitExec(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Outside", "GIT_AUTHOR_EMAIL=outside@example.com",
		"GIT_COMMITTER_NAME=Outside", "GIT_COMMITTER_EMAIL=outside@example.com", "GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	return cmd
}

func gitCmd(dir string, args ...string) (string, error) {
	out, err := gitExec(dir, args...).CombinedOutput()
	return string(out), err
}

// remote is a seeded bare fleet repository reachable at url.
type remote struct {
	kind, url, bare string
}

// newRemote makes a seeded bare repository served over HTTP (kind "http") or used by
// path ("path"); git fsck --strict must be clean when the test ends.
func newRemote(t testing.TB, kind string) remote {
	t.Helper()
	root := t.TempDir()
	var rm remote
	rm.kind = kind
	switch kind {
	case "http":
		srv, err := githttp.New(root)
		if err != nil {
			t.Fatalf("githttp: %v", err)
		}
		rm.bare, err = srv.InitBare("fleet.git")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		rm.url = srv.URL() + "/fleet.git"
	case "path":
		rm.bare = filepath.Join(root, "fleet.git")
		runGit(t, root, "init", "-q", "--bare", "--initial-branch=main", rm.bare)
		rm.url = rm.bare
	default:
		t.Fatalf("remote kind %q", kind)
	}
	if _, err := Seed(context.Background(), rm.bare, "main", skeleton, Signature{}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	t.Cleanup(func() { fsck(t, rm.bare) })
	return rm
}

func fsck(t testing.TB, bare string) {
	t.Helper()
	out, err := gitCmd(bare, "fsck", "--strict", "--no-progress", "--no-dangling")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("git fsck --strict %s: %v\n%s", bare, err, out)
	}
}

func open(t testing.TB, rm remote, mod ...func(*Options)) *Repo {
	t.Helper()
	o := Options{URL: rm.url, Author: Signature{Name: "Storefleet Test", Email: "writer@example.com"}}
	for _, m := range mod {
		m(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("Open %s: %v", rm.url, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// storeFiles renders a stand-in for the render package's output, rev varying content.
func storeFiles(name string, rev int, withRelease bool) []File {
	ns := "store-" + name
	files := []File{
		{Path: "kustomization.yaml", Content: []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- namespace.yaml\n- rbac.yaml\n- policy.yaml\n" + map[bool]string{true: "- helmrelease.yaml\n"}[withRelease])},
		{Path: "namespace.yaml", Content: []byte(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    pod-security.kubernetes.io/enforce: baseline\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n", ns))},
		{Path: "rbac.yaml", Content: []byte(fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: storefleet-store\n  namespace: %s\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: storefleet-store\n  namespace: %s\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: admin\nsubjects:\n- kind: ServiceAccount\n  name: storefleet-store\n  namespace: %s\n", ns, ns, ns))},
		{Path: "policy.yaml", Content: []byte(fmt.Sprintf("apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: quota\n  namespace: %s\nspec:\n  hard:\n    requests.cpu: \"2\"\n    requests.memory: 4Gi\n    persistentvolumeclaims: \"4\"\n---\napiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\n  namespace: %s\nspec:\n  limits:\n  - type: Container\n    default:\n      cpu: 500m\n      memory: 512Mi\n", ns, ns))},
	}
	if withRelease {
		files = append(files, File{Path: "helmrelease.yaml", Content: []byte(fmt.Sprintf("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  interval: 10m\n  releaseName: %s\n  serviceAccountName: storefleet-store\n  chart:\n    spec:\n      chart: ./charts/woocommerce\n      sourceRef:\n        kind: GitRepository\n        name: fleet\n        namespace: flux-system\n  values:\n    store:\n      name: %s\n      domain: %s.stores.localhost\n      title: Shop %s\n    replicas: %d\n", name, ns, name, name, name, name, rev))})
	}
	return files
}

func change(cluster, name string, action Action, rev int, reqID string) Change {
	c := Change{Store: name, Cluster: cluster, Dir: store.Dir(cluster, name), Action: action,
		Actor: "alice@example.com", RequestID: reqID}
	switch action {
	case ActionCreate, ActionUpdate:
		c.Files = storeFiles(name, rev, true)
	case ActionDelete:
		c.Files = storeFiles(name, rev, false)
	}
	return c
}

func mustOK(t testing.TB, res Result) Result {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("change failed: %v", res.Err)
	}
	return res
}

func wantErr(t testing.TB, res Result, want error) {
	t.Helper()
	if !errors.Is(res.Err, want) {
		t.Fatalf("got result %+v, want error %v", res, want)
	}
}

// remoteHead is the branch tip on the remote, read with the git CLI.
func remoteHead(t testing.TB, rm remote) string {
	return runGit(t, rm.bare, "rev-parse", "refs/heads/main")
}

// withLog sends the writer's log to a buffer the test reads.
func withLog(buf *lockedBuf) func(*Options) {
	return func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}
