package gitrepo

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// The fleet fixtures are built once per test binary run (with git fast-import, seconds
// for 10,000 stores) and copied for each benchmark that needs a remote of that size.
var (
	fixtureRoot string
	fixtureMu   sync.Mutex
	fixtures    = map[[2]int]string{}
)

func TestMain(m *testing.M) {
	if url := os.Getenv("GITREPO_RSS_CHILD"); url != "" {
		os.Exit(rssChild(url))
	}
	if url := os.Getenv("GITREPO_LOCK_CHILD"); url != "" {
		os.Exit(lockChild(url))
	}
	code := m.Run()
	if fixtureRoot != "" {
		os.RemoveAll(fixtureRoot)
	}
	os.Exit(code)
}

// fleetFixture returns a bare repository holding the skeleton and n stores in cluster
// "local", added 100 per commit with the writer's trailers.
func fleetFixture(tb testing.TB, n int) string { return historyFixture(tb, n, 0) }

// historyFixture is fleetFixture followed by updates one-store commits (an update of
// each store in turn), for a long history over a full cluster tree.
func historyFixture(tb testing.TB, n, updates int) string {
	tb.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if p, ok := fixtures[[2]int{n, updates}]; ok {
		return p
	}
	if fixtureRoot == "" {
		d, err := os.MkdirTemp("", "gitrepo-fixtures-")
		if err != nil {
			tb.Fatal(err)
		}
		fixtureRoot = d
	}
	bare := filepath.Join(fixtureRoot, fmt.Sprintf("fleet-%d-%d.git", n, updates))
	runGit(tb, fixtureRoot, "init", "-q", "--bare", "--initial-branch=main", bare)
	cmd := gitExec(bare, "fast-import", "--quiet", "--done")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	mark := 0
	ts := int64(1767225600)
	commit := func(msg string, files map[string][]byte) {
		mark++
		ts++
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\ncommitter Fixture <fixture@example.com> %d +0000\ndata %d\n%s\n", mark, ts, len(msg), msg)
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", p, len(files[p]), files[p])
		}
	}
	seed := map[string][]byte{}
	for p, f := range skeleton {
		seed[p] = f.Data
	}
	commit("Seed the fleet repository\n", seed)
	const perCommit = 100
	for start := 0; start < n; start += perCommit {
		files := map[string][]byte{}
		var changes []*Change
		for i := start; i < min(start+perCommit, n); i++ {
			name := fmt.Sprintf("fixture-%05d", i)
			c := change("local", name, ActionCreate, 1, fmt.Sprintf("fixture-req-%d", i))
			for _, f := range c.Files {
				files[c.Dir+"/"+f.Path] = f.Content
			}
			changes = append(changes, &c)
		}
		commit(commitMessage(changes), files)
	}
	for u := 0; u < updates && n > 0; u++ {
		name := fmt.Sprintf("fixture-%05d", u%n)
		c := change("local", name, ActionUpdate, 2+u/n, fmt.Sprintf("fixture-upd-%d", u))
		files := map[string][]byte{}
		for _, f := range c.Files {
			files[c.Dir+"/"+f.Path] = f.Content
		}
		commit(commitMessage([]*Change{&c}), files)
	}
	fmt.Fprintf(w, "done\n")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, out.String())
	}
	// A server repository is packed and has a commit-graph, like any served fleet.
	runGit(tb, bare, "repack", "-adq")
	runGit(tb, bare, "commit-graph", "write", "--reachable")
	fixtures[[2]int{n, updates}] = bare
	return bare
}

type lockedBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// copyFixture copies the n-store fixture to dst (a new bare repository).
func copyFixture(tb testing.TB, n int, dst string) {
	tb.Helper()
	src := fleetFixture(tb, n)
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		tb.Fatalf("copy fixture: %v %s", err, out)
	}
}
