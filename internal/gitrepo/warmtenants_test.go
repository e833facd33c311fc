package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// tenantFleet creates n stores of tenant "t" through a writer on the clone in dir,
// then closes it: the fleet a restart finds.
func tenantFleet(t *testing.T, rm remote, dir string, n int) {
	t.Helper()
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	var creates []Change
	for i := range n {
		creates = append(creates, tenantChange(t, fmt.Sprintf("pre-%d", i), "t", store.StateActive, 0))
	}
	for start := 0; start < len(creates); start += 100 {
		for _, res := range r.SubmitAll(context.Background(), creates[start:min(start+100, len(creates))]) {
			mustOK(t, res)
		}
	}
	r.Close()
}

// tenantReads is how many store folders the writer's counts and the warm-up have
// read.
func tenantReads(r *Repo) (writer, warm int) {
	r.tenants.mu.Lock()
	defer r.tenants.mu.Unlock()
	return r.tenants.reads, r.tenants.warmReads
}

// quotaStores is the count a refusal names, -1 if res is not one.
func quotaStores(res Result) int {
	var qe *QuotaError
	if !errors.As(res.Err, &qe) {
		return -1
	}
	return qe.Stores
}

// After a start the tenants are counted in the background: the first quota check
// reads no store folder. The warm count is of the tree the warm-up started on, not
// an answer for a later one: a check on the newer tip another writer pushed counts
// its new folders (and only those) and refuses at the limit they reach.
func TestQuotaWarmAfterOpen(t *testing.T) {
	const n = 60
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	tenantFleet(t, rm, dir, n)

	r := open(t, rm, withTenants, func(o *Options) { o.Dir = dir })
	waitWarm(t, r)
	if w, warm := tenantReads(r); w != 0 || warm != n {
		t.Fatalf("after the warm-up: the writer read %d folders, the warm-up %d; want 0 and all %d", w, warm, n)
	}
	ctx := context.Background()
	other := open(t, rm, withTenants)
	mustOK(t, other.Submit(ctx, tenantChange(t, "o-1", "t", store.StateActive, 0)))
	mustOK(t, other.Submit(ctx, tenantChange(t, "o-2", "t", store.StateActive, 0)))

	// r's tip holds n stores, the remote n+2: the check where the commit lands
	// refuses at n+2.
	res := r.Submit(ctx, tenantChange(t, "r-1", "t", store.StateActive, n+2))
	if got := quotaStores(res); got != n+2 {
		t.Fatalf("a create at the limit of %d after another writer's 2: %v, want a refusal counting %d", n+2, res.Err, n+2)
	}
	if w, _ := tenantReads(r); w != 2 {
		t.Fatalf("the first check after the warm-up read %d folders, want only the other writer's 2", w)
	}
	mustOK(t, r.Submit(ctx, tenantChange(t, "r-2", "t", store.StateActive, n+3)))
	if res := r.Submit(ctx, tenantChange(t, "r-3", "t", store.StateActive, n+3)); quotaStores(res) != n+3 {
		t.Fatalf("a create over the limit of %d: %v, want a refusal counting %d", n+3, res.Err, n+3)
	}
	if w, _ := tenantReads(r); w != 2 {
		t.Fatalf("the writer's own create was read back: %d reads, want still 2", w)
	}
}

