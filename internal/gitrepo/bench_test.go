package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"

	"github.com/storefleet/storefleet/internal/githttp"
)

// Benchmarks run under `make bench` only (go test runs no benchmarks by default). Every
// remote is the githttp server (git http-backend over loopback) unless the name says
// path, holding a copy of a fleet fixture.

var benchSizes = []int{0, 1000, 10000}

// httpFleet serves a fresh copy of the n-store fixture and returns its URL and path.
func httpFleet(b *testing.B, n int) (string, string) {
	b.Helper()
	return serveFixture(b, fleetFixture(b, n))
}

// httpHistoryFleet serves a fresh copy of historyFixture(n, updates).
func httpHistoryFleet(b *testing.B, n, updates int) string {
	b.Helper()
	url, _ := serveFixture(b, historyFixture(b, n, updates))
	return url
}

// serveFixture serves a copy of the bare repository src over HTTP.
func serveFixture(b *testing.B, src string) (string, string) {
	b.Helper()
	root, err := os.MkdirTemp(fixtureRoot, "srv-")
	if err != nil {
		b.Fatal(err)
	}
	bare := filepath.Join(root, "fleet.git")
	if out, err := exec.Command("cp", "-a", src, bare).CombinedOutput(); err != nil {
		b.Fatalf("copy fixture: %v %s", err, out)
	}
	srv, err := githttp.New(root)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv.URL() + "/fleet.git", bare
}

func pathFleet(b *testing.B, n int) string {
	b.Helper()
	fleetFixture(b, n)
	root, err := os.MkdirTemp(fixtureRoot, "path-")
	if err != nil {
		b.Fatal(err)
	}
	bare := filepath.Join(root, "fleet.git")
	copyFixture(b, n, bare)
	return bare
}

