package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
)

// noCluster is the Cluster of a replica that only serves: serving must never touch
// the cluster, so any call fails the test.
type noCluster struct{ t testing.TB }

func (c noCluster) PublishArtifact(context.Context, string, publish.Artifact) error {
	c.t.Error("the serving side published an artifact")
	return nil
}

func (c noCluster) PublishedArtifacts(context.Context) (map[string]publish.Artifact, error) {
	c.t.Error("the serving side read the cluster")
	return nil, nil
}

// fleetRemote is a seeded bare fleet repository behind the real git HTTP server.
func fleetRemote(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if _, err := gitrepo.Seed(context.Background(), filepath.Join(root, "fleet.git"), "main", fstest.MapFS{
		"README.md":          {Data: []byte("# Fleet\n")},
		"stores/local/.keep": {Data: []byte("")},
	}, gitrepo.Signature{}); err != nil {
		t.Fatal(err)
	}
	srv, err := githttp.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.URL() + "/fleet.git"
}

func openClone(t testing.TB, url string) *gitrepo.Repo {
	t.Helper()
	r, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: url, Dir: filepath.Join(t.TempDir(), "clone.git")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// replica is one gitops-api's serving side: its own clone and data folder, not
// publishing (only the leader does).
type replica struct {
	repo *gitrepo.Repo
	dir  string
	srv  *httptest.Server
}

func newReplica(t *testing.T, url string) replica {
	t.Helper()
	r := replica{repo: openClone(t, url), dir: t.TempDir()}
	p, err := publish.New(publish.Config{Source: r.repo, Cluster: noCluster{t}, FleetCluster: store.DefaultCluster,
		Dir: r.dir, URL: "http://storefleet-gitops-api.storefleet.svc:9091"})
	if err != nil {
		t.Fatal(err)
	}
	// As on the artifact listener: the handler answers every path.
	r.srv = httptest.NewServer(p.Handler())
	t.Cleanup(r.srv.Close)
	return r
}

// want is an artifact as the leader builds it: the shard folder at a commit, and
// the URL path that names both.
type want struct {
	path   string
	data   []byte
	digest string
}

func build(t testing.TB, repo *gitrepo.Repo, commit, shard string) want {
	t.Helper()
	var buf bytes.Buffer
	if err := repo.Archive(context.Background(), commit, path.Join("stores", store.DefaultCluster, shard), &buf); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	d := hex.EncodeToString(sum[:])
	return want{path: path.Join(store.DefaultCluster, shard, commit, d+".tar.gz"), data: buf.Bytes(), digest: d}
}

func get(t *testing.T, base, p string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(base + publish.ArtifactsPath + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestEveryReplicaServesEveryArtifact: three replicas, each with its own clone and
// data folder on one fleet remote, none of which built the artifacts (the leader's
// clone did, and pushed after the replicas cloned), serve every shard's artifact at
// every commit it had, byte for byte what the leader built; so does a replica started
// afterwards with nothing on disk. A replica whose clone lacks the commit fetches it.
func TestEveryReplicaServesEveryArtifact(t *testing.T) {
	url := fleetRemote(t)
	replicas := []replica{newReplica(t, url), newReplica(t, url), newReplica(t, url)}
	leader := openClone(t, url)

	a, b := "alpha", otherShard("alpha")
	c1 := submit(t, leader, change(t, a, false), change(t, b, false))
	c2 := submit(t, leader, change(t, sameShard(a), false))
	c3 := submit(t, leader, change(t, b, true)) // shard b emptied: an empty tarball
	var wants []want
	for _, c := range []string{c1, c2, c3} {
		for _, s := range []string{store.Shard(a), store.Shard(b)} {
			wants = append(wants, build(t, leader, c, s))
		}
	}
	replicas = append(replicas, newReplica(t, url)) // started after every push

	for i, r := range replicas {
		for _, w := range wants {
			code, h, got := get(t, r.srv.URL, w.path)
			if code != http.StatusOK {
				t.Fatalf("replica %d: GET %s: %d %s", i, w.path, code, got)
			}
			sum := sha256.Sum256(got)
			if hex.EncodeToString(sum[:]) != w.digest || !bytes.Equal(got, w.data) {
				t.Fatalf("replica %d: GET %s: %d bytes that are not the leader's %d", i, w.path, len(got), len(w.data))
			}
			if h.Get("Content-Type") != "application/gzip" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
				t.Errorf("replica %d: GET %s: headers %v", i, w.path, h)
			}
		}
	}
}

// TestServeChecksTheDigest: a URL whose digest is not what the commit's shard
// archives to gets no bytes (500, the determinism promise broken, logged); a commit
// the fleet does not have gets 503 + Retry-After (Flux asks only for published
// commits, so that is the remote failing, for now); a tarball damaged on disk is rebuilt,
// never served; paths that are no artifact are 404 and other methods 405, as
// problem+json.
func TestServeChecksTheDigest(t *testing.T) {
	url := fleetRemote(t)
	leader := openClone(t, url)
	r := newReplica(t, url)
	commit := submit(t, leader, change(t, "alpha", false))
	w := build(t, leader, commit, store.Shard("alpha"))

	wrong := path.Join(path.Dir(w.path), strings.Repeat("0", 64)+".tar.gz")
	if code, _, body := get(t, r.srv.URL, wrong); code != http.StatusInternalServerError || bytes.Contains(body, w.data[:16]) {
		t.Errorf("wrong digest: %d %q, want 500 and no tarball", code, body)
	}
	unknown := path.Join(store.DefaultCluster, store.Shard("alpha"), strings.Repeat("1", 40), w.digest+".tar.gz")
	if code, h, body := get(t, r.srv.URL, unknown); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" ||
		h.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown commit: %d %v %q, want 503 problem+json with Retry-After", code, h, body)
	}

	// A restarted replica finds a damaged tarball in its data folder.
	r2 := newReplica(t, url)
	file := filepath.Join(r2.dir, filepath.FromSlash(w.path))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("not the tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, got := get(t, r2.srv.URL, w.path); code != http.StatusOK || !bytes.Equal(got, w.data) {
		t.Errorf("damaged file: %d, %d bytes; want 200 with the rebuilt %d bytes", code, len(got), len(w.data))
	}

	for _, p := range []string{"", store.DefaultCluster + "/", "../publish_test.go",
		path.Join("other", store.Shard("alpha"), commit, w.digest+".tar.gz"),
		path.Join(store.DefaultCluster, "..", commit, w.digest+".tar.gz"),
		path.Join(store.DefaultCluster, store.Shard("alpha"), commit[:39], w.digest+".tar.gz"),
		path.Join(store.DefaultCluster, store.Shard("alpha"), strings.ToUpper(commit), w.digest+".tar.gz"),
		path.Join(store.DefaultCluster, store.Shard("alpha"), w.digest+".tar.gz"),
	} {
		if code, h, _ := get(t, r.srv.URL, p); code != http.StatusNotFound || h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %q: %d %s, want 404 problem+json", p, code, h.Get("Content-Type"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+publish.ArtifactsPath+w.path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d Allow %q, want 405 GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// BenchmarkServe: a download a replica answers from memory, and one it must first
// rebuild from its clone and check (a fresh replica each time: nothing cached, the
// commit already fetched).
func BenchmarkServe(b *testing.B) {
	url := fleetRemote(b)
	leader, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: url, Dir: filepath.Join(b.TempDir(), "clone.git")})
	if err != nil {
		b.Fatal(err)
	}
	defer leader.Close()
	// A shard a little fuller than at 10,000 stores (~2.4 stores).
	commit := submit(b, leader, change(b, "alpha", false), change(b, sameShard("alpha"), false), change(b, sameShard(sameShard("alpha")), false))
	w := build(b, leader, commit, store.Shard("alpha"))
	replica := func() http.Handler {
		p, err := publish.New(publish.Config{Source: leader, Cluster: noCluster{b}, FleetCluster: store.DefaultCluster,
			Dir: b.TempDir(), URL: "http://artifacts"})
		if err != nil {
			b.Fatal(err)
		}
		return p.Handler()
	}
	get := func(h http.Handler) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, publish.ArtifactsPath+w.path, nil))
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), w.data) {
			b.Fatalf("GET %s: %d, %d bytes", w.path, rec.Code, rec.Body.Len())
		}
	}
	b.Run("cached", func(b *testing.B) {
		h := replica()
		get(h)
		b.SetBytes(int64(len(w.data)))
		for b.Loop() {
			get(h)
		}
	})
	b.Run("rebuilt", func(b *testing.B) {
		b.SetBytes(int64(len(w.data)))
		for b.Loop() {
			b.StopTimer()
			h := replica()
			b.StartTimer()
			get(h)
		}
	})
}