// Without a quota configured (Options.TenantQuota unset, as serve without an access
// configuration) Open counts no tenant: the warm-up reads no folder for it and goes
// straight to the shared-file names, which it reads as before. A create that carries
// a limit all the same is still checked, counting the folders on the writer.
func TestQuotaNoWarmUpWithoutQuota(t *testing.T) {
	const n = 40
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	warmFleet(t, rm, dir, n)

	r := open(t, rm, func(o *Options) { o.Dir = dir; o.TenantOf = fleetTenantOf })
	waitWarm(t, r)
	if w, warm := tenantReads(r); w != 0 || warm != 0 {
		t.Fatalf("after the warm-up without a quota: the writer read %d folders for tenants, the warm-up %d; want 0 and 0", w, warm)
	}
	r.tenants.mu.Lock()
	kept := r.tenants.total != nil
	r.tenants.mu.Unlock()
	if kept {
		t.Fatal("a tenant count was kept without a quota")
	}
	if got := r.named.warmReads.Load(); got != n+1 {
		t.Fatalf("the shared-file warm-up read %d store folders, want all %d", got, n+1)
	}

	ctx := context.Background()
	mustOK(t, r.Submit(ctx, tenantChange(t, "q-1", "t", store.StateActive, 1)))
	if res := r.Submit(ctx, tenantChange(t, "q-2", "t", store.StateActive, 1)); quotaStores(res) != 1 {
		t.Fatalf("a create over a limit of 1 without a configured quota: %v, want a refusal counting 1", res.Err)
	}
	if w, _ := tenantReads(r); w != n+1 {
		t.Fatalf("the first check without a warm-up read %d folders, want every one of the %d", w, n+1)
	}
}

// stepWarmUp holds each chunk of the warm-up until the test lets it go (one value on
// step each, or all by closing it), and reports each chunk on entered before it.
func stepWarmUp(t *testing.T) (entered <-chan struct{}, step chan<- struct{}) {
	in, st := make(chan struct{}, 1<<16), make(chan struct{})
	testHookWarmChunk = func() {
		in <- struct{}{}
		<-st
	}
	t.Cleanup(func() { testHookWarmChunk = nil })
	return in, st
}

// recv takes one value from c, failing the test if none comes within a minute (a
// warm-up that never reached a chunk).
func recv(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatal("the warm-up did not reach its next chunk within a minute")
	}
}

// A check that comes while the warm-up runs does not wait for it: it takes what the
// warm-up has read so far, reads the rest itself, and answers as a cold count would.
// The warm-up then ends without keeping its count over the writer's.
func TestQuotaCountDuringWarmUp(t *testing.T) {
	const n, chunks = 60, 10
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	tenantFleet(t, rm, dir, n)
	entered, step := stepWarmUp(t)

	r := open(t, rm, withTenants, func(o *Options) { o.Dir = dir })
	released := false
	release := func() {
		if !released {
			released = true
			close(step)
		}
	}
	defer release()
	recv(t, entered)
	for range chunks {
		step <- struct{}{}
		recv(t, entered) // the chunk before is read and kept
	}
	_, warmBefore := tenantReads(r)
	if warmBefore < chunks || warmBefore >= n {
		t.Fatalf("the warm-up read %d folders in %d chunks of %d", warmBefore, chunks, n)
	}
	ctx := context.Background()
	mustOK(t, r.Submit(ctx, tenantChange(t, "r-1", "t", store.StateActive, n+1)))
	if res := r.Submit(ctx, tenantChange(t, "r-2", "t", store.StateActive, n+1)); quotaStores(res) != n+1 {
		t.Fatalf("a create over the limit of %d during the warm-up: %v, want a refusal counting %d", n+1, res.Err, n+1)
	}
	if w, _ := tenantReads(r); w != n-warmBefore {
		t.Fatalf("the check during the warm-up read %d folders, want the %d the warm-up had not", w, n-warmBefore)
	}
	release()
	waitWarm(t, r)
	if _, warm := tenantReads(r); warm != warmBefore {
		t.Fatalf("the warm-up read on after the writer counted: %d folders, then %d", warmBefore, warm)
	}
	r.tenants.mu.Lock()
	left := len(r.tenants.warm)
	r.tenants.mu.Unlock()
	if left != 0 {
		t.Fatalf("the warm-up left %d answers behind", left)
	}
	if res := r.Submit(ctx, tenantChange(t, "r-3", "t", store.StateActive, n+1)); quotaStores(res) != n+1 {
		t.Fatalf("after the warm-up ended: %v, want a refusal counting %d", res.Err, n+1)
	}
}

