package gitrepo

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// histChange is one change of a generated history, as the test expects to read it back.
type histChange struct {
	at               time.Time
	action, store, r string
}

// writeHistory appends n commits to bare's main with git fast-import, one change
// each, one second apart from start: every tenth commit deletes a store, and
// purges come as two commits under one Request-Id; the rest are updates. It
// returns the changes written.
func writeHistory(tb testing.TB, bare string, start time.Time, first, n int) []histChange {
	tb.Helper()
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
	var got []histChange
	for i := first; i < first+n; i++ {
		at := start.Add(time.Duration(i-first) * time.Second)
		h := histChange{at: at, action: "update", store: fmt.Sprintf("s-%d", i), r: fmt.Sprintf("u-%d", i)}
		switch i % 10 {
		case 3:
			h.action, h.r = "delete", fmt.Sprintf("d-%d", i)
		case 6:
			h.action, h.r = "purge", fmt.Sprintf("p-%d", i)
		case 7:
			h.action, h.store, h.r = "purge", fmt.Sprintf("s-%d", i-1), fmt.Sprintf("p-%d", i-1)
		}
		got = append(got, h)
		msg := commitMessage([]*Change{{Store: h.store, Cluster: "local", Action: Action(h.action), Tenant: "acme",
			Actor: "token:ci", RequestID: h.r}})
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Fixture <fixture@example.com> %d +0000\ndata %d\n%s\n", at.Unix(), len(msg), msg)
		if i == first {
			if first > 0 {
				fmt.Fprintf(w, "from refs/heads/main^0\n")
			} else {
				for p, f := range skeleton {
					fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", p, len(f.Data), f.Data)
				}
			}
		}
		fmt.Fprintf(w, "M 100644 inline counter\ndata %d\n%d\n", len(fmt.Sprint(i))+1, i)
	}
	fmt.Fprintf(w, "done\n")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, out.String())
	}
	return got
}

// removalsIn is what RemovalsSince must answer, worked out from the generated list.
func removalsIn(all []histChange, since time.Time) string {
	var out []string
	for i := len(all) - 1; i >= 0; i-- {
		if h := all[i]; h.action != "update" && !h.at.Before(since) {
			out = append(out, h.action+":"+h.store+":"+h.r)
		}
	}
	return strings.Join(out, " ")
}

func removalsString(rs []Removal) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Action + ":" + r.Store + ":" + r.RequestID
	}
	return strings.Join(out, " ")
}

// The cached, incremental answer is always the one a fresh walk gives, whatever the
// order of the windows asked and as new commits arrive.
func TestRemovalsSinceIncremental(t *testing.T) {
	bare := filepath.Join(t.TempDir(), "fleet.git")
	runGit(t, filepath.Dir(bare), "init", "-q", "--bare", "--initial-branch=main", bare)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	all := writeHistory(t, bare, t0, 0, 300)
	rm := remote{kind: "path", url: bare, bare: bare}
	r := open(t, rm)
	ctx := context.Background()

	ask := func(who *Repo, since time.Time) {
		t.Helper()
		got, err := who.RemovalsSince(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := removalsString(got), removalsIn(all, since); g != w {
			t.Fatalf("RemovalsSince(t0%+v):\n got %s\nwant %s", since.Sub(t0), g, w)
		}
		for _, x := range got {
			if x.Tenant != "acme" || x.Actor != "token:ci" || x.Time.Before(since) || x.Commit == "" || x.Subject == "" {
				t.Fatalf("removal %+v", x)
			}
		}
	}
	for _, s := range []int{250, 100, 280, 0, -10, 299, 300, 150} {
		ask(r, t0.Add(time.Duration(s)*time.Second))
	}
	// New commits arrive (pushed by another writer); the cache takes in only them.
	all = append(all, writeHistory(t, bare, t0.Add(300*time.Second), 300, 45)...)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []int{320, 10, 344, 200} {
		ask(r, t0.Add(time.Duration(s)*time.Second))
	}
	// Commits through this writer count too.
	r2 := open(t, rm, func(o *Options) { o.Now = func() time.Time { return t0.Add(400 * time.Second) } })
	mustOK(t, r2.Submit(ctx, Change{Store: "s-new", Cluster: "local", Dir: change("local", "s-new", ActionCreate, 1, "x").Dir,
		Action: ActionCreate, Files: storeFiles("s-new", 1, true), RequestID: "c-new"}))
	del := change("local", "s-new", ActionDelete, 1, "d-new")
	del.Tenant, del.Actor = "acme", "token:ci"
	mustOK(t, r2.Submit(ctx, del))
	all = append(all, histChange{at: t0.Add(400 * time.Second), action: "update", store: "s-new", r: "c-new"}) // a create: no removal
	all = append(all, histChange{at: t0.Add(400 * time.Second), action: "delete", store: "s-new", r: "d-new"})
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []int{390, 200, 401} {
		ask(r, t0.Add(time.Duration(s)*time.Second))
		ask(r2, t0.Add(time.Duration(s)*time.Second))
	}
	// A fresh clone, with nothing cached, agrees.
	fresh := open(t, rm)
	for _, s := range []int{0, 333, 395} {
		ask(fresh, t0.Add(time.Duration(s)*time.Second))
	}
}

// BenchmarkRemovalsSince measures the mass-deletion guard's check on a 20,000-commit
// line: "cold" walks it all (the first check of a process, or the cost per commit of
// catching up), "warm" is a check with no new commit since the last.
func BenchmarkRemovalsSince(b *testing.B) {
	const n = 20000
	bare := filepath.Join(b.TempDir(), "fleet.git")
	runGit(b, filepath.Dir(bare), "init", "-q", "--bare", "--initial-branch=main", bare)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	writeHistory(b, bare, t0, 0, n)
	runGit(b, bare, "repack", "-adq")
	r := open(b, remote{kind: "path", url: bare, bare: bare})
	ctx := context.Background()
	since := t0.Add(-time.Hour)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			r.removals.mu.Lock()
			r.removals.tip, r.removals.entries, r.removals.deeper = plumbing.ZeroHash, nil, plumbing.ZeroHash
			r.removals.mu.Unlock()
			got, err := r.RemovalsSince(ctx, since)
			if err != nil || len(got) != n/10*3 {
				b.Fatalf("%d removals, %v", len(got), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/commit")
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.RemovalsSince(ctx, since); err != nil {
				b.Fatal(err)
			}
		}
	})
}
