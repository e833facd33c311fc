package fleet_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// fleetRemote is a seeded bare fleet repository served by a real git server on
// loopback.
type fleetRemote struct {
	url, bare string
}

func newFleetRemote(t *testing.T) fleetRemote {
	t.Helper()
	srv, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bare, err := srv.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	skel := fstest.MapFS{"README.md": {Data: []byte("# Fleet\n")}, "stores/local/.keep": {Data: []byte("")}}
	if _, err := gitrepo.Seed(context.Background(), bare, "main", skel, gitrepo.Signature{}); err != nil {
		t.Fatal(err)
	}
	return fleetRemote{url: srv.URL() + "/fleet.git", bare: bare}
}

// clock is the writer's clock, set by the test, so that commit times fall where
// the test needs them without waiting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// replica is one gitops-api's view of the fleet: its own clone and lifecycle.
type replica struct {
	repo *gitrepo.Repo
	svc  *fleet.Service
}

func openReplica(t *testing.T, rm fleetRemote, clk *clock, mod ...func(*fleet.Config)) replica {
	t.Helper()
	ctx := context.Background()
	o := gitrepo.Options{URL: rm.url, Author: gitrepo.Signature{Name: "Storefleet Test", Email: "writer@example.com"}}
	if clk != nil {
		o.Now = clk.Now
	}
	repo, err := gitrepo.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	cfg := fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: renderer}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := fleet.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return replica{repo: repo, svc: svc}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Operator", "GIT_AUTHOR_EMAIL=op@example.com",
		"GIT_COMMITTER_NAME=Operator", "GIT_COMMITTER_EMAIL=op@example.com", "GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// pushOldStore commits, with the git CLI, a store folder as gitops-api wrote it
