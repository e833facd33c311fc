package publish_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

type nopSink struct{}

func (nopSink) SetConnected(bool)                                {}
func (nopSink) SetShardSource(string, string, *status.Condition) {}
func (nopSink) SetShardApply(string, string, *status.Condition)  {}
func (nopSink) SetRelease(string, *status.Release)               {}
func (nopSink) SetNamespace(string, bool)                        {}
func (nopSink) KubeEvent(string, status.KubeEvent)               {}

// recorder collects OnPublish calls.
type recorder struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (r *recorder) on(shard, rev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string][]string{}
	}
	r.seen[shard] = append(r.seen[shard], rev)
}

func (r *recorder) last(shard string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen[shard]
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// sameShard returns a store name other than name in name's shard.
func sameShard(name string) string {
	for i := 0; ; i++ {
		if n := fmt.Sprintf("%s-%d", name, i); store.Shard(n) == store.Shard(name) {
			return n
		}
	}
}

// otherShard returns a store name in another shard than name.
func otherShard(name string) string {
	for i := 0; ; i++ {
		if n := fmt.Sprintf("other-%d", i); store.Shard(n) != store.Shard(name) {
			return n
		}
	}
}

func change(t testing.TB, name string, remove bool) gitrepo.Change {
	t.Helper()
	rnd := render.Renderer{Options: render.LocalOptions()}
	st := store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "owner@example.com"}}.WithDefaults("")
	dir := store.Dir(st.Cluster, st.Name)
	c := gitrepo.Change{Store: name, Cluster: st.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "test", RequestID: "t-" + name}
	if remove {
		c.Action, c.Force, c.RequestID = gitrepo.ActionPurge, true, "rm-"+name
		return c
	}
	files, err := rnd.Render(st, store.StateRetained)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
	}
	return c
}

func submit(t testing.TB, repo *gitrepo.Repo, cs ...gitrepo.Change) string {
	t.Helper()
	var commit string
	for _, r := range repo.SubmitAll(context.Background(), cs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		commit = r.Commit
	}
	return commit
}

