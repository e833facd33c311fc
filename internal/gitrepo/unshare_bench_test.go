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
//     store folder of the cluster and removes the source in the same commit (the
//     first reads every folder; later ones only the folders changed since).
//
// Each iteration deletes one store of each kind; the stores are created before the
// timer starts, and the writer is then restarted on its clone, as after a deploy, so
// the first removal is the first after a start. Run with
// `go test -run '^$' -bench UnsharedDelete -benchtime 20x ./internal/gitrepo/`.
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
			// The version 3.0 is kept live by a store nobody deletes.
			setup = append(setup, onVersion(change("local", "keeper", ActionCreate, 1, "keeper-c"), "3.0"))
			for start := 0; start < len(setup); start += 100 {
				for _, res := range r.SubmitAll(ctx, setup[start:min(start+100, len(setup))]) {
					mustOK(b, res)
				}
			}
			r.Close()
			r = open(b, rm, withDir)
			times := map[string][]time.Duration{}
			run := func(kind string, c Change) Result {
				t0 := time.Now()
				res := mustOK(b, r.Submit(ctx, c))
				times[kind] = append(times[kind], time.Since(t0))
				return res
			}
			b.ResetTimer()
			for i := range b.N {
				run("plain", change("local", fmt.Sprintf("plain-%d", i), ActionDelete, 1, fmt.Sprintf("plain-%d-d", i)))
				last := change("local", fmt.Sprintf("last-%d", i), ActionDelete, 1, fmt.Sprintf("last-%d-d", i))
				last.Unshared = []string{sourcePath(fmt.Sprintf("4.%d", i))}
				if res := run("removed", last); len(res.Unshared) != 1 {
					b.Fatalf("last-%d removed %v", i, res.Unshared)
				}
				kept := change("local", fmt.Sprintf("kept-%d", i), ActionDelete, 1, fmt.Sprintf("kept-%d-d", i))
				kept.Unshared = []string{sourcePath("3.0")}
				if res := run("kept", kept); len(res.Unshared) != 0 {
					b.Fatalf("kept-%d removed %v", i, res.Unshared)
				}
			}
			b.StopTimer()
			p50 := func(kind string) time.Duration {
				s := append([]time.Duration(nil), times[kind]...)
				sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
				return s[len(s)/2]
			}
			plain, kept, removed := p50("plain"), p50("kept"), p50("removed")
			// The first removal after the start reads every store folder; the later
			// ones read only the folders that changed since (namedCache).
			cold := times["removed"][0]
			b.ReportMetric(float64(cold.Microseconds())/1000, "first-removed-ms")
			b.ReportMetric(float64(plain.Microseconds())/1000, "plain-ms")
			b.ReportMetric(float64(kept.Microseconds())/1000, "kept-ms")
			b.ReportMetric(float64(removed.Microseconds())/1000, "removed-ms")
			b.ReportMetric(float64(removed)/float64(plain), "removed/plain")
			b.Logf("stores=%d p50 over %d deletes each: plain %v, kept (Unshared, another user) %v, removed %v (the first %v); removed/plain %.2f×, kept/plain %.2f×, first removed/plain %.1f×",
				n+3*b.N+1, b.N, plain, kept, removed, cold, float64(removed)/float64(plain), float64(kept)/float64(plain), float64(cold)/float64(plain))
		})
	}
}