// before tenants: no tenant label in its files, no Tenant trailer in its commit.
func pushOldStore(t *testing.T, rm fleetRemote, s store.Store, reqID string) {
	t.Helper()
	s = s.WithDefaults("")
	if s.Tenant != "" {
		t.Fatal("an old store has no tenant")
	}
	files, err := renderer.Render(s, store.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	git(t, "", "clone", "-q", rm.bare, work)
	for _, f := range files {
		if strings.Contains(string(f.Content), render.LabelStoreTenant) {
			t.Fatal("the old store's files carry a tenant")
		}
		p := filepath.Join(work, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "create store "+s.Name+" in local\n\nStore: "+s.Name+
		"\nAction: create\nCluster: local\nActor: alice@example.com\nRequest-Id: "+reqID)
	git(t, work, "push", "-q", "origin", "HEAD:main")
}

func remoteHead(t *testing.T, rm fleetRemote) string {
	return git(t, rm.bare, "rev-parse", "refs/heads/main")
}

// A store pushed before tenants belongs to the configured default tenant on every
// read; its next change writes that tenant into its files and trailers, and its
// tenant cannot change.
func TestDefaultTenantForOldStores(t *testing.T) {
	rm := newFleetRemote(t)
	pushOldStore(t, rm, shop("old-shop", ""), "old-req-1")
	r := openReplica(t, rm, nil, func(c *fleet.Config) { c.DefaultTenant = "legacy" })
	ctx := context.Background()

	v, err := r.svc.Get(ctx, "old-shop")
	if err != nil || v.Store.Tenant != "legacy" {
		t.Fatalf("Get: tenant %q, %v", v.Store.Tenant, err)
	}
	for _, f := range []store.Filter{{Tenant: "legacy"}, {Tenants: []string{"legacy"}}, {Tenants: []string{store.AllTenants}}, {}} {
		if got := listNames(t, r.svc, f); got != "old-shop" {
			t.Errorf("List %+v = %q, want old-shop", f, got)
		}
	}
	for _, f := range []store.Filter{{Tenant: store.DefaultTenant}, {Tenants: []string{"acme"}}, {Tenants: []string{}}} {
		if got := listNames(t, r.svc, f); got != "" {
			t.Errorf("List %+v = %q, want nothing", f, got)
		}
	}
	h, err := r.svc.History(ctx, "old-shop")
	if err != nil || len(h) != 1 || h[0].Tenant != "legacy" || h[0].RequestID != "old-req-1" {
		t.Fatalf("History: %+v, %v", h, err)
	}
	if n, err := r.svc.Stores(ctx, "legacy"); err != nil || n != 1 {
		t.Fatalf("Stores(legacy) = %d, %v", n, err)
	}

	// Moving it to another tenant is refused, and nothing is committed.
	head := remoteHead(t, rm)
	_, err = r.svc.Update(ctx, "old-shop", func(s store.Store) (store.Store, error) {
		s.Tenant = "acme"
		return s, nil
	}, meta())
	if store.ErrorCode(err) != store.EINVALID || fieldRule(err, "tenant") != "immutable" {
		t.Fatalf("tenant change: %v", err)
	}
	if got := remoteHead(t, rm); got != head {
		t.Fatalf("a refused tenant change was committed: %s -> %s", head, got)
	}

	// The next change makes the default explicit.
	m := meta()
	m.Actor, m.OnBehalfOf = "https://idp.example.com#248289761001", "bob@example.com"
	out, err := r.svc.Update(ctx, "old-shop", func(s store.Store) (store.Store, error) {
		s.Settings.Title = "Renamed"
		return s, nil
	}, m)
	if err != nil || out.State != store.RequestCommitted {
		t.Fatalf("update: %+v %v", out, err)
	}
	dir := store.Dir("local", "old-shop")
	if ns := git(t, rm.bare, "show", "main:"+dir+"/namespace.yaml"); !strings.Contains(ns, render.LabelStoreTenant+": legacy") {
		t.Fatalf("namespace.yaml after the update lacks the tenant:\n%s", ns)
	}
	trailers := git(t, rm.bare, "log", "-1", "--format=%(trailers:key=Tenant,key=Actor,key=On-Behalf-Of)", "main")
	for _, want := range []string{"Tenant: legacy", "Actor: https://idp.example.com#248289761001", "On-Behalf-Of: bob@example.com"} {
		if !strings.Contains(trailers, want) {
			t.Errorf("update commit's trailers lack %q:\n%s", want, trailers)
		}
	}
	// A replica configured with another default now reads the tenant from the files.
	other := openReplica(t, rm, nil, func(c *fleet.Config) { c.DefaultTenant = "elsewhere" })
	if v, err := other.svc.Get(ctx, "old-shop"); err != nil || v.Store.Tenant != "legacy" {
		t.Fatalf("after the update, another replica reads tenant %q (%v)", v.Store.Tenant, err)
	}
	h, err = other.svc.History(ctx, "old-shop")
	if err != nil || len(h) != 2 || h[0].Tenant != "legacy" || h[1].Tenant != "legacy" || h[0].OnBehalfOf != "bob@example.com" {
		t.Fatalf("History: %+v, %v", h, err)
	}
}

func listNames(t *testing.T, svc *fleet.Service, f store.Filter) string {
	t.Helper()
	var names []string
	cont := ""
	for {
		page, next, err := svc.List(context.Background(), f, 2, cont)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			names = append(names, v.Store.Name)
		}
		if next == "" {
			return strings.Join(names, " ")
		}
		cont = next
	}
}

func TestCreateTenant(t *testing.T) {
	rm := newFleetRemote(t)
	r := openReplica(t, rm, nil)
	ctx := context.Background()

	if _, err := r.svc.Create(ctx, shop("no-tenant", ""), meta()); err != nil {
		t.Fatal(err)
	}
	s := shop("acme-shop", "")
	s.Tenant = "acme"
	m := meta()
	m.Actor, m.OnBehalfOf = "system:serviceaccount:ci:deployer", "carol@example.com"
	if _, err := r.svc.Create(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"no-tenant": store.DefaultTenant, "acme-shop": "acme"} {
		v, err := r.svc.Get(ctx, name)
		if err != nil || v.Store.Tenant != want {
			t.Errorf("%s: tenant %q (%v), want %s", name, v.Store.Tenant, err, want)
		}
		if ns := git(t, rm.bare, "show", "main:"+store.Dir("local", name)+"/namespace.yaml"); !strings.Contains(ns, render.LabelStoreTenant+": "+want) {
			t.Errorf("%s: namespace.yaml lacks tenant %s", name, want)
		}
	}
	msg := git(t, rm.bare, "log", "-1", "--format=%B", "main")
	for _, want := range []string{"\nTenant: acme\n", "\nActor: system:serviceaccount:ci:deployer\n", "\nOn-Behalf-Of: carol@example.com\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("create commit lacks %q:\n%s", want, msg)
		}
	}

	head := remoteHead(t, rm)
	bad := shop("bad-tenant", "")
	bad.Tenant = "Acme Corp"
	if _, err := r.svc.Create(ctx, bad, meta()); store.ErrorCode(err) != store.EINVALID || fieldRule(err, "tenant") != "dns1123Label" {
		t.Fatalf("invalid tenant: %v", err)
	}
	if got := remoteHead(t, rm); got != head {
		t.Fatal("a store with an invalid tenant was committed")
	}
	// Leaving the tenant out of a change keeps it.
	if _, err := r.svc.Update(ctx, "acme-shop", func(s store.Store) (store.Store, error) {
		s.Tenant, s.Settings.Title = "", "New title"
		return s, nil
	}, meta()); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.svc.Get(ctx, "acme-shop"); v.Store.Tenant != "acme" || v.Store.Settings.Title != "New title" {
		t.Fatalf("after an update without tenant: %+v", v.Store)
	}
	// A retained (deleted) store keeps its tenant.
	if _, err := r.svc.Delete(ctx, "acme-shop", false, meta()); err != nil {
		t.Fatal(err)
	}
	fresh := openReplica(t, rm, nil)
	if v, err := fresh.svc.Get(ctx, "acme-shop"); err != nil || v.Store.Tenant != "acme" || v.State != store.StateRetained {
		t.Fatalf("retained store read back: %+v %v", v, err)
	}

	if _, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: r.repo}, Renderer: renderer, DefaultTenant: "Not A Label"}); store.ErrorCode(err) != store.EINVALID {
		t.Fatalf("invalid default tenant accepted: %v", err)
	}
}

