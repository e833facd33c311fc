package gitrepo

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkUnsharedDelete measures, in one run and taking turns, what a delete costs
// the writer (commit + push to a path remote, on-disk clone as gitops-api serve
// keeps it) in a fleet of n stores:
//   - plain: a delete without Change.Unshared, what the lifecycle sends when its
//     index knows another live store of the version (most deletes);
//   - kept: a delete with Unshared whose source another store still names (the
//     writer reads store folders until it finds that one);
//   - removed: the delete of the last store of a version, which looks at every
//     store folder of the cluster and removes the source in the same commit
//     (reading only the folders changed since they were last read).
//
// Each iteration deletes one store of each kind; the stores are created before the
// timer starts. Then the writer is restarted on its clone, as after a deploy, three
// times, each followed by the first removal after that start:
//   - cold: with the warm-up (warmnamed.go) held back, as before it existed: the
//     removal reads every store folder;
//   - first: once the warm-up has ended (the timed deletes follow it);
//   - racing: sent at once, while the warm-up reads.
//
// Run with `go test -run '^$' -bench UnsharedDelete -benchtime 20x ./internal/gitrepo/`.
func BenchmarkUnsharedDelete(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("stores=%d", n), func(b *testing.B) {
			bare := pathFleet(b, n)
			rm := remote{kind: "path", url: bare, bare: bare}
			dir := filepath.Join(b.TempDir(), "clone.git")
			withDir := func(o *Options) { o.Dir = dir }
			r := open(b, rm, withDir)
			ctx := context.Background()
			var setup []Change
			for i := range b.N {
				setup = append(setup,
					onVersion(change("local", fmt.Sprintf("plain-%d", i), ActionCreate, 1, fmt.Sprintf("plain-%d-c", i)), "3.0"),
					onVersion(change("local", fmt.Sprintf("kept-%d", i), ActionCreate, 1, fmt.Sprintf("kept-%d-c", i)), "3.0"),
					onVersion(change("local", fmt.Sprintf("last-%d", i), ActionCreate, 1, fmt.Sprintf("last-%d-c", i)), fmt.Sprintf("4.%d", i)))
			}
			// The version 3.0 is kept live by a store nobody deletes; cold and
			// racer are the last stores of theirs.
			setup = append(setup, onVersion(change("local", "keeper", ActionCreate, 1, "keeper-c"), "3.0"),
				onVersion(change("local", "cold", ActionCreate, 1, "cold-c"), "5.0"),
				onVersion(change("local", "racer", ActionCreate, 1, "racer-c"), "5.1"))
			for start := 0; start < len(setup); start += 100 {
				for _, res := range r.SubmitAll(ctx, setup[start:min(start+100, len(setup))]) {
					mustOK(b, res)
				}
			}
			times := map[string][]time.Duration{}
			run := func(kind string, c Change) Result {
				t0 := time.Now()
				res := mustOK(b, r.Submit(ctx, c))
				times[kind] = append(times[kind], time.Since(t0))
				return res
			}
			removal := func(kind, name, v string) {
				c := change("local", name, ActionDelete, 1, name+"-d")
				c.Unshared = []string{sourcePath(v)}
				if res := run(kind, c); len(res.Unshared) != 1 {
					b.Fatalf("%s removed %v", name, res.Unshared)
				}
			}

			r.Close()
			hold := make(chan struct{})
			testHookWarmChunk = func() { <-hold }
			r = open(b, rm, withDir)
			removal("cold", "cold", "5.0")
			coldReads := r.named.reads.Load()
			close(hold)
			r.Close()
			testHookWarmChunk = nil

			r = open(b, rm, withDir)
			t0 := time.Now()
			<-r.warmed
			warm, warmReads := time.Since(t0), r.named.warmReads.Load()
			b.ResetTimer()
			for i := range b.N {
				run("plain", change("local", fmt.Sprintf("plain-%d", i), ActionDelete, 1, fmt.Sprintf("plain-%d-d", i)))
				removal("removed", fmt.Sprintf("last-%d", i), fmt.Sprintf("4.%d", i))
				kept := change("local", fmt.Sprintf("kept-%d", i), ActionDelete, 1, fmt.Sprintf("kept-%d-d", i))
				kept.Unshared = []string{sourcePath("3.0")}
				if res := run("kept", kept); len(res.Unshared) != 0 {
					b.Fatalf("kept-%d removed %v", i, res.Unshared)
				}
			}
			b.StopTimer()

			r.Close()
			r = open(b, rm, withDir)
			removal("racing", "racer", "5.1")
			racingReads := r.named.reads.Load()

			p50 := func(kind string) time.Duration {
				s := append([]time.Duration(nil), times[kind]...)
				sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
				return s[len(s)/2]
			}
			plain, kept, removed := p50("plain"), p50("kept"), p50("removed")
			cold, first, racing := times["cold"][0], times["removed"][0], times["racing"][0]
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(plain), "plain-ms")
			b.ReportMetric(ms(kept), "kept-ms")
			b.ReportMetric(ms(removed), "removed-ms")
			b.ReportMetric(float64(removed)/float64(plain), "removed/plain")
			b.ReportMetric(ms(cold), "cold-first-ms")
			b.ReportMetric(ms(first), "warm-first-ms")
			b.ReportMetric(ms(racing), "racing-first-ms")
			b.ReportMetric(ms(warm), "warm-up-ms")
			b.Logf("stores=%d p50 over %d deletes each: plain %v, kept (Unshared, another user) %v, removed %v; removed/plain %.2f×, kept/plain %.2f×",
				n+3*b.N+3, b.N, plain, kept, removed, float64(removed)/float64(plain), float64(kept)/float64(plain))
			b.Logf("first removal after a start: cold %v (%.1f× plain, %d folders read), after the warm-up %v (%.1f×; the warm-up took %v, %d folders), during the warm-up %v (%.1f×, %d folders read)",
				cold, float64(cold)/float64(plain), coldReads, first, float64(first)/float64(plain), warm, warmReads,
				racing, float64(racing)/float64(plain), racingReads)
		})
	}
}
