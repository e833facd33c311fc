package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// rerenderShards is the test fleet's shard count: small, so that stores of both
// controller shards are quick to pick.
const rerenderShards = 16

// testFleet is a bare fleet repository on disk and a work tree of it.
type testFleet struct {
	remote, work string
	t            *testing.T
}

func (f testFleet) git(args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = f.work
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// write renders s in state st with opts into the work tree, its shared chart source
// too when it is live, as the API's writer commits them.
func (f testFleet) write(s store.Store, st store.State, opts render.Options) {
	f.t.Helper()
	rd := render.Renderer{Options: opts}
	files, err := rd.Render(s, st)
	if err != nil {
		f.t.Fatal(err)
	}
	if st == store.StateActive {
		shared, err := rd.Shared(s)
		if err != nil {
			f.t.Fatal(err)
		}
		files = append(files, shared...)
	}
	for _, file := range files {
		p := filepath.Join(f.work, filepath.FromSlash(file.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, file.Content, 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f testFleet) push(msg string) {
	f.t.Helper()
	f.git("add", "--all")
	f.git("commit", "--quiet", "-m", msg)
	f.git("push", "--quiet", "origin", "HEAD:main")
}

// fleetStore is a store of the test fleet and its state.
type fleetStore struct {
	s  store.Store
	st store.State
}

// oddShard reports whether the store's shard at the test fleet's count is odd: with
// two Flux controller shards, its HelmRelease is controller shard 1's.
func (s fleetStore) oddShard() bool {
	n, _ := strconv.ParseUint(store.ShardIn(s.s.Name, rerenderShards), 16, 64)
	return n%2 == 1
}

// rerenderStoreNamed is a store name of cluster whose shard's parity is odd.
func rerenderStoreNamed(prefix string, odd bool) string {
	for i := 0; ; i++ {
		n := fmt.Sprintf("%s-%d", prefix, i)
		if (fleetStore{s: store.Store{Name: n}}).oddShard() == odd {
			return n
		}
	}
}

// newRerenderFleet pushes a fleet of 16 shards rendered with opts (at that count):
// live stores of both engines on odd and even shards in two clusters, and a retained
// store (deleted, data kept) on an odd shard, which has no HelmRelease to relabel.
func newRerenderFleet(t *testing.T, opts render.Options) (testFleet, []fleetStore) {
	f := testFleet{remote: filepath.Join(t.TempDir(), "fleet.git"), work: t.TempDir(), t: t}
	f.git("init", "--quiet", "--bare", "--initial-branch=main", f.remote)
	f.git("clone", "--quiet", f.remote, ".")
	f.git("checkout", "--quiet", "-b", "main")
	if err := os.WriteFile(filepath.Join(f.work, store.ShardsFile), store.FormatShards(rerenderShards), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Shards = rerenderShards
	live := func(cluster, name string, e store.Engine) fleetStore {
		return fleetStore{s: store.Store{Name: name, Cluster: cluster, Engine: e, Plan: store.Basic,
			Settings: store.Settings{AdminEmail: "owner@example.com"}}, st: store.StateActive}
	}
	stores := []fleetStore{
		live("east", rerenderStoreNamed("odd", true), store.WooCommerce),
		live("east", rerenderStoreNamed("even", false), store.WooCommerce),
		live("east", rerenderStoreNamed("oddm", true), store.Medusa),
		live("west", rerenderStoreNamed("west-odd", true), store.Medusa),
		live("west", rerenderStoreNamed("west-even", false), store.WooCommerce),
		{s: store.Store{Name: rerenderStoreNamed("gone", true), Cluster: "west", Engine: store.WooCommerce, Plan: store.Basic,
			Settings: store.Settings{AdminEmail: "retained@example.com"}}, st: store.StateRetained},
	}
	for _, s := range stores {
		f.write(s.s, s.st, opts)
	}
	f.push("a fleet of 16 shards")
	return f, stores
}

// changedFiles are the files the head commit of the work tree (after a pull) changed.
func (f testFleet) changedFiles() []string {
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	out := strings.Fields(f.git("diff", "--name-only", "HEAD~1", "HEAD"))
	sort.Strings(out)
	return out
}

func rerenderRun(args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), append([]string{"rerender"}, args...), nil, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// TestRerenderFluxShards: a fleet rendered without Flux controller sharding (K=1),
// re-rendered with --flux-shards 2, changes exactly the HelmReleases of the live stores
// on odd shards, to render's bytes at K=2, in one commit naming the action, the actor
// and K; a second run finds nothing and commits nothing.
func TestRerenderFluxShards(t *testing.T) {
	opts := render.LocalOptions()
	opts.FluxShards = 1
	f, stores := newRerenderFleet(t, opts)

	out, stderr, err := rerenderRun("--repo", f.remote, "--flux-shards", "2", "--chart-source", "helmrepository", "--actor", "ops@example.com")
	if err != nil {
		t.Fatalf("rerender: %v\n%s", err, stderr)
	}
	t.Log(out)
	got := f.changedFiles()
	var want []string
	opts.FluxShards, opts.Shards = 2, rerenderShards
	for _, s := range stores {
		if s.st != store.StateActive || !s.oddShard() {
			continue
		}
		p := path.Join(store.DirIn(s.s.Cluster, s.s.Name, rerenderShards), render.HelmReleaseFile)
		want = append(want, p)
		files, err := render.Store(s.s, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if file.Path != p {
				continue
			}
			b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(p)))
			if err != nil || !bytes.Equal(b, file.Content) {
				t.Errorf("%s is not render's at K=2 (%v):\n%s", p, err, b)
			}
			if !strings.Contains(string(b), render.FluxShardLabel+": shard1") {
				t.Errorf("%s lacks the controller shard label:\n%s", p, b)
			}
		}
	}
	// Every live store's HelmRelease is now on the controller pair of the Kustomization
	// the shard publisher applies for its shard with the same K.
	layout := render.DefaultShardLayout()
	layout.FluxShards = 2
	for _, s := range stores {
		if s.st != store.StateActive {
			continue
		}
		shard := store.ShardIn(s.s.Name, rerenderShards)
		k, err := render.ShardKustomization(layout, shard)
		if err != nil {
			t.Fatal(err)
		}
		var hr struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(store.DirIn(s.s.Cluster, s.s.Name, rerenderShards)), render.HelmReleaseFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &hr); err != nil {
			t.Fatal(err)
		}
		if got, want := hr.Metadata.Labels[render.FluxShardLabel], k.Labels[render.FluxShardLabel]; got != want {
			t.Errorf("store %s: HelmRelease on controller shard %q, its shard %s's Kustomization on %q", s.s.Name, got, shard, want)
		}
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the rerender commit changed\n%s\nwant exactly the HelmReleases of the odd shards' live stores\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	msg := "\n" + f.git("log", "-1", "--format=%B") + "\n"
	for _, line := range []string{"\nAction: rerender\n", "\nActor: ops@example.com\n", "\nFlux-Shards: 2\n", "\nStores-Changed: 3\n"} {
		if !strings.Contains(msg, line) {
			t.Errorf("the commit message lacks %q:\n%s", strings.TrimSpace(line), msg)
		}
	}
	for _, line := range []string{"cluster east: 2 of 3 stores changed", "cluster west: 1 of 3 stores changed"} {
		if !strings.Contains(out, line) {
			t.Errorf("the output lacks %q:\n%s", line, out)
		}
	}

	head := f.git("rev-parse", "HEAD")
	out, stderr, err = rerenderRun("--repo", f.remote, "--flux-shards", "2", "--chart-source", "helmrepository", "--actor", "ops@example.com")
	if err != nil {
		t.Fatalf("second rerender: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "nothing to commit") {
		t.Errorf("the second run does not say it had nothing to do:\n%s", out)
	}
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	if now := f.git("rev-parse", "HEAD"); now != head {
		t.Errorf("the second run committed %s", f.git("log", "-1", "--stat"))
	}
}

// TestRerenderRetriesAConcurrentPush: another writer pushes a store between the
// rerender's clone and its push; the rejected push is done again from a fresh clone,
// so the commit lands on top of the other one and re-renders its store too.
func TestRerenderRetriesAConcurrentPush(t *testing.T) {
	opts := render.LocalOptions()
	f, _ := newRerenderFleet(t, opts)
	late := store.Store{Name: rerenderStoreNamed("late", true), Cluster: "east", Engine: store.WooCommerce, Plan: store.Basic,
		Settings: store.Settings{AdminEmail: "late@example.com"}}
	pushes := 0
	target := fleetTarget{repo: f.remote, branch: "main", actor: "ops", beforePush: func(context.Context) error {
		pushes++
		if pushes == 1 {
			opts.Shards = rerenderShards
			f.write(late, store.StateActive, opts)
			f.push("another writer's store")
		}
		return nil
	}}
	k2 := render.LocalOptions()
	k2.FluxShards = 2
	r, err := rerenderFleet(context.Background(), target, k2, false)
	if err != nil {
		t.Fatalf("rerender: %v", err)
	}
	if pushes != 2 || r.commit == "" {
		t.Fatalf("%d pushes, commit %q: want the rejected push done again", pushes, r.commit)
	}
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	if parent := f.git("log", "-1", "--format=%s", "HEAD~1"); parent != "another writer's store" {
		t.Fatalf("the rerender's parent is %q, not the concurrent commit", parent)
	}
	hr, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(store.DirIn("east", late.Name, rerenderShards)), render.HelmReleaseFile))
	if err != nil || !strings.Contains(string(hr), render.FluxShardLabel+": shard1") {
		t.Fatalf("the concurrently written store was not re-rendered (%v):\n%s", err, hr)
	}
}

// TestRerenderChartSource: after the chart source changes to OCI, every live store's
// HelmRelease references the OCIRepository and every shared chart source is one; the
// retained store and every Namespace stay as they were.
func TestRerenderChartSource(t *testing.T) {
	f, stores := newRerenderFleet(t, render.LocalOptions())
	out, stderr, err := rerenderRun("--repo", f.remote, "--flux-shards", "0", "--chart-source", "oci",
		"--chart-oci-url", "oci://registry.example.com/charts", "--actor", "ops")
	if err != nil {
		t.Fatalf("rerender: %v\n%s", err, stderr)
	}
	t.Log(out)
	changed := map[string]bool{}
	for _, p := range f.changedFiles() {
		changed[p] = true
	}
	for _, s := range stores {
		dir := store.DirIn(s.s.Cluster, s.s.Name, rerenderShards)
		if got, want := changed[path.Join(dir, render.HelmReleaseFile)], s.st == store.StateActive; got != want {
			t.Errorf("store %s (%s): HelmRelease changed %v, want %v", s.s.Name, s.st, got, want)
		}
		if changed[path.Join(dir, render.NamespaceFile)] {
			t.Errorf("store %s: its Namespace changed", s.s.Name)
		}
	}
	sources := 0
	for p := range changed {
		if !strings.HasPrefix(p, store.ChartSourcesRoot+"/") {
			continue
		}
		sources++
		b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(p)))
		if err != nil || !strings.Contains(string(b), "kind: OCIRepository") || !strings.Contains(string(b), "oci://registry.example.com/charts/") {
			t.Errorf("%s is not an OCIRepository of the new prefix (%v):\n%s", p, err, b)
		}
	}
	// Woocommerce and medusa in east, the same in west: four shared sources.
	if sources != 4 {
		t.Errorf("%d shared chart sources changed, want 4: %v", sources, changed)
	}
	if msg := "\n" + f.git("log", "-1", "--format=%B") + "\n"; !strings.Contains(msg, "\nChart-Source: OCIRepository oci://registry.example.com/charts\n") {
		t.Errorf("the commit does not name the chart source:\n%s", msg)
	}
}