// stepper lets a warm-up held by stepWarmUp read up to max chunks, one after the
// other, until stop is called.
func stepper(step chan<- struct{}, max int) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for range max {
			select {
			case step <- struct{}{}:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// closeHeld closes r while its warm-up is held at a chunk by stepWarmUp: it lets
// the chunk go once Close has begun, and fails if Close does not then return.
func closeHeld(t *testing.T, r *Repo, step chan<- struct{}) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	recv(t, r.closing)
	close(step)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not return within a minute of the warm-up's next chunk")
	}
	select {
	case <-r.warmed:
	default:
		t.Fatal("Close returned before the warm-up ended")
	}
	for deadline := time.Now().Add(time.Second); warmGoroutine() != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a warm-up goroutine outlived Close:\n%s", warmGoroutine())
		}
	}
}

// The warm-up and writes run at once (run with -race): creates without a limit move
// the tip under it, and a Close while it runs stops it and returns; creates with a
// limit race it for the first count and land exactly up to the limit. A restart on
// the clone then warms at the new tip.
func TestQuotaWarmUpRacesWrites(t *testing.T) {
	const n, writers, each = 80, 4, 5
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	tenantFleet(t, rm, dir, n)
	withDir := func(o *Options) { o.Dir = dir }
	ctx := context.Background()
	submitAll := func(r *Repo, prefix string, limit int) (landed, refused int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					res := r.Submit(ctx, tenantChange(t, fmt.Sprintf("%s-%d-%d", prefix, g, i), "t", store.StateActive, limit))
					mu.Lock()
					switch {
					case res.Err == nil:
						landed++
					case errors.Is(res.Err, ErrQuota):
						refused++
					default:
						t.Errorf("create: %v", res.Err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return landed, refused
	}

	// At most a quarter of the folders' chunks go through meanwhile, so the
	// warm-up is still under way when Close comes.
	entered, step := stepWarmUp(t)
	r := open(t, rm, withTenants, withDir)
	recv(t, entered)
	stop := stepper(step, n/4)
	if landed, _ := submitAll(r, "plain", 0); landed != writers*each {
		t.Fatalf("%d of %d creates without a limit landed", landed, writers*each)
	}
	stop()
	closeHeld(t, r, step)
	if _, warm := tenantReads(r); warm >= n {
		t.Fatalf("the warm-up read %d of %d folders: Close did not stop it", warm, n)
	}

	have := n + writers*each
	entered, step = stepWarmUp(t)
	r = open(t, rm, withTenants, withDir)
	recv(t, entered)
	stop = stepper(step, 1<<30)
	landed, refused := submitAll(r, "capped", have+7)
	stop()
	if landed != 7 || refused != writers*each-7 {
		t.Fatalf("with %d stores and a limit of %d: %d creates landed, %d refused; want 7 and %d", have, have+7, landed, refused, writers*each-7)
	}
	closeHeld(t, r, step)
	testHookWarmChunk = nil

	// A restart warms at the tip it finds: the first check reads nothing.
	r = open(t, rm, withTenants, withDir)
	waitWarm(t, r)
	if res := r.Submit(ctx, tenantChange(t, "last", "t", store.StateActive, have+7)); quotaStores(res) != have+7 {
		t.Fatalf("after a restart at the limit: %v, want a refusal counting %d", res.Err, have+7)
	}
	if w, warm := tenantReads(r); w != 0 || warm != have+7 {
		t.Fatalf("after a restart: the writer read %d folders, the warm-up %d; want 0 and %d", w, warm, have+7)
	}
	if got := remoteTenants(t, rm); got["t"] != have+7 || len(got) != 1 {
		t.Fatalf("store folders on the remote per tenant: %v, want t %d", got, have+7)
	}
}

// A purge and a create of one tenant in one commit: the purged folder gives its
// place to the create applied after it, whether the folder was in the tree the
// batch builds on or created earlier in the same batch. A create applied before the
// purge was checked with the folder still there.
func TestQuotaPurgeAndCreateInOneBatch(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm, withTenants)
	ctx := context.Background()
	mustOK(t, r.Submit(ctx, tenantChange(t, "sa", "t", store.StateActive, 0)))
	mustOK(t, r.Submit(ctx, tenantChange(t, "sb", "t", store.StateActive, 0)))
	purge := func(name, id string) Change {
		return Change{Store: name, Cluster: "local", Dir: store.Dir("local", name), Action: ActionPurge,
			Actor: "alice@example.com", RequestID: id}
	}

	// t holds 2 of 2: a purge of sa, then a create, in one commit.
	res := r.SubmitAll(ctx, []Change{purge("sa", "purge-a"), tenantChange(t, "sc", "t", store.StateActive, 2)})
	mustOK(t, res[0])
	mustOK(t, res[1])
	if res[0].Commit != res[1].Commit {
		t.Fatal("the purge and the create landed in two commits")
	}

	// t holds sb and sc, 2 of 3: a create fills it, its purge in the same commit
	// frees it again, and the next create takes the place.
	res = r.SubmitAll(ctx, []Change{
		tenantChange(t, "sd", "t", store.StateActive, 3),
		purge("sd", "purge-d"),
		tenantChange(t, "se", "t", store.StateActive, 3),
		tenantChange(t, "sf", "t", store.StateActive, 3),
	})
	mustOK(t, res[0])
	mustOK(t, res[1])
	mustOK(t, res[2])
	if got := quotaStores(res[3]); got != 3 {
		t.Fatalf("the create past the limit in the batch: %v, want a refusal counting 3", res[3].Err)
	}

	// The order of the batch is the order of the checks: a create before the purge
	// finds the tenant full.
	res = r.SubmitAll(ctx, []Change{tenantChange(t, "sg", "t", store.StateActive, 3), purge("sb", "purge-b")})
	if got := quotaStores(res[0]); got != 3 {
		t.Fatalf("a create before the purge: %v, want a refusal counting 3", res[0].Err)
	}
	mustOK(t, res[1])
	if got := remoteTenants(t, rm); got["t"] != 2 || len(got) != 1 {
		t.Fatalf("store folders on the remote per tenant: %v, want t 2 (sc and se)", got)
	}
}

// BenchmarkQuotaFirstCount: the first create near its tenant's limit (carrying one)
// after a start, at 10,000 stores (path remote, on-disk clone as serve keeps it).
// Each iteration restarts the writer on its clone three times, in turns, so the
// shared machine's load weighs on each alike:
//   - cold: the tenants' warm-up held back, as before it existed: the create counts
//     every store folder on the writer;
//   - warm: once the warm-up has ended;
//   - plain: a create without a limit once the warm-up has ended, which counts
//     nothing: the floor.
//
// It reports the medians, warm/cold and warm/plain, and how long the warm-up took
// in the background after Open returned (until its count was kept). Run with
// `go test -run '^$' -bench QuotaFirstCount -benchtime 5x ./internal/gitrepo/`.
func BenchmarkQuotaFirstCount(b *testing.B) {
	const n = 10000
	bare := pathFleet(b, n)
	rm := remote{kind: "path", url: bare, bare: bare}
	dir := filepath.Join(b.TempDir(), "clone.git")
	opts := func(o *Options) { o.Dir = dir; withTenants(o) }
	open(b, rm, opts).Close()
	ctx := context.Background()
	times := map[string][]time.Duration{}
	reads := map[string]int{}
	var warmUps []time.Duration
	modes := []string{"cold", "warm", "plain"}
	b.ResetTimer()
	for i := range b.N {
		for _, mode := range modes {
			hold := make(chan struct{})
			if mode == "cold" {
				testHookWarmChunk = func() { <-hold }
			}
			r := open(b, rm, opts)
			t0 := time.Now()
			if mode != "cold" {
				for kept := false; !kept; time.Sleep(time.Millisecond) {
					r.tenants.mu.Lock()
					kept = r.tenants.total != nil
					r.tenants.mu.Unlock()
				}
				if mode == "warm" {
					warmUps = append(warmUps, time.Since(t0))
				}
				<-r.warmed
			}
			limit := 1 << 30
			if mode == "plain" {
				limit = 0
			}
			c := tenantChange(b, fmt.Sprintf("first-%s-%d", mode, i), "t", store.StateActive, limit)
			t0 = time.Now()
			mustOK(b, r.Submit(ctx, c))
			times[mode] = append(times[mode], time.Since(t0))
			w, _ := tenantReads(r)
			reads[mode] += w
			close(hold)
			r.Close()
			testHookWarmChunk = nil
		}
	}
	b.StopTimer()
	med := func(s []time.Duration) time.Duration {
		s = append([]time.Duration(nil), s...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	cold, warm, plain := med(times["cold"]), med(times["warm"]), med(times["plain"])
	b.ReportMetric(ms(cold), "cold-ms")
	b.ReportMetric(ms(warm), "warm-ms")
	b.ReportMetric(ms(plain), "plain-ms")
	b.ReportMetric(float64(warm)/float64(cold), "warm/cold")
	b.ReportMetric(float64(warm)/float64(plain), "warm/plain")
	b.ReportMetric(ms(med(warmUps)), "warm-up-ms")
	b.Logf("first create near the limit after a start, %d stores, median of %d: cold %v (%d folders read), warm %v (%d read), plain %v; warm/cold %.3f, warm/plain %.2f; the warm-up took %v (runs cold %v, warm %v, plain %v, warm-up %v)",
		n, b.N, cold, reads["cold"]/b.N, warm, reads["warm"]/b.N, plain, float64(warm)/float64(cold), float64(warm)/float64(plain), med(warmUps),
		times["cold"], times["warm"], times["plain"], warmUps)
}

// BenchmarkWarmUpWithoutQuota: how long after Open the shared-file names are warm
// (the warm-ups have ended), at 10,000 stores with one shared file (path remote,
// on-disk clone as serve keeps it). Each iteration restarts the writer on its clone
// twice, in turns, with TenantOf set as serve sets it:
//   - quota: Options.TenantQuota set, the tenants counted first, as every start did
//     before TenantQuota existed, quota or not;
//   - none: no quota configured: the names' warm-up starts at once.
//
// It reports the medians and none/quota. Run with
// `go test -run '^$' -bench WarmUpWithoutQuota -benchtime 3x ./internal/gitrepo/`.
func BenchmarkWarmUpWithoutQuota(b *testing.B) {
	const n = 10000
	bare := pathFleet(b, n)
	rm := remote{kind: "path", url: bare, bare: bare}
	dir := filepath.Join(b.TempDir(), "clone.git")
	r := open(b, rm, func(o *Options) { o.Dir = dir })
	mustOK(b, r.Submit(context.Background(), onVersion(change("local", "shared", ActionCreate, 1, "shared-c"), "1.0")))
	r.Close()
	times := map[string][]time.Duration{}
	reads := map[string]int{}
	modes := []string{"quota", "none"}
	b.ResetTimer()
	for range b.N {
		for _, mode := range modes {
			r := open(b, rm, func(o *Options) {
				o.Dir, o.TenantOf, o.TenantQuota = dir, fleetTenantOf, mode == "quota"
			})
			t0 := time.Now()
			<-r.warmed
			times[mode] = append(times[mode], time.Since(t0))
			_, warm := tenantReads(r)
			reads[mode] += warm + int(r.named.warmReads.Load())
			r.Close()
		}
	}
	b.StopTimer()
	med := func(s []time.Duration) time.Duration {
		s = append([]time.Duration(nil), s...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	quota, none := med(times["quota"]), med(times["none"])
	b.ReportMetric(float64(quota.Microseconds())/1000, "quota-ms")
	b.ReportMetric(float64(none.Microseconds())/1000, "none-ms")
	b.ReportMetric(float64(none)/float64(quota), "none/quota")
	b.Logf("names warm after Open, %d stores, median of %d: with the tenants counted first %v (%d folders read), without a quota %v (%d read); none/quota %.3f (runs quota %v, none %v)",
		n, b.N, quota, reads["quota"]/b.N, none, reads["none"]/b.N, float64(none)/float64(quota), times["quota"], times["none"])
}
