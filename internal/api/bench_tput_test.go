package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/apitoken"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/fleetfixture"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// tputFleet is one 10,000-store fleet as serve runs it (a clone on disk, the
// service, the Gate with an API token and the access decorator), behind either the
// embedded default (a bare repository on a path, written directly) or git
// http-backend on loopback.
type tputFleet struct {
	api   *httptest.Server
	token string
	repo  *gitrepo.Repo
	bare  string // the fleet's bare repository
	git   *githttp.Server
	r     render.Renderer
}

func newTputFleet(b *testing.B, remote string, size int) *tputFleet {
	b.Helper()
	git, err := githttp.New(b.TempDir())
	if err != nil {
		b.Fatalf("git http-backend is needed: %v", err)
	}
	bare, err := git.InitBare("fleet.git")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := fleetfixture.Fill(ctx, bare, size); err != nil {
		b.Fatal(err)
	}
	url := bare
	if remote == "http" {
		// The floor's own copy of the fleet, taken before any push: afterwards the
		// server's automatic gc may be repacking fleet.git while it is read.
		if out, err := exec.Command("cp", "-a", bare, filepath.Join(filepath.Dir(bare), "floor.git")).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		if err := git.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { git.Close() })
		url = git.URL() + "/fleet.git"
	}
	r := render.Renderer{Options: render.LocalOptions()}
	// As serve wires it: the writer counts the tenant's stores where the commit
	// lands, since the benchmark's auth.yaml sets a store quota.
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: url, Dir: filepath.Join(b.TempDir(), "clone.git"),
		TenantOf: func(files []store.File) (string, error) { return store.FolderTenant(r, store.DefaultTenant, files) }, TenantQuota: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: r,
		RequestLog: filepath.Join(b.TempDir(), "requests.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close() })
	svc.WaitLoaded()
	// The history index is built in the background after a start (~1 s of CPU
	// here); the rounds measure the steady state, not the start.
	for deadline := time.Now().Add(2 * time.Minute); !repo.HistoryIndexed(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the history index was not built within 2 minutes")
		}
	}

	dir := b.TempDir()
	tok, sum, err := apitoken.Generate()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte("tokens:\n- {name: bench, tenant: bench, role: editor, sha256: "+sum+"}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte("apiTokens: {file: tokens.yaml}\nlimits: {readsPerMinute: 10000000, writesPerMinute: 10000000, storesPerTenant: 10000000}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	c, err := access.Load(conf)
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := apitoken.Open(c.APITokens.File, nil)
	if err != nil {
		b.Fatal(err)
	}
	gate := access.NewGate(access.NewPolicy(c), tokens)
	ts := httptest.NewServer(api.Handler(access.NewService(svc, svc, access.Options{Limits: c.Limits}),
		api.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Authenticate: gate.Principal,
			Limits: api.Limits{Reads: c.Limits.ReadsPerMinute, Writes: c.Limits.WritesPerMinute}}))
	b.Cleanup(ts.Close)
	return &tputFleet{api: ts, token: tok, repo: repo, bare: bare, git: git, r: r}
}