// TestRerenderRefusesAClusterOfOtherOptions: rerender takes --flux-shards and the
// chart source; every other render option is the local default. A fleet rendered
// with other values (Helm waiting, another ingress namespace in the NetworkPolicies)
// is refused whole, with nothing pushed, rather than having those values rewritten
// in every store.
func TestRerenderRefusesAClusterOfOtherOptions(t *testing.T) {
	for name, change := range map[string]func(*render.Options){
		"helm-wait":         func(o *render.Options) { o.DisableWait = false },
		"ingress-namespace": func(o *render.Options) { o.IngressNamespace = "gateway" },
	} {
		t.Run(name, func(t *testing.T) {
			opts := render.LocalOptions()
			change(&opts)
			f, _ := newRerenderFleet(t, opts)
			head := f.git("rev-parse", "HEAD")
			out, stderr, err := rerenderRun("--repo", f.remote, "--flux-shards", "2", "--chart-source", "helmrepository", "--actor", "ops")
			if err == nil || !errors.Is(err, errOtherOptions) {
				t.Fatalf("rerender: %v, want it refused as other options\n%s%s", err, out, stderr)
			}
			t.Log(err)
			f.git("fetch", "--quiet", "origin")
			if now := f.git("rev-parse", "origin/main"); now != head {
				t.Errorf("the refused rerender pushed %s", now)
			}
		})
	}
}