// TestPublisher runs the publisher against the real fleet repository (git
// http-backend), the real API server and the real kustomize-controller: what it
// publishes is applied shard by shard, an unchanged shard is not written again, a
// restart adopts what the cluster has, a push made elsewhere is published by the
// background pass, and a shard whose last store left gets an empty tarball. Flux
// downloads through a stand-in for the artifact Service, which spreads them over the
// leader and two replicas that never published: each replica serves every artifact.
func TestPublisher(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/clone.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	w, err := kube.New(kube.Config{Rest: env.Config, FluxNamespace: "flux-system", ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
		return render.ShardKustomization(render.DefaultShardLayout(), shard)
	}}, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	get := func(kind, shard string) *unstructured.Unstructured {
		gvr := kube.ExternalArtifacts
		if kind == "Kustomization" {
			gvr = kube.Kustomizations
		}
		u, err := dyn.Resource(gvr).Namespace("flux-system").Get(ctx, store.ShardObjectName(shard), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s %s: %v", kind, shard, err)
		}
		return u
	}
	applied := func(shard, rev string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			u := get("Kustomization", shard)
			got, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
			if got == rev {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Kustomization stores-%s: lastAppliedRevision %q, want %q; status %v", shard, got, rev, u.Object["status"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The artifact Service: kustomize-controller's downloads land on the leader or
	// on either of two replicas that never publish, each with its own clone and
	// data folder, in turn (no kube-proxy here, so the round robin is ours).
	svc := &roundRobin{handlers: make([]http.Handler, 3)}
	var replicas []http.Handler
	for i := 1; i < len(svc.handlers); i++ {
		clone, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/clone.git"})
		if err != nil {
			t.Fatal(err)
		}
		defer clone.Close()
		p, err := publish.New(publish.Config{Source: clone, Cluster: w, FleetCluster: store.DefaultCluster, Dir: t.TempDir(), URL: "http://unused"})
		if err != nil {
			t.Fatal(err)
		}
		svc.handlers[i] = p.Handler()
		replicas = append(replicas, p.Handler())
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	dir := t.TempDir()
	// The clone of a replica that becomes leader late in the test, never fetched
	// meanwhile: behind every artifact published by then.
	behind, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/behind.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	newPublisher := func(rec *recorder, interval time.Duration) *publish.Publisher {
		p, err := publish.New(publish.Config{Source: repo, Cluster: w, FleetCluster: store.DefaultCluster,
			Dir: dir, URL: srv.URL, Interval: interval, OnPublish: rec.on})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	a, b := "alpha", otherShard("alpha")
	sa, sb := store.Shard(a), store.Shard(b)
	head := submit(t, repo, change(t, a, false), change(t, b, false))
	rev := "main@sha1:" + head

	rec := &recorder{}
	pub := newPublisher(rec, time.Hour)
	svc.set(0, pub.Handler())
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.last(sa) != rev || rec.last(sb) != rev || len(rec.seen) != 2 {
		t.Fatalf("published %v, want shards %s and %s at %s", rec.seen, sa, sb, rev)
	}
	applied(sa, rev)
	applied(sb, rev)
	if _, err := dyn.Resource(kube.Namespaces).Get(ctx, "store-"+a, metav1.GetOptions{}); err != nil {
		t.Fatalf("store %s not applied: %v", a, err)
	}

	// The tarball is what the status says, and holds the shard's stores.
	ea := get("ExternalArtifact", sa)
	url, _, _ := unstructured.NestedString(ea.Object, "status", "artifact", "url")
	digest, _, _ := unstructured.NestedString(ea.Object, "status", "artifact", "digest")
	names := fetch(t, url, digest)
	if !names[a+"/kustomization.yaml"] || !names[a+"/namespace.yaml"] {
		t.Fatalf("shard %s tarball: %v", sa, names)
	}

	// A second store in shard A: only A is republished.
	rvB := get("ExternalArtifact", sb).GetResourceVersion()
	c := sameShard(a)
	head2 := submit(t, repo, change(t, c, false))
	rev2, err := pub.Publish(ctx, sa)
	if err != nil || rev2 != "main@sha1:"+head2 {
		t.Fatalf("Publish(%s) = %q, %v; want main@sha1:%s", sa, rev2, err, head2)
	}
	if again, err := pub.Publish(ctx, sb); err != nil || again != rev {
		t.Fatalf("Publish(%s) of an unchanged shard = %q, %v; want %s", sb, again, err, rev)
	}
	if got := get("ExternalArtifact", sb).GetResourceVersion(); got != rvB {
		t.Fatalf("unchanged shard %s was written (resourceVersion %s → %s)", sb, rvB, got)
	}
	applied(sa, rev2)

	// A restart adopts both artifacts: nothing is written, the revisions are reported.
	rvA := get("ExternalArtifact", sa).GetResourceVersion()
	// A tarball an earlier run left behind goes at start; the current ones stay.
	stale := filepath.Join(dir, store.DefaultCluster, sa, strings.Repeat("0", 40), strings.Repeat("0", 64)+".tar.gz")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec2 := &recorder{}
	pub2 := newPublisher(rec2, 200*time.Millisecond)
	svc.set(0, pub2.Handler())
	if err := pub2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer pub2.Stop()
	if rec2.last(sa) != rev2 || rec2.last(sb) != rev {
		t.Fatalf("after restart: %v, want %s at %s and %s at %s", rec2.seen, sa, rev2, sb, rev)
	}
	if get("ExternalArtifact", sa).GetResourceVersion() != rvA || get("ExternalArtifact", sb).GetResourceVersion() != rvB {
		t.Fatal("a restart rewrote artifacts it should have adopted")
	}
	if _, err := os.Stat(filepath.Dir(stale)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale tarball's folder is still there after a restart: %v", err)
	}
	for _, shard := range []string{sa, sb} {
		p, _, _ := unstructured.NestedString(get("ExternalArtifact", shard).Object, "status", "artifact", "path")
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Errorf("shard %s: its current tarball is gone after a restart: %v", shard, err)
		}
	}

	// A push made elsewhere (another clone) removes shard B's only store: the
	// background pass fetches it and publishes B as an empty tarball.
	other, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/other.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	head3 := submit(t, other, change(t, b, true))
	rev3 := "main@sha1:" + head3
	deadline := time.Now().Add(time.Minute)
	for rec2.last(sb) != rev3 {
		if time.Now().After(deadline) {
			t.Fatalf("the outside push %s was not published for shard %s: %v", head3, sb, rec2.seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ea = get("ExternalArtifact", sb)
	url, _, _ = unstructured.NestedString(ea.Object, "status", "artifact", "url")
	digest, _, _ = unstructured.NestedString(ea.Object, "status", "artifact", "digest")
	if names := fetch(t, url, digest); len(names) != 0 {
		t.Fatalf("emptied shard %s: tarball holds %v", sb, names)
	}
	applied(sb, rev3)
	if rec2.last(sa) != rev2 {
		t.Fatalf("shard %s republished by a push that did not touch it: %v", sa, rec2.seen[sa])
	}

	// An artifact deleted by hand (or a write that did not land) is put back by the
	// next background pass.
	if err := dyn.Resource(kube.ExternalArtifacts).Namespace("flux-system").Delete(ctx, store.ShardObjectName(sa), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		u, err := dyn.Resource(kube.ExternalArtifacts).Namespace("flux-system").Get(ctx, store.ShardObjectName(sa), metav1.GetOptions{})
		if err == nil {
			if d, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "digest"); d != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted artifact of shard %s was not published again", sa)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every replica serves every current artifact, byte for byte the leader's, as
	// does one started now with an empty data folder and a fresh clone.
	fresh, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/fresh.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	pf, err := publish.New(publish.Config{Source: fresh, Cluster: w, FleetCluster: store.DefaultCluster, Dir: t.TempDir(), URL: "http://unused"})
	if err != nil {
		t.Fatal(err)
	}
	current, err := w.PublishedArtifacts(ctx)
	if err != nil || len(current) != 2 {
		t.Fatalf("published artifacts %v, %v; want shards %s and %s", current, err, sa, sb)
	}
	for shard, a := range current {
		want := serveBytes(t, pub2.Handler(), a)
		for i, h := range append(replicas, pf.Handler()) {
			if got := serveBytes(t, h, a); !bytes.Equal(got, want) {
				t.Fatalf("replica %d serves %d bytes for shard %s, the leader %d", i+1, len(got), shard, len(want))
			}
		}
	}

	// An artifact published under the URL layout before commits were in it (same
	// bytes, same revision): a restart moves it to a URL naming the revision's
	// commit and keeps the revision, so Flux has nothing to apply again. The head
	// moves first (a push to another shard), or the two would not differ.
	submit(t, repo, change(t, otherShard(a)+"-legacy", false))
	if store.Shard(otherShard(a)+"-legacy") == sa {
		t.Fatal("the push meant for another shard lands in shard " + sa)
	}
	ea = get("ExternalArtifact", sa)
	revA, _, _ := unstructured.NestedString(ea.Object, "status", "artifact", "revision")
	digestA, _, _ := unstructured.NestedString(ea.Object, "status", "artifact", "digest")
	legacy := path.Join(store.DefaultCluster, sa, strings.TrimPrefix(digestA, "sha256:")+".tar.gz")
	_ = unstructured.SetNestedField(ea.Object, srv.URL+publish.ArtifactsPath+legacy, "status", "artifact", "url")
	_ = unstructured.SetNestedField(ea.Object, legacy, "status", "artifact", "path")
	if _, err := dyn.Resource(kube.ExternalArtifacts).Namespace("flux-system").UpdateStatus(ctx, ea, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pub3 := newPublisher(&recorder{}, time.Hour)
	if err := pub3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pub3.Stop()
	ea = get("ExternalArtifact", sa)
	rev, _, _ = unstructured.NestedString(ea.Object, "status", "artifact", "revision")
	url, _, _ = unstructured.NestedString(ea.Object, "status", "artifact", "url")
	wantURL := srv.URL + publish.ArtifactsPath + path.Join(store.DefaultCluster, sa, strings.TrimPrefix(revA, "main@sha1:"), strings.TrimPrefix(digestA, "sha256:")+".tar.gz")
	if rev != revA || url != wantURL {
		t.Fatalf("legacy URL after a restart: %s at %s; want %s at %s", url, rev, wantURL, revA)
	}
	for range len(svc.handlers) { // every replica
		fetch(t, url, digestA)
	}

	// A leader change: a replica with its own clone, behind the fleet, and its own
	// data folder starts publishing. It fetches first, so it adopts every artifact
	// (nothing is written, so Flux has nothing to do; from its stale head it would
	// have moved the shards back) and serves each of them.
	versions := map[string]string{}
	for _, shard := range []string{sa, sb} {
		versions[shard] = get("ExternalArtifact", shard).GetResourceVersion()
	}
	next, err := publish.New(publish.Config{Source: behind, Cluster: w, FleetCluster: store.DefaultCluster,
		Dir: t.TempDir(), URL: srv.URL, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Start(ctx); err != nil {
		t.Fatal(err)
	}
	next.Stop()
	for shard, rv := range versions {
		ea := get("ExternalArtifact", shard)
		if ea.GetResourceVersion() != rv {
			t.Errorf("the new leader rewrote shard %s's artifact", shard)
		}
		a := publish.Artifact{}
		a.URL, _, _ = unstructured.NestedString(ea.Object, "status", "artifact", "url")
		a.Digest, _, _ = unstructured.NestedString(ea.Object, "status", "artifact", "digest")
		serveBytes(t, next.Handler(), a)
	}

	// No listings, nothing outside the artifact folder.
	for _, p := range []string{publish.ArtifactsPath, publish.ArtifactsPath + "local/", publish.ArtifactsPath + "../publish_test.go"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200", p)
		}
	}
}

// roundRobin stands for the artifact Service: each request goes to the next replica.
type roundRobin struct {
	mu       sync.Mutex
	next     int
	handlers []http.Handler
}

func (s *roundRobin) set(i int, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[i] = h
}

func (s *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.handlers[s.next%len(s.handlers)]
	s.next++
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

// serveBytes asks one replica's handler for a and checks the bytes against a's digest.
func serveBytes(t *testing.T, h http.Handler, a publish.Artifact) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, a.URL, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", a.URL, rec.Code, rec.Body)
	}
	sum := sha256.Sum256(rec.Body.Bytes())
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != a.Digest {
		t.Fatalf("GET %s: digest %s, want %s", a.URL, got, a.Digest)
	}
	return rec.Body.Bytes()
}

// fetch downloads a tarball, checks its digest and returns the regular files in it.
func fetch(t *testing.T, url, digest string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
		t.Fatalf("GET %s: digest %s, status says %s", url, got, digest)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			names[h.Name] = true
		}
	}
}