func TestListByTenants(t *testing.T) {
	rm := newFleetRemote(t)
	pushOldStore(t, rm, shop("old-1", ""), "old-1")
	r := openReplica(t, rm, nil)
	ctx := context.Background()
	for _, c := range []struct{ name, tenant string }{
		{"a-1", "a"}, {"a-2", "a"}, {"a-3", "a"}, {"b-1", "b"}, {"b-2", "b"}, {"c-1", "c"},
	} {
		s := shop(c.name, "")
		s.Tenant = c.tenant
		if _, err := r.svc.Create(ctx, s, meta()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{}, "a-1 a-2 a-3 b-1 b-2 c-1 old-1"},
		{store.Filter{Tenant: "a"}, "a-1 a-2 a-3"},
		{store.Filter{Tenant: store.DefaultTenant}, "old-1"},
		{store.Filter{Tenants: []string{"a", "c"}}, "a-1 a-2 a-3 c-1"},
		{store.Filter{Tenants: []string{"b", store.AllTenants}}, "a-1 a-2 a-3 b-1 b-2 c-1 old-1"},
		{store.Filter{Tenants: []string{}}, ""},
		{store.Filter{Tenants: []string{"zzz"}}, ""},
		{store.Filter{Tenant: "a", Tenants: []string{"b"}}, ""},
		{store.Filter{Tenant: "b", Tenants: []string{"b", "c"}}, "b-1 b-2"},
		{store.Filter{Tenant: "b", Engine: "medusa"}, ""},
	} {
		if got := listNames(t, r.svc, tc.f); got != tc.want {
			t.Errorf("List %+v = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// Counter.Stores counts active and retained stores, from the index; a purged store
// does not count.
func TestCounterStores(t *testing.T) {
	rm := newFleetRemote(t)
	pushOldStore(t, rm, shop("old-1", ""), "old-1")
	r := openReplica(t, rm, nil)
	ctx := context.Background()
	for _, n := range []string{"a-1", "a-2", "a-3", "a-4"} {
		s := shop(n, "")
		s.Tenant = "acme"
		if _, err := r.svc.Create(ctx, s, meta()); err != nil {
			t.Fatal(err)
		}
	}
	b := shop("b-1", "")
	b.Tenant = "beta"
	if _, err := r.svc.Create(ctx, b, meta()); err != nil {
		t.Fatal(err)
	}
	// a-1 retained, a-2 purged (both steps).
	for _, n := range []string{"a-1", "a-2"} {
		if _, err := r.svc.Delete(ctx, n, false, meta()); err != nil {
			t.Fatal(err)
		}
	}
	purge(t, r.svc, "a-2")
	want := map[string]int{"acme": 3, "beta": 1, store.DefaultTenant: 1, "nobody": 0}
	for tenant, n := range want {
		if got, err := r.svc.Stores(ctx, tenant); err != nil || got != n {
			t.Errorf("Stores(%s) = %d, %v; want %d", tenant, got, err, n)
		}
	}
	// A replica that just started (specs not read yet) counts the same.
	other := openReplica(t, rm, nil)
	for tenant, n := range want {
		if got, err := other.svc.Stores(ctx, tenant); err != nil || got != n {
			t.Errorf("replica: Stores(%s) = %d, %v; want %d", tenant, got, err, n)
		}
	}
	// Once every spec is read the count comes from the tally kept beside the index,
	// not a walk of it: the same answer.
	other.svc.WaitLoaded()
	for tenant, n := range want {
		if got, err := other.svc.Stores(ctx, tenant); err != nil || got != n {
			t.Errorf("replica, loaded: Stores(%s) = %d, %v; want %d", tenant, got, err, n)
		}
	}
}

// purge takes a deleted store through both purge steps under one request id, as
// gitops-api does (the second once Flux applied the first).
func purge(t *testing.T, svc *fleet.Service, name string) {
	t.Helper()
	m := meta()
	if _, err := svc.Delete(context.Background(), name, true, m); err != nil {
		t.Fatal(err)
	}
	m.Continues = true
	if _, err := svc.Delete(context.Background(), name, true, m); err != nil {
		t.Fatal(err)
	}
}

// Counter.Removals counts the delete and purge requests in a window from the fleet
// repository's history: a purge's two commits count once, removals before the
// window do not, and a second replica (its own clone) counts the same.
func TestCounterRemovals(t *testing.T) {
	rm := newFleetRemote(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &clock{now: t0.Add(-3 * time.Hour)}
	a := openReplica(t, rm, clk)
	ctx := context.Background()
	for i, n := range []string{"s-1", "s-2", "s-3", "s-4", "s-5"} {
		s := shop(n, "")
		s.Tenant = []string{"acme", "beta"}[i%2]
		if _, err := a.svc.Create(ctx, s, meta()); err != nil {
			t.Fatal(err)
		}
	}
	// Two hours ago: one delete.
	clk.Set(t0.Add(-2 * time.Hour))
	if _, err := a.svc.Delete(ctx, "s-1", false, meta()); err != nil {
		t.Fatal(err)
	}
	// Within the hour: s-2 deleted and purged (three commits, two requests), s-3
	// deleted, and an update, which is no removal.
	clk.Set(t0.Add(-30 * time.Minute))
	if _, err := a.svc.Delete(ctx, "s-2", false, meta()); err != nil {
		t.Fatal(err)
	}
	purge(t, a.svc, "s-2")
	if _, err := a.svc.Delete(ctx, "s-3", false, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Update(ctx, "s-4", func(s store.Store) (store.Store, error) {
		s.Settings.Title = "changed"
		return s, nil
	}, meta()); err != nil {
		t.Fatal(err)
	}
	check := func(who string, svc *fleet.Service, since time.Time, want int) {
		t.Helper()
		if got, err := svc.Removals(ctx, since); err != nil || got != want {
			t.Errorf("%s: Removals(since %s) = %d, %v; want %d", who, since.Format(time.Kitchen), got, err, want)
		}
	}
	hour := t0.Add(-time.Hour)
	check("a", a.svc, hour, 3)
	check("a", a.svc, t0.Add(-4*time.Hour), 4) // an earlier window than asked before
	check("a", a.svc, hour, 3)                 // and the hour again, from the cache
	check("a", a.svc, t0, 0)

	b := openReplica(t, rm, clk)
	check("b", b.svc, hour, 3)
	check("b", b.svc, t0.Add(-4*time.Hour), 4)

	// More removals through replica b; replica a agrees once it has fetched.
	clk.Set(t0.Add(-10 * time.Minute))
	if _, err := b.svc.Delete(ctx, "s-4", false, meta()); err != nil {
		t.Fatal(err)
	}
	purge(t, b.svc, "s-3")
	check("b", b.svc, hour, 5)
	if err := a.repo.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("a", a.svc, hour, 5)
	check("a", a.svc, t0.Add(-20*time.Minute), 2)
}

// Filtering by tenant is answered from the index: once the specs are read, listing
// one tenant's stores reads no store folder again.
func TestListByTenantReadsNoFolder(t *testing.T) {
	r := newMemRepo()
	for i, n := range []string{"a-1", "b-1", "a-2", "c-1"} {
		s := shop(n, "")
		s.Tenant = []string{"a", "b", "a", "c"}[i]
		seed(t, r, s)
	}
	seed(t, r, shop("old-1", "")) // no tenant in its files
	svc := newService(t, r)
	svc.WaitLoaded()
	before := r.reads.Load()
	for f, want := range map[string]store.Filter{
		"a-1 a-2":     {Tenant: "a"},
		"b-1 c-1":     {Tenants: []string{"b", "c"}},
		"old-1":       {Tenants: []string{store.DefaultTenant}},
		"a-1 a-2 c-1": {Tenants: []string{"a", "c"}},
	} {
		if got := listNames(t, svc, want); got != f {
			t.Errorf("List %+v = %q, want %q", want, got, f)
		}
	}
	if n, err := svc.Stores(context.Background(), "a"); err != nil || n != 2 {
		t.Errorf("Stores(a) = %d, %v", n, err)
	}
	if after := r.reads.Load(); after != before {
		t.Fatalf("listing by tenant read %d store folders", after-before)
	}
}