// Flags that make no sense are usage mistakes (exit code 2) naming the flag, before
// anything is cloned: a forgotten --flux-shards or --chart-source would re-render a
// cluster with settings it does not have.
func TestRerenderRefusesBadFlags(t *testing.T) {
	base := []string{"--repo", "unused", "--actor", "ops"}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--flux-shards", "2", "--chart-source", "helmrepository", "--actor", "ops"}, "--repo"},
		{append(base, "--chart-source", "helmrepository"), "--flux-shards"},
		{append(base, "--flux-shards", "65", "--chart-source", "helmrepository"), "--flux-shards"},
		{append(base, "--flux-shards", "-1", "--chart-source", "helmrepository"), "--flux-shards"},
		{append(base, "--flux-shards", "two", "--chart-source", "helmrepository"), "--flux-shards"},
		{append(base, "--flux-shards", "2"), "--chart-source"},
		{append(base, "--flux-shards", "2", "--chart-source", "git"), "--chart-source"},
		{append(base, "--flux-shards", "2", "--chart-source", "oci"), "--chart-oci-url"},
		{append(base, "--flux-shards", "2", "--chart-source", "oci", "--chart-oci-url", "https://x/charts"), "--chart-oci-url"},
		{append(base, "--flux-shards", "2", "--chart-source", "helmrepository", "--chart-oci-url", "oci://x/charts"), "--chart-oci-url"},
		{append(base, "--flux-shards", "2", "--chart-source", "oci", "--chart-oci-url", "oci://x/charts", "--chart-repository", "mine"), "--chart-repository"},
		{[]string{"--repo", "unused", "--actor", "a\nActor: b", "--flux-shards", "2", "--chart-source", "helmrepository"}, "--actor"},
	} {
		out, stderr, err := rerenderRun(tc.args...)
		if ExitCode(err) != 2 || !strings.Contains(stderr, tc.flag) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error naming %s", tc.args, ExitCode(err), out, stderr, tc.flag)
		}
	}
}

