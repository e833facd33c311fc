package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// The quota tests render real store folders and count them with the fleet's own
// rule (store.FolderTenant), as serve wires the writer.
var quotaRenderer = render.Renderer{Options: render.LocalOptions()}

func fleetTenantOf(files []store.File) (string, error) {
	return store.FolderTenant(quotaRenderer, store.DefaultTenant, files)
}

// withTenants wires the writer as serve does with an access configuration, which
// always holds a quota: the tenants are counted in the background after Open.
func withTenants(o *Options) { o.TenantOf, o.TenantQuota = fleetTenantOf, true }

// tenantChange is a create (or, in state retained, the delete) of a rendered store
// of tenant ("" renders a store whose files name none), carrying limit.
func tenantChange(t testing.TB, name, tenant string, state store.State, limit int) Change {
	t.Helper()
	s := store.Store{Name: name, Tenant: tenant, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "a@example.com"}}.WithDefaults("")
	files, err := quotaRenderer.Render(s, state)
	if err != nil {
		t.Fatal(err)
	}
	dir := store.Dir(s.Cluster, s.Name)
	c := Change{Store: name, Cluster: s.Cluster, Dir: dir, Action: ActionCreate, Tenant: tenant,
		Actor: "alice@example.com", RequestID: "req-" + name, StoresPerTenant: limit}
	if state != store.StateActive {
		c.Action = ActionDelete
	}
	for _, f := range files {
		c.Files = append(c.Files, File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
	}
	return c
}

// remoteTenants counts, per tenant, the store folders at the remote's tip (read
// by a fresh clone) the way the fleet's count does, and fails on a folder that
// does not parse: a half-written store.
func remoteTenants(t *testing.T, rm remote) map[string]int {
	t.Helper()
	r := open(t, rm)
	ctx := context.Background()
	refs, err := r.ListStores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ref := range refs {
		_, files, err := r.Store(ctx, ref.Dir)
		if err != nil {
			t.Fatal(err)
		}
		tenant, err := fleetTenantOf(folderStoreFiles(ref.Dir, files))
		if err != nil {
			t.Errorf("store folder %s does not parse: %v", ref.Dir, err)
			continue
		}
		out[tenant]++
	}
	return out
}

// TestQuotaTwoReplicas: two writers on one remote race creates in one tenant, each
// carrying the limit. Neither knows the other's creates in flight, so only the
// check on the tree each commit lands on can hold the limit: exactly limit stores
// are committed, every other create is refused with ErrQuota, and another tenant's
// creates are not held back.
func TestQuotaTwoReplicas(t *testing.T) {
	const limit, each = 5, 8
	rm := newRemote(t, "http")
	a, b := open(t, rm, withTenants), open(t, rm, withTenants)
	// One store of the tenant is there before: it counts.
	mustOK(t, a.Submit(context.Background(), tenantChange(t, "shop-a-old", "shop-a", store.StateActive, 0)))
	type outcome struct {
		name string
		res  Result
	}
	out := make(chan outcome, 2*each+2)
	var wg sync.WaitGroup
	for ri, r := range []*Repo{a, b} {
		for i := range each {
			wg.Go(func() {
				name := fmt.Sprintf("shop-a-%d-%d", ri, i)
				out <- outcome{name, r.Submit(context.Background(), tenantChange(t, name, "shop-a", store.StateActive, limit))}
			})
		}
		wg.Go(func() {
			name := fmt.Sprintf("shop-b-%d", ri)
			out <- outcome{name, r.Submit(context.Background(), tenantChange(t, name, "shop-b", store.StateActive, 1))}
		})
	}
	wg.Wait()
	close(out)
	landed := map[string]int{}
	for o := range out {
		tenant := o.name[:len("shop-a")]
		var qe *QuotaError
		switch {
		case o.res.Err == nil:
			landed[tenant]++
		case errors.As(o.res.Err, &qe):
			if !errors.Is(o.res.Err, ErrQuota) || qe.Tenant != tenant || qe.Limit != map[string]int{"shop-a": limit, "shop-b": 1}[tenant] {
				t.Errorf("%s: refusal %+v does not name its tenant and limit", o.name, qe)
			}
		default:
			t.Errorf("%s: %v, want landed or ErrQuota", o.name, o.res.Err)
		}
	}
	if landed["shop-a"] != limit-1 || landed["shop-b"] != 1 {
		t.Errorf("creates landed per tenant: %v, want shop-a %d (and its store from before), shop-b 1", landed, limit-1)
	}
	if got := remoteTenants(t, rm); got["shop-a"] != limit || got["shop-b"] != 1 || len(got) != 2 {
		t.Errorf("store folders on the remote per tenant: %v, want shop-a %d, shop-b 1", got, limit)
	}
}

