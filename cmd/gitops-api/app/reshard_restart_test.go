package app

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// artifactServer is the artifact URL every publisher of a test publishes under, as
// serve's Service is for every replica: a publisher that takes over serves (and
// rebuilds) the tarballs its predecessor published.
type artifactServer struct {
	URL string
	h   atomic.Pointer[http.Handler]
}

func newArtifactServer(tb testing.TB) *artifactServer {
	s := &artifactServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if h := s.h.Load(); h != nil {
			(*h).ServeHTTP(rw, r)
			return
		}
		http.NotFound(rw, r)
	}))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// publisherFor builds gitops-api's shard publisher as serve wires it (its own fleet
// clone and watcher, as a new leader has), with applied standing between it and
// the watcher's WaitApplied. It is not started.
func publisherFor(tb testing.TB, ctx context.Context, env *testenv.Env, srv *artifactServer,
	applied func(w *kube.Watcher) func(ctx context.Context, shard, rev string) error) (*publish.Publisher, *kube.Watcher) {
	tb.Helper()
	repo, w := cloneAndWatcher(tb, ctx, env)
	pub, err := publish.New(publish.Config{Source: repo, Cluster: w, FleetCluster: testenv.FleetCluster, Dir: tb.TempDir(),
		URL: srv.URL, Interval: time.Second, Applied: applied(w)})
	if err != nil {
		tb.Fatal(err)
	}
	h := pub.Handler()
	srv.h.Store(&h)
	tb.Cleanup(pub.Stop)
	return pub, w
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstWait records the first shard a publisher waits for, then waits as the
// watcher does.
type firstWait struct {
	once sync.Once
	ch   chan string
}

func newFirstWait() *firstWait { return &firstWait{ch: make(chan string, 1)} }

func (f *firstWait) hook(w *kube.Watcher) func(ctx context.Context, shard, rev string) error {
	return func(ctx context.Context, shard, rev string) error {
		f.once.Do(func() { f.ch <- shard })
		return w.WaitApplied(ctx, shard, rev)
	}
}

// TestReshardSurvivesAPublisherRestart moves the fleet from 4,096 shards to 256 and
// back on the real control plane, each time with the publisher replaced in the
// middle: first the leader that saw the push stops after it published the shard that
// takes stores in, before Flux applied it; then no publisher runs while the move is
// pushed. The new publisher knows nothing of the move but what Git and the cluster
// hold, and must still publish a shard that loses stores only after the shard taking
// them in applied them: no HelmRelease, Helm release or Namespace may change UID.
//
// The first shard that takes stores in is suspended meanwhile, so that "not applied
// yet" lasts until the test says: the stores form a chain (stay in 000; near 00a→000; mid
// 0a3→00a; far a3x→0a3), so every shard of the move both waits and is waited for.
func TestReshardSurvivesAPublisherRestart(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{ChartsDir: filepath.Join("..", "..", "..", "internal", "testenv", "testdata", "charts")})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	stay := storeNamed("stay", func(s string) bool { return s == "000" })
	near := storeNamed("near", func(s string) bool { return s == "00a" })
	mid := storeNamed("mid", func(s string) bool { return s == "0a3" })
	far := storeNamed("far", func(s string) bool { return strings.HasPrefix(s, "a3") })
	names := []string{stay, near, mid, far}
	farShard := store.Shard(far)

	work := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		out, err := testenv.Git(ctx, work, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	git("clone", "--quiet", env.FleetURL, ".")
	for _, n := range names {
		for f, c := range reshardStoreFiles(n) {
			writeFile(t, filepath.Join(work, filepath.FromSlash(store.Dir(testenv.FleetCluster, n)), f), c)
		}
	}
	git("add", "--all")
	git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet", "-m", "four stores at 4,096 shards")
	git("push", "--quiet", "origin", "HEAD:main")

	srv := newArtifactServer(t)
	// The first leader: its waits for Flux are the test's, so that it can be stopped
	// in the middle of one.
	waiting := make(chan string, 1)
	crash := make(chan struct{})
	pub1, _ := publisherFor(t, ctx, env, srv, func(*kube.Watcher) func(context.Context, string, string) error {
		return func(ctx context.Context, shard, _ string) error {
			select {
			case waiting <- shard:
			default:
			}
			select {
			case <-crash:
			case <-ctx.Done():
			}
			return errors.New("the publisher stopped")
		}
	})
	if err := pub1.Start(ctx); err != nil {
		t.Fatal(err)
	}

	ready := func(name string) *helmv2.HelmRelease { t.Helper(); return readyRelease(t, ctx, env, name) }
	state := func(name string) installed { t.Helper(); return installedState(t, ctx, env, name) }
	before := map[string]installed{}
	for _, n := range names {
		before[n] = state(n)
	}

	suspend := func(on bool, shards ...string) {
		t.Helper()
		for _, s := range shards {
			k := &kustomizev1.Kustomization{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: store.ShardObjectName(s)}, k); err != nil {
				t.Fatal(err)
			}
			patch := client.MergeFrom(k.DeepCopy())
			k.Spec.Suspend = on
			if err := env.Client.Patch(ctx, k, patch); err != nil {
				t.Fatal(err)
			}
		}
	}
	reshard := func(n string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := Run(ctx, []string{"reshard", "--repo", env.FleetURL, "--shards", n, "--actor", "operator@example.com"},
			nil, &stdout, &stderr); err != nil {
			t.Fatalf("reshard: %v\n%s%s", err, stdout.String(), stderr.String())
		}
		head, _, _ := strings.Cut(git("ls-remote", env.FleetURL, "refs/heads/main"), "\t")
		return "main@sha1:" + head
	}
	revisions := func(w *kube.Watcher) map[string]string {
		t.Helper()
		as, err := w.PublishedArtifacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for s, a := range as {
			out[s] = a.Revision
		}
		return out
	}
	applied := func(rev string, shards ...string) {
		t.Helper()
		for _, s := range shards {
			k := &kustomizev1.Kustomization{}
			if err := testenv.Poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: store.ShardObjectName(s)}, k); err != nil {
					return false, err.Error(), client.IgnoreNotFound(err)
				}
				return k.Status.LastAppliedRevision == rev, "lastAppliedRevision " + k.Status.LastAppliedRevision, nil
			}); err != nil {
				t.Fatalf("shard %s never applied %s: %v", s, rev, err)
			}
		}
	}
	// takeOver starts a new leader's publisher, and checks that when it first waits
	// for Flux (or, not waiting, once it started) none of losers is published at rev.
	takeOver := func(rev string, losers ...string) (started chan error, pub *publish.Publisher) {
		t.Helper()
		first := newFirstWait()
		pub, w := publisherFor(t, ctx, env, srv, first.hook)
		started = make(chan error, 1)
		go func() { started <- pub.Start(ctx) }()
		select {
		case s := <-first.ch:
			t.Logf("the new publisher waits for shard %s to apply", s)
		case err := <-started:
			t.Logf("the new publisher started without waiting for any shard (%v)", err)
			started <- err
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		revs := revisions(w)
		for _, s := range losers {
			if revs[s] == rev {
				t.Errorf("shard %s, which loses a store, was published at %s before the shard taking it in applied it", s, rev)
			}
		}
		return started, pub
	}
	kept := func(n int) {
		t.Helper()
		for _, name := range names {
			if got := state(name); got != before[name] {
				t.Errorf("at %d shards, store %s: before %+v, after %+v: uninstalled or recreated", n, name, before[name], got)
			}
			if got, want := ready(name).Labels["kustomize.toolkit.fluxcd.io/name"], store.ShardObjectName(store.ShardIn(name, n)); got != want {
				t.Errorf("at %d shards, HelmRelease %s is owned by %s, want %s", n, name, got, want)
			}
		}
	}

	// 1. 4,096 → 256, the leader stopping after it published 000 (which takes near
	// in) and before Flux applied it.
	suspend(true, "000")
	rev := reshard("256")
	if s := <-waiting; s != "000" {
		t.Fatalf("the first leader waits for shard %s first, want 000", s)
	}
	close(crash)
	pub1.Stop()
	started, pub2 := takeOver(rev, "00a", "0a3", farShard)
	suspend(false, "000")
	if err := <-started; err != nil {
		t.Fatalf("the new publisher's first pass: %v", err)
	}
	applied(rev, "000", "00a", "0a3", farShard)
	kept(256)

	// 2. 256 → 4,096 with no publisher running at the push: it takes over from the
	// cluster and Git alone. far goes back to a3x (its Kustomization, emptied, is
	// still there), mid to 0a3, near to 00a. Only a3x is held back: 00a and 0a3 also
	// lose stores, and resuming one makes Flux apply its old artifact again, which
	// would take back a store the next shard already adopted.
	pub2.Stop()
	suspend(true, farShard)
	rev = reshard("4096")
	started, _ = takeOver(rev, "000", "00a", "0a3")
	suspend(false, farShard)
	if err := <-started; err != nil {
		t.Fatalf("the new publisher's first pass: %v", err)
	}
	applied(rev, "000", "00a", "0a3", farShard)
	kept(4096)
}