// commits counts the fleet branch's commits on the bare repository.
func (f *tputFleet) commits(b *testing.B) int {
	cmd := exec.Command("git", "-C", f.bare, "rev-list", "--count", "HEAD")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("git rev-list --count HEAD: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// apiRound sends n creates from conc clients at once (closed loop) and returns the
// answers' latencies and the wall time.
func (f *tputFleet) apiRound(b *testing.B, n, conc int) ([]time.Duration, time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				name := fmt.Sprintf("tput-%d", benchSeq.Add(1))
				req, _ := http.NewRequest("POST", f.api.URL+"/api/v1/stores", strings.NewReader(
					`{"name":"`+name+`","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+f.token)
				s := time.Now()
				res, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				lat[i] = time.Since(s)
				if res.StatusCode != http.StatusAccepted && failed.Add(1) == 1 {
					b.Logf("create %s: %d %s", name, res.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if k := failed.Load(); k > 0 {
		b.Fatalf("%d of %d creates failed", k, n)
	}
	return lat, el
}

// changes renders n stores into the writer's changes, as the service would hand
// them over; done before the clock starts, so the writer-only round times the writer alone.
func (f *tputFleet) changes(b *testing.B, prefix string, n int) []gitrepo.Change {
	out := make([]gitrepo.Change, n)
	for i := range out {
		s := store.Store{Name: fmt.Sprintf("%s-%d", prefix, benchSeq.Add(1)), Engine: store.WooCommerce, Plan: "basic",
			Tenant: "bench", Settings: store.Settings{AdminEmail: "a@example.com"}}.WithDefaults("")
		files, err := f.r.Render(s, store.StateActive)
		if err != nil {
			b.Fatal(err)
		}
		dir := store.Dir(s.Cluster, s.Name)
		c := gitrepo.Change{Store: s.Name, Cluster: s.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "bench", RequestID: s.Name}
		for _, fl := range files {
			c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(fl.Path, dir+"/"), Content: fl.Content})
		}
		out[i] = c
	}
	return out
}

// writerRound submits ready-rendered changes from conc clients at once.
func (f *tputFleet) writerRound(b *testing.B, chs []gitrepo.Change, conc int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(chs) {
					return
				}
				if res := f.repo.Submit(context.Background(), chs[i]); res.Err != nil {
					b.Error(res.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

// floor is the Git server's own limit over HTTP: sequential receive-pack POSTs of
// ready-made commits of group stores each (their packs built beforehand) to a copy
// of the fleet on the same server. It returns the stores pushed and the time the
// pushes took.
func (f *tputFleet) floor(b *testing.B, group, pushes int) (int, time.Duration) {
	b.Helper()
	dst := filepath.Join(filepath.Dir(f.bare), "floor.git")
	// Through git, not cp: the server's automatic gc may be repacking dst.
	scratch := filepath.Join(b.TempDir(), "scratch.git")
	if out, err := exec.Command("git", "clone", "-q", "--bare", "--no-local", dst, scratch).CombinedOutput(); err != nil {
		b.Fatalf("clone: %v %s", err, out)
	}
	ctx := context.Background()
	w, err := gitrepo.Open(ctx, gitrepo.Options{URL: scratch})
	if err != nil {
		b.Fatal(err)
	}
	tip := func() string {
		out, err := exec.Command("git", "-C", scratch, "rev-parse", "HEAD").Output()
		if err != nil {
			b.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	hashes := []string{tip()}
	for range pushes {
		for _, res := range w.SubmitAll(ctx, f.changes(b, "floor", group)) {
			if res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		hashes = append(hashes, tip())
	}
	w.Close()
	bodies := make([][]byte, pushes)
	for i := range bodies {
		// As the writer sends them: whole objects, no deltas, stored without compression.
		cmd := exec.Command("git", "-C", scratch, "pack-objects", "--revs", "--stdout", "-q", "--window=0", "--no-reuse-delta", "--compression=0")
		cmd.Stdin = strings.NewReader(hashes[i+1] + "\n^" + hashes[i] + "\n")
		pack, err := cmd.Output()
		if err != nil {
			b.Fatalf("pack-objects: %v", err)
		}
		line := fmt.Sprintf("%s %s refs/heads/main\x00report-status\n", hashes[i], hashes[i+1])
		var body bytes.Buffer
		fmt.Fprintf(&body, "%04x%s0000", len(line)+4, line)
		body.Write(pack)
		bodies[i] = body.Bytes()
	}
	url := f.git.URL() + "/" + filepath.Base(dst) + "/git-receive-pack"
	t0 := time.Now()
	for _, body := range bodies {
		res, err := http.Post(url, "application/x-git-receive-pack-request", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !bytes.Contains(out, []byte("ok refs/heads/main")) {
			b.Fatalf("receive-pack: %d %q", res.StatusCode, out)
		}
	}
	return pushes * group, time.Since(t0)
}

func pctl(lat []time.Duration, p float64) float64 {
	return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
}

// BenchmarkCreateThroughput: creates through the API (HTTP, API token, access
// decorator, service, render, group commit, push) from 100 clients into a fleet of
// 10,000 stores, against the writer alone committing the same kind of stores
// (rendered beforehand) in the same run; the two take turns in two rounds each, so
// the machine's load falls on both alike. On the HTTP remote also the Git server's
// own floor: receive-pack POSTs of ready-made commits as large as the API's groups.
// Each 202 is sent only after its commit is pushed. Figures: docs/benchmarks.md,
// "Throughput through the API".
func BenchmarkCreateThroughput(b *testing.B) {
	const size, conc = 10000, 100
	for _, remote := range []string{"embedded", "http"} {
		// The fleet is built in the remote's own level, which runs once, so -bench
		// can pick one remote without building the other.
		b.Run("remote="+remote, func(b *testing.B) {
			benchCreateThroughput(b, newTputFleet(b, remote, size), remote, size, conc)
		})
	}
}

func benchCreateThroughput(b *testing.B, f *tputFleet, remote string, size, conc int) {
	b.Run(fmt.Sprintf("stores=%d/clients=%d", size, conc), func(b *testing.B) {
		half := max(b.N/2, 1)
		var lat []time.Duration
		var apiTime, writerTime time.Duration
		var apiCommits, floorStores int
		var floorTime time.Duration
		for range 2 {
			chs := f.changes(b, "writer", half)
			c0 := f.commits(b)
			l, el := f.apiRound(b, half, conc)
			commits := f.commits(b) - c0
			apiCommits += commits
			lat = append(lat, l...)
			apiTime += el
			writerTime += f.writerRound(b, chs, conc)
			if remote == "http" && b.N > 1 {
				// The server's floor for commits as large as this round's, taking its
				// turn with the API and the writer.
				group := max(1, (half+commits/2)/max(commits, 1))
				n, el := f.floor(b, group, max(5, half/group))
				floorStores += n
				floorTime += el
			}
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		apiRate := float64(2*half) / apiTime.Seconds()
		writerRate := float64(2*half) / writerTime.Seconds()
		b.ReportMetric(apiRate, "stores/s")
		b.ReportMetric(writerRate, "writer-stores/s")
		b.ReportMetric(apiRate/writerRate, "api/writer")
		b.ReportMetric(float64(2*half)/float64(max(apiCommits, 1)), "stores/commit")
		b.ReportMetric(pctl(lat, 0.50), "p50-ms")
		b.ReportMetric(pctl(lat, 0.90), "p90-ms")
		b.ReportMetric(pctl(lat, 0.99), "p99-ms")
		if floorStores > 0 {
			fl := float64(floorStores) / floorTime.Seconds()
			b.ReportMetric(fl, "floor-stores/s")
			b.ReportMetric(apiRate/fl, "api/floor")
		}
	})
}