// TestQuotaCounts: what the check counts is what store.Counter counts. A deleted
// store counts until purged, a store whose files name no tenant is the default
// tenant's, creates of one commit count each other, and a purge gives the place
// back.
func TestQuotaCounts(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm, withTenants)
	ctx := context.Background()
	mustOK(t, r.Submit(ctx, tenantChange(t, "legacy", "", store.StateActive, 0)))
	mustOK(t, r.Submit(ctx, tenantChange(t, "t-gone", "t", store.StateActive, 0)))
	mustOK(t, r.Submit(ctx, tenantChange(t, "t-gone", "t", store.StateRetained, 0)))

	// The default tenant holds "legacy", which names none.
	mustOK(t, r.Submit(ctx, tenantChange(t, "d1", store.DefaultTenant, store.StateActive, 2)))
	wantErr(t, r.Submit(ctx, tenantChange(t, "d2", store.DefaultTenant, store.StateActive, 2)), ErrQuota)

	// One commit: "t-gone" (deleted, not purged) and two of the three creates fill 3.
	res := r.SubmitAll(ctx, []Change{
		tenantChange(t, "t1", "t", store.StateActive, 3),
		tenantChange(t, "t2", "t", store.StateActive, 3),
		tenantChange(t, "t3", "t", store.StateActive, 3),
	})
	mustOK(t, res[0])
	mustOK(t, res[1])
	wantErr(t, res[2], ErrQuota)
	if res[0].Commit != res[1].Commit {
		t.Errorf("the batch's creates landed in two commits")
	}
	var qe *QuotaError
	if errors.As(res[2].Err, &qe); qe == nil || qe.Stores != 3 || qe.Limit != 3 || qe.Tenant != "t" {
		t.Errorf("refusal %+v, want tenant t holding 3 of 3", qe)
	}

	// A create without a limit is not held back, but counts.
	mustOK(t, r.Submit(ctx, tenantChange(t, "t4", "t", store.StateActive, 0)))
	purge := Change{Store: "t-gone", Cluster: "local", Dir: store.Dir("local", "t-gone"), Action: ActionPurge, Actor: "alice@example.com"}
	mustOK(t, r.Submit(ctx, purge))
	// t1, t2 and t4 are left.
	wantErr(t, r.Submit(ctx, tenantChange(t, "t5", "t", store.StateActive, 3)), ErrQuota)
	mustOK(t, r.Submit(ctx, tenantChange(t, "t5", "t", store.StateActive, 4)))

	// The domain's answer is the access layer's.
	_, err := Fleet{R: r}.Submit(ctx, store.Change{Store: "t6", Cluster: "local", Action: store.ActionCreate,
		Dir: store.Dir("local", "t6"), Files: renderFiles(t, "t6", "t"), StoresPerTenant: 4, Tenant: "t"})
	want := store.QuotaError("t", 4, 4)
	var se *store.Error
	if !errors.As(err, &se) || se.Code != store.EINVALID || len(se.Fields) != 1 || se.Fields[0] != want.Fields[0] {
		t.Errorf("Fleet.Submit over quota: %v, want %v", err, want)
	}
}