// TestRerenderJoinsEachHelmReleaseToItsKustomization runs the test environment with
// two Flux controller shards, whose shard publisher labels the shard Kustomizations
// for K=2, on a fleet written with K=1: a store of an odd shard is applied by
// shard 1's kustomize-controller while its HelmRelease, unlabelled, is the main
// helm-controller's. rerender with a K the publisher does not use (1) is refused
// before anything is committed; with K=2 it relabels the HelmRelease in Git, and
// once Flux applied that the HelmRelease in the cluster carries its Kustomization's
// key, and the store's Namespace is the one it had.
func TestRerenderJoinsEachHelmReleaseToItsKustomization(t *testing.T) {
	const k = render.FluxShards(2)
	env := testenv.StartT(t, testenv.Options{ChartsDir: filepath.Join("..", "..", "..", "internal", "testenv", "testdata", "charts"), FluxShards: k})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f := testFleet{remote: env.FleetURL, work: t.TempDir(), t: t}
	f.git("clone", "--quiet", env.FleetURL, ".")
	shards, err := fleetShards(f.work)
	if err != nil {
		t.Fatal(err)
	}
	opts := render.LocalOptions()
	opts.Shards = shards
	var names []string
	for _, key := range []string{"shard1", ""} {
		var name string
		for i := 0; ; i++ {
			if name = fmt.Sprintf("join%s-%d", key, i); k.Key(store.ShardIn(name, shards)) == key {
				break
			}
		}
		names = append(names, name)
		f.write(store.Store{Name: name, Cluster: testenv.FleetCluster, Engine: store.WooCommerce, Plan: store.Basic,
			Settings: store.Settings{AdminEmail: "owner@example.com"}}, store.StateActive, opts)
	}
	f.push("two stores written with K=1")
	if _, err := env.Reconcile(ctx, f.git("rev-parse", "HEAD")); err != nil {
		t.Fatal(err)
	}
	namespaces := map[string]types.UID{}
	keys := func() map[string][2]string { // store → {HelmRelease key, Kustomization key}
		t.Helper()
		out := map[string][2]string{}
		for _, n := range names {
			hr := &helmv2.HelmRelease{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "store-" + n, Name: n}, hr); err != nil {
				t.Fatalf("HelmRelease of %s: %v", n, err)
			}
			ks := &kustomizev1.Kustomization{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: store.ShardObjectName(store.ShardIn(n, shards))}, ks); err != nil {
				t.Fatalf("Kustomization of %s: %v", n, err)
			}
			out[n] = [2]string{hr.Labels[render.FluxShardLabel], ks.Labels[render.FluxShardLabel]}
			ns := &corev1.Namespace{}
			if err := env.Client.Get(ctx, client.ObjectKey{Name: "store-" + n}, ns); err != nil {
				t.Fatal(err)
			}
			if namespaces[n] == "" {
				namespaces[n] = ns.UID
			} else if ns.UID != namespaces[n] {
				t.Errorf("store %s: its Namespace was replaced", n)
			}
		}
		return out
	}
	if got := keys()[names[0]]; got != [2]string{"", "shard1"} {
		t.Fatalf("before the rerender: store %s's HelmRelease and Kustomization keys %q, want the HelmRelease unlabelled on a shard1 Kustomization", names[0], got)
	}

	head := f.git("rev-parse", "HEAD")
	args := []string{"--repo", env.FleetURL, "--chart-source", "helmrepository", "--actor", "ops", "--kubeconfig", env.Kubeconfig}
	if _, _, err := rerenderRun(append(args, "--flux-shards", "1")...); !errors.Is(err, errPublisherFluxShards) {
		t.Fatalf("rerender --flux-shards 1 against a publisher of K=2: %v, want it refused", err)
	}
	if now := f.git("ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(now, head) {
		t.Fatalf("the refused rerender pushed: %s", now)
	}
	out, stderr, err := rerenderRun(append(args, "--flux-shards", "2")...)
	if err != nil {
		t.Fatalf("rerender: %v\n%s", err, stderr)
	}
	t.Log(out)
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	if _, err := env.Reconcile(ctx, f.git("rev-parse", "HEAD")); err != nil {
		t.Fatal(err)
	}
	for n, got := range keys() {
		if got[0] != got[1] {
			t.Errorf("after the rerender: store %s's HelmRelease has key %q, its Kustomization %q", n, got[0], got[1])
		}
	}
}