func percentile(s []time.Duration, p float64) time.Duration {
	c := append([]time.Duration(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	i := int(p*float64(len(c))+0.5) - 1
	return c[max(0, min(i, len(c)-1))]
}

func reportLatency(b *testing.B, s []time.Duration) {
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	b.ReportMetric(float64(sum.Nanoseconds())/float64(len(s)), "ns/op")
	b.ReportMetric(float64(percentile(s, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(s, 0.95).Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(len(s)), "requests")
}

// latencyRequests is how many sequential single-store requests one run measures; each
// is a create of a new store folder with five files.
const latencyRequests = 60

// BenchmarkCommitPush: one request at a time (so one store per commit), commit + push
// latency, this package against the git CLI in a worktree clone on the same server.
func BenchmarkCommitPush(b *testing.B) {
	for _, n := range benchSizes {
		for _, impl := range []string{"gitrepo", "gitrepo-disk", "gitrepo-path", "gitrepo-embedded", "gitcli", "receive-pack-floor"} {
			b.Run(fmt.Sprintf("stores=%d/%s", n, impl), func(b *testing.B) {
				apply := setupLatency(b, n, impl)
				b.ResetTimer()
				var samples []time.Duration
				seq := 0
				for i := 0; i < b.N; i++ {
					for j := 0; j < latencyRequests; j++ {
						name := fmt.Sprintf("bench-%d-%05d", i, seq)
						seq++
						t0 := time.Now()
						apply(name)
						samples = append(samples, time.Since(t0))
					}
				}
				b.StopTimer()
				reportLatency(b, samples)
			})
		}
	}
}

func setupLatency(b *testing.B, n int, impl string) func(name string) {
	ctx := context.Background()
	switch impl {
	case "gitrepo", "gitrepo-disk", "gitrepo-path", "gitrepo-embedded":
		// gitrepo-embedded is what gitops-api runs without --fleet-url: a local bare
		// repository written directly and a clone kept on disk.
		o := Options{}
		if impl == "gitrepo-path" || impl == "gitrepo-embedded" {
			o.URL = pathFleet(b, n)
		} else {
			o.URL, _ = httpFleet(b, n)
		}
		if impl == "gitrepo-disk" || impl == "gitrepo-embedded" {
			o.Dir = filepath.Join(b.TempDir(), "clone")
		}
		r, err := Open(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		return func(name string) {
			if res := r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	case "gitcli":
		url, _ := httpFleet(b, n)
		work := filepath.Join(b.TempDir(), "w")
		runGit(b, filepath.Dir(work), "clone", "-q", url, work)
		return func(name string) {
			c := change("local", name, ActionCreate, 1, "req-"+name)
			dir := filepath.Join(work, c.Dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for _, f := range c.Files {
				if err := os.WriteFile(filepath.Join(dir, f.Path), f.Content, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			runGit(b, work, "add", "--", c.Dir)
			cmd := gitExec(work, "commit", "-q", "-F", "-")
			cmd.Stdin = strings.NewReader(commitMessage([]*Change{&c}))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git commit: %v %s", err, out)
			}
			runGit(b, work, "push", "-q", "origin", "HEAD:main")
		}
	case "receive-pack-floor":
		// What the server alone spends per push: git receive-pack run directly on the
		// bare repository with the request this package would send (no HTTP, no CGI).
		// Every client pays at least this.
		bare := pathFleet(b, n)
		r, err := Open(ctx, Options{URL: bare})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		return func(name string) {
			p := &pending{ch: change("local", name, ActionCreate, 1, "req-"+name)}
			base, commit, applied, objs, err := r.build([]*pending{p})
			if err != nil {
				b.Fatal(err)
			}
			pack, err := encodePack(objs)
			if err != nil {
				b.Fatal(err)
			}
			req := packp.NewReferenceUpdateRequest()
			_ = req.Capabilities.Set(capability.ReportStatus)
			req.Commands = []*packp.Command{{Name: r.branchRef, Old: base, New: commit}}
			req.Packfile = io.NopCloser(bytes.NewReader(pack))
			var body bytes.Buffer
			if err := req.Encode(&body); err != nil {
				b.Fatal(err)
			}
			cmd := gitExec(bare, "receive-pack", "--stateless-rpc", bare)
			cmd.Stdin = &body
			if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("ok refs/heads/main")) {
				b.Fatalf("receive-pack: %v %q", err, out)
			}
			r.landed(commit, objs, applied)
		}
	}
	b.Fatalf("impl %q", impl)
	return nil
}

// BenchmarkGroupThroughput: c clients submitting store creates at once into a
// 10,000-store fleet, over HTTP and to a local path; stores/s through group commit.
func BenchmarkGroupThroughput(b *testing.B) {
	for _, rem := range []string{"http", "path"} {
		for _, c := range []int{1, 10, 100} {
			benchThroughput(b, rem, c)
		}
	}
}

func benchThroughput(b *testing.B, rem string, c int) {
	b.Run(fmt.Sprintf("stores=10000/remote=%s/concurrency=%d", rem, c), func(b *testing.B) {
		var url, bare string
		if rem == "http" {
			url, bare = httpFleet(b, 10000)
		} else {
			bare = pathFleet(b, 10000)
			url = bare
		}
		ctx := context.Background()
		r, err := Open(ctx, Options{URL: url})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		total := max(100, 20*c)
		before := strings.TrimSpace(runGit(b, bare, "rev-list", "--count", "main"))
		b.ResetTimer()
		var n atomic.Int64
		t0 := time.Now()
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			var next atomic.Int64
			for g := 0; g < c; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						k := next.Add(1)
						if k > int64(total) {
							return
						}
						name := fmt.Sprintf("tp-%d-%05d", i, k)
						if res := r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)); res.Err != nil {
							b.Error(res.Err)
							return
						}
						n.Add(1)
					}
				}()
			}
			wg.Wait()
		}
		el := time.Since(t0)
		b.StopTimer()
		after := strings.TrimSpace(runGit(b, bare, "rev-list", "--count", "main"))
		bi, _ := strconv.Atoi(before)
		ai, _ := strconv.Atoi(after)
		b.ReportMetric(float64(n.Load())/el.Seconds(), "stores/s")
		b.ReportMetric(float64(n.Load())/float64(max(1, ai-bi)), "stores/commit")
		b.ReportMetric(float64(el.Nanoseconds())/float64(n.Load()), "ns/op")
	})
}

// BenchmarkFreshReplica: Open on a 10,000-store fleet over HTTP until it is ready to
// serve and write: a shallow start (the newest firstFetchDepth commits, the rest of the
// history following in the background) against the full clone of before (baseline),
// the two interleaved in the same run so the shared machine's load weighs on both
// alike. Median and worst reported, and for the shallow start the time until its
// history is complete too.
//
// Two histories: the fixture's 101 commits (the tip holds nearly every object of the
// history), in memory and on disk, five opens each; and 5,100 (each one-store update
// adds a 4,096-entry cluster tree), in memory, three opens each.
func BenchmarkFreshReplica(b *testing.B) {
	for _, tc := range []struct {
		name    string
		updates int
		mode    string
		opens   int
	}{
		{"stores=10000/memory", 0, "memory", 5},
		{"stores=10000/disk", 0, "disk", 5},
		{"stores=10000,commits=5100/memory", 5000, "memory", 3},
	} {
		mode := tc.mode
		b.Run(tc.name, func(b *testing.B) {
			url := httpHistoryFleet(b, 10000, tc.updates)
			ctx := context.Background()
			var shallow, full, complete []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < tc.opens; j++ {
					for _, whole := range []bool{false, true} {
						o := Options{URL: url, fullFirstFetch: whole}
						if mode == "disk" {
							o.Dir = filepath.Join(b.TempDir(), fmt.Sprintf("clone-%d-%d-%t", i, j, whole))
						}
						t0 := time.Now()
						r, err := Open(ctx, o)
						if err != nil {
							b.Fatal(err)
						}
						ready := time.Since(t0)
						if whole {
							full = append(full, ready)
						} else {
							shallow = append(shallow, ready)
							for !r.historyComplete() {
								time.Sleep(5 * time.Millisecond)
							}
							complete = append(complete, time.Since(t0))
						}
						r.Close()
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(shallow, 0.5).Milliseconds()), "p50-ms/ready")
			b.ReportMetric(float64(percentile(shallow, 1).Milliseconds()), "max-ms/ready")
			b.ReportMetric(float64(percentile(full, 0.5).Milliseconds()), "p50-ms/full-clone")
			b.ReportMetric(float64(percentile(full, 1).Milliseconds()), "max-ms/full-clone")
			b.ReportMetric(float64(percentile(shallow, 0.5))/float64(percentile(full, 0.5)), "ready/full-clone")
			b.ReportMetric(float64(percentile(complete, 0.5).Milliseconds()), "p50-ms/history")
		})
	}
}

// BenchmarkReopen: Open on a disk clone of a 10,000-store fleet that is up to date, as
// every restart does; it includes the start-up check of the clone (the tip commit and
// the trees above the 10,000 store folders). Five opens per run, median and worst.
func BenchmarkReopen(b *testing.B) {
	url := pathFleet(b, 10000)
	ctx := context.Background()
	o := Options{URL: url, Dir: filepath.Join(b.TempDir(), "clone.git")}
	r, err := Open(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	r.Close()
	var samples, checks []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 5; j++ {
			t0 := time.Now()
			r, err := Open(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(t0))
			t0 = time.Now()
			if err := r.checkClone(); err != nil {
				b.Fatal(err)
			}
			checks = append(checks, time.Since(t0))
			r.Close()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(samples, 0.5).Milliseconds()), "p50-ms/open")
	b.ReportMetric(float64(percentile(samples, 1).Milliseconds()), "max-ms/open")
	b.ReportMetric(float64(percentile(checks, 0.5).Milliseconds()), "p50-ms/check")
}

// BenchmarkPeakRSS runs a child process (this test binary, see TestMain) that opens a
// 10,000-store fleet, writes 1,000 stores from 100 clients, lists and reads history,
// and reports its peak resident set (VmHWM).
func BenchmarkPeakRSS(b *testing.B) {
	for _, mode := range []string{"memory", "disk"} {
		b.Run("stores=10000/"+mode, func(b *testing.B) {
			url, _ := httpFleet(b, 10000)
			var kb int
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				dir := ""
				if mode == "disk" {
					dir = filepath.Join(b.TempDir(), "clone")
				}
				cmd.Env = append(os.Environ(), "GITREPO_RSS_CHILD="+url, "GITREPO_RSS_DIR="+dir)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					b.Fatalf("child: %v\n%s", err, out.String())
				}
				_, after, ok := strings.Cut(out.String(), "VmHWM-kB=")
				if !ok {
					b.Fatalf("child printed no VmHWM:\n%s", out.String())
				}
				kb, _ = strconv.Atoi(strings.Fields(after)[0])
			}
			b.ReportMetric(float64(kb)/1024, "peak-RSS-MB")
		})
	}
}

func rssChild(url string) int {
	ctx := context.Background()
	r, err := Open(ctx, Options{URL: url, Dir: os.Getenv("GITREPO_RSS_DIR")})
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				name := fmt.Sprintf("rss-%03d-%02d", g, i)
				if res := r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)); res.Err != nil {
					failed.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	list, err := r.ListStores(ctx)
	if err != nil || len(list) != 11000 || failed.Load() != 0 {
		fmt.Println("list:", len(list), err, "failed:", failed.Load())
		return 1
	}
	if _, err := r.History(ctx, list[0].Dir, 10); err != nil {
		fmt.Println("history:", err)
		return 1
	}
	r.Close()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println("VmHWM-kB=" + strings.Fields(line)[1])
			return 0
		}
	}
	fmt.Println("no VmHWM in /proc/self/status")
	return 1
}