func renderFiles(t *testing.T, name, tenant string) []store.File {
	t.Helper()
	s := store.Store{Name: name, Tenant: tenant, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "a@example.com"}}.WithDefaults("")
	files, err := quotaRenderer.Render(s, store.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestQuotaReadsOnlyNewFolders: after the first count, the check reads no store
// folder the writer built itself and only the new folder of another writer's
// create: it never walks the fleet per create.
func TestQuotaReadsOnlyNewFolders(t *testing.T) {
	rm := newRemote(t, "path")
	a, b := open(t, rm, withTenants), open(t, rm, withTenants)
	ctx := context.Background()
	for i := range 20 {
		mustOK(t, b.Submit(ctx, tenantChange(t, fmt.Sprintf("pre-%d", i), "t", store.StateActive, 0)))
	}
	reads := func() int {
		a.tenants.mu.Lock()
		defer a.tenants.mu.Unlock()
		return a.tenants.reads
	}
	// The first count reads what is there.
	mustOK(t, a.Submit(ctx, tenantChange(t, "a-0", "t", store.StateActive, 100)))
	if n := reads(); n != 20 {
		t.Fatalf("first count read %d folders, want the 20 there", n)
	}
	for i := 1; i <= 5; i++ {
		mustOK(t, a.Submit(ctx, tenantChange(t, fmt.Sprintf("a-%d", i), "t", store.StateActive, 100)))
	}
	if n := reads(); n != 20 {
		t.Errorf("the writer's own creates were read back: %d reads, want still 20", n)
	}
	mustOK(t, b.Submit(ctx, tenantChange(t, "b-new", "t", store.StateActive, 0)))
	// a's next push loses the race, fetches b's commit, and counts it.
	mustOK(t, a.Submit(ctx, tenantChange(t, "a-6", "t", store.StateActive, 100)))
	if n := reads(); n != 21 {
		t.Errorf("after another writer's create: %d reads, want 21 (its one new folder)", n)
	}
}

// BenchmarkQuotaThroughput: what the commit-time quota check costs. 100 clients
// create rendered stores into a 10,000-store fleet (path remote): on one writer
// every create carries its tenant's limit (counted), on another, over its own copy
// of the fleet, none does (nothing counted, as before the check). Rounds of 500
// creates take turns between the two, so the shared machine's load weighs on both
// alike; stores/s median of each and their ratio. The first count after Open,
// which reads every folder once, is reported apart.
func BenchmarkQuotaThroughput(b *testing.B) {
	const clients, perRound, rounds = 100, 500, 6
	ctx := context.Background()
	repos := map[string]*Repo{}
	for _, mode := range []string{"off", "on"} {
		r, err := Open(ctx, Options{URL: pathFleet(b, 10000), TenantOf: fleetTenantOf, TenantQuota: true})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		repos[mode] = r
	}
	changes := map[string][]Change{}
	for _, mode := range []string{"off", "on"} {
		limit := 0
		if mode == "on" {
			limit = 1 << 30
		}
		for i := range rounds * perRound {
			changes[mode] = append(changes[mode], tenantChange(b, fmt.Sprintf("qb-%s-%d", mode, i), "t", store.StateActive, limit))
		}
	}
	b.ResetTimer()
	t0 := time.Now()
	mustOK(b, repos["on"].Submit(ctx, tenantChange(b, "qb-cold", "t", store.StateActive, 1<<30)))
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "cold-count-ms")
	mustOK(b, repos["off"].Submit(ctx, tenantChange(b, "qb-cold", "t", store.StateActive, 0)))
	rates := map[string][]float64{}
	for round := range rounds {
		for _, mode := range []string{"off", "on"} {
			batch := changes[mode][round*perRound : (round+1)*perRound]
			var next atomic.Int64
			var wg sync.WaitGroup
			t0 := time.Now()
			for range clients {
				wg.Go(func() {
					for k := next.Add(1) - 1; k < int64(len(batch)); k = next.Add(1) - 1 {
						if res := repos[mode].Submit(ctx, batch[k]); res.Err != nil {
							b.Error(res.Err)
							return
						}
					}
				})
			}
			wg.Wait()
			rates[mode] = append(rates[mode], float64(perRound)/time.Since(t0).Seconds())
		}
	}
	b.StopTimer()
	off, on := median(rates["off"]), median(rates["on"])
	repos["on"].tenants.mu.Lock()
	reads := repos["on"].tenants.reads
	repos["on"].tenants.mu.Unlock()
	b.Logf("stores/s without a limit %.0f (rounds %.0f), with %.0f (rounds %.0f): ratio %.2f; %d folders read", off, rates["off"], on, rates["on"], on/off, reads)
	b.ReportMetric(off, "off-stores/s")
	b.ReportMetric(on, "on-stores/s")
	b.ReportMetric(on/off, "on/off")
}
