package fleet_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/store"
)

// The read path at scale: a fleet of readStores stores (render's own files) with
// readCommits commits, most of them one-store updates, as a long-lived fleet has. The
// fixture takes minutes to make (git fast-import, then a first clone that builds the
// history index), so it is kept under ~/.cache/storefleet/fixtures, named by the
// rendered files' digest: a change to render makes a new one.
const (
	readStores  = 10000
	readCommits = 100000
)

func readName(i int) string { return fmt.Sprintf("shop-%05d", i) }

// readVariant renders store i with title variant v (0 or 1): an update flips it.
func readVariant(tb testing.TB, i, v int) []store.File {
	s := shop(readName(i), "").WithDefaults("stores.localhost")
	s.Cluster, s.Settings.Title = "local", fmt.Sprintf("Shop %d (%d)", i, v)
	files, err := renderer.Render(s, store.StateActive)
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

type readFixture struct {
	bare, clone string // the fleet (bare, commit-graph with changed paths) and a clone with its index
	built       time.Duration
}

func fixtureDir(tb testing.TB) string {
	tb.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.New()
	for _, v := range []int{0, 1} {
		for _, f := range readVariant(tb, 0, v) {
			fmt.Fprintf(sum, "%s\x00%s\x00", f.Path, f.Content)
		}
	}
	return filepath.Join(base, "storefleet", "fixtures", fmt.Sprintf("reads-%dx%d-%s", readStores, readCommits, hex.EncodeToString(sum.Sum(nil))[:12]))
}

func runGit(tb testing.TB, dir string, stdin *os.File, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Stdin = dir, stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// makeReadFixture returns the cached fixture, making it first if needed.
func makeReadFixture(tb testing.TB) readFixture {
	tb.Helper()
	dir := fixtureDir(tb)
	fx := readFixture{bare: filepath.Join(dir, "fleet.git"), clone: filepath.Join(dir, "clone.git")}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return fx
	}
	t0 := time.Now()
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	runGit(tb, dir, nil, "init", "-q", "--bare", "--initial-branch=main", fx.bare)
	stream := filepath.Join(dir, "import.stream")
	writeImportStream(tb, stream)
	in, err := os.Open(stream)
	if err != nil {
		tb.Fatal(err)
	}
	runGit(tb, fx.bare, in, "fast-import", "--quiet", "--done")
	in.Close()
	os.Remove(stream)
	// As a served fleet has it, with the changed-path filters git log uses.
	runGit(tb, fx.bare, nil, "commit-graph", "write", "--reachable", "--changed-paths")
	// The first clone builds the history index beside it (once: later runs copy both).
	r, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: fx.bare, Dir: fx.clone})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := r.History(context.Background(), store.Dir("local", readName(0)), 1); err != nil {
		tb.Fatal(err)
	}
	for !r.HistoryIndexed() {
		time.Sleep(100 * time.Millisecond)
	}
	r.Close()
	fx.built = time.Since(t0)
	if err := os.WriteFile(filepath.Join(dir, "done"), []byte(fx.built.String()+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return fx
}

// writeImportStream writes the fixture's history for git fast-import: a seed commit,
// the stores created 100 a commit, then one-store updates round the fleet until
// readCommits commits, each with the writer's trailers.
func writeImportStream(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	// Each store's two variants, as fast-import blobs (marks), written once.
	mark := 0
	blobs := make([][2]map[string]int, readStores)
	for i := range readStores {
		for v := range 2 {
			blobs[i][v] = map[string]int{}
			for _, fl := range readVariant(tb, i, v) {
				mark++
				fmt.Fprintf(w, "blob\nmark :%d\ndata %d\n%s\n", mark, len(fl.Content), fl.Content)
				blobs[i][v][fl.Path] = mark
			}
		}
	}
	ts := int64(1767225600)
	commits := 0
	commit := func(msg string, files map[string]int, first bool) {
		ts++
		commits++
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Fixture <fixture@example.com> %d +0000\ndata %d\n%s\n", ts, len(msg), msg)
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		if first {
			fmt.Fprintf(w, "M 100644 inline README.md\ndata 8\n# Fleet\n\nM 100644 inline stores/local/.keep\ndata 0\n\n")
		}
		for _, p := range paths {
			fmt.Fprintf(w, "M 100644 :%d %s\n", files[p], p)
		}
	}
	trailers := func(b *strings.Builder, name, action string, req int) {
		fmt.Fprintf(b, "Store: %s\nAction: %s\nCluster: local\nActor: fixture@example.com\nRequest-Id: fx-%d\n", name, action, req)
	}
	commit("Seed the fleet repository\n", nil, true)
	for start := 0; start < readStores; start += 100 {
		var b strings.Builder
		fmt.Fprintf(&b, "100 store changes (create 100)\n\n")
		files := map[string]int{}
		for i := start; i < min(start+100, readStores); i++ {
			trailers(&b, readName(i), "create", i)
			for p, m := range blobs[i][0] {
				files[p] = m
			}
		}
		commit(b.String(), files, false)
	}
	for n := 0; commits < readCommits; n++ {
		i := n % readStores
		v := 1 - (n/readStores)%2 // flips every round of the fleet
		var b strings.Builder
		fmt.Fprintf(&b, "update store %s in local\n\n", readName(i))
		trailers(&b, readName(i), "update", readStores+n)
		files := map[string]int{}
		for p, m := range blobs[i][v] {
			if !strings.HasSuffix(p, "/helmrelease.yaml") {
				continue // only the release names the title
			}
			files[p] = m
		}
		commit(b.String(), files, false)
	}
	fmt.Fprintf(w, "done\n")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// copyClone copies the fixture's clone and its history index to a new folder.
func copyClone(tb testing.TB, fx readFixture) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), "clone.git")
	for _, p := range [][2]string{{fx.clone, dst}, {fx.clone + ".history.idx", dst + ".history.idx"}} {
		if out, err := exec.Command("cp", "-a", p[0], p[1]).CombinedOutput(); err != nil {
			tb.Fatalf("copy %s: %v %s", p[0], err, out)
		}
	}
	return dst
}

func p50(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkReads: at 10,000 stores and 100,000 commits, a restart (Open of the clone on
// disk and the lifecycle's index), GET of a store right after it and once warm, and a
// store's history. Baselines in the same run: reading the store's folder alone (what
// a GET cannot do without) and git's own path-limited log with changed-path filters
// (git log -n 100 -- <folder>) for the history.
func BenchmarkReads(b *testing.B) {
	fx := makeReadFixture(b)
	if fx.built > 0 {
		b.Logf("fixture made in %v", fx.built.Round(time.Second))
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return readName(rng.IntN(readStores)) }
	for b.Loop() {
		for _, remote := range []string{"path", "http"} {
			url := fx.bare
			if remote == "http" {
				srv, err := githttp.New(filepath.Dir(fx.bare))
				if err != nil {
					b.Fatal(err)
				}
				if err := srv.Start(); err != nil {
					b.Fatal(err)
				}
				url = srv.URL() + "/fleet.git"
				defer srv.Close()
			}
			dir := copyClone(b, fx)
			t0 := time.Now()
			repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: url, Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: renderer, Cluster: "local"})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Since(t0)
			b.ReportMetric(ms(start), "ms/start-"+remote)
			if remote == "http" {
				svc.Close()
				repo.Close()
				continue
			}
			// Right after the restart: the warm-up runs meanwhile.
			get := func(n int) (got, floor []time.Duration) {
				for range n {
					name := pick()
					t := time.Now()
					if _, err := svc.Get(ctx, name); err != nil {
						b.Fatal(err)
					}
					got = append(got, time.Since(t))
					t = time.Now()
					if _, _, err := (gitrepo.Fleet{R: repo}).ReadDir(ctx, store.Dir("local", pick())); err != nil {
						b.Fatal(err)
					}
					floor = append(floor, time.Since(t))
				}
				return got, floor
			}
			cold, coldFloor := get(200)
			svc.WaitLoaded()
			warm, warmFloor := get(200)
			b.ReportMetric(ms(p50(cold)), "ms/get-restart-p50")
			b.ReportMetric(ms(p50(coldFloor)), "ms/folder-read-p50")
			b.ReportMetric(float64(p50(cold))/float64(p50(coldFloor)), "x/get-restart-vs-folder")
			b.ReportMetric(ms(p50(warm)), "ms/get-warm-p50")
			b.ReportMetric(float64(p50(warm))/float64(p50(warmFloor)), "x/get-warm-vs-folder")

			var hist, cli []time.Duration
			for i := range 200 {
				name := pick()
				t := time.Now()
				h, err := svc.History(ctx, name)
				if err != nil || len(h) == 0 {
					b.Fatalf("history of %s: %d entries, %v", name, len(h), err)
				}
				hist = append(hist, time.Since(t))
				if i%10 == 0 {
					t = time.Now()
					runGit(b, fx.bare, nil, "log", "-n", "100", "--format=%H%x00%B", "main", "--", store.Dir("local", name))
					cli = append(cli, time.Since(t))
				}
			}
			b.ReportMetric(ms(p50(hist)), "ms/history-p50")
			b.ReportMetric(ms(p50(cli)), "ms/git-log-p50")
			b.ReportMetric(float64(p50(hist))/float64(p50(cli)), "x/history-vs-git-log")
			svc.Close()
			repo.Close()
		}
	}
}

// BenchmarkHistoryIndexBuild: the history index built from nothing over the fixture's
// 100,000 commits, as on the first start of a version with the index or after a
// force-push rewrite (in the background; History walks the log meanwhile). Baseline in
// the same run: git's own pass over every commit's changed paths, `git commit-graph
// write --reachable --changed-paths` on a copy of the fleet.
func BenchmarkHistoryIndexBuild(b *testing.B) {
	fx := makeReadFixture(b)
	ctx := context.Background()
	for b.Loop() {
		dir := copyClone(b, fx)
		if err := os.Remove(dir + ".history.idx"); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: fx.bare, Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		for !repo.HistoryIndexed() {
			time.Sleep(50 * time.Millisecond)
		}
		build := time.Since(t0)
		repo.Close()
		bare := filepath.Join(b.TempDir(), "fleet.git")
		if out, err := exec.Command("cp", "-a", fx.bare, bare).CombinedOutput(); err != nil {
			b.Fatalf("copy: %v %s", err, out)
		}
		os.RemoveAll(filepath.Join(bare, "objects", "info", "commit-graph"))
		os.RemoveAll(filepath.Join(bare, "objects", "info", "commit-graphs"))
		t0 = time.Now()
		runGit(b, bare, nil, "commit-graph", "write", "--reachable", "--changed-paths")
		graph := time.Since(t0)
		b.ReportMetric(build.Seconds(), "s/index-build")
		b.ReportMetric(graph.Seconds(), "s/git-commit-graph")
		b.ReportMetric(build.Seconds()/graph.Seconds(), "x/index-vs-commit-graph")
	}
}
