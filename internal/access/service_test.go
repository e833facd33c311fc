package access_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// newFleet is the fleet service over a real Git repository served by git
// http-backend on loopback, seeded with one commit as a real fleet repository is.
// Its writer checks no quota: the decorator's tests set the count it sees.
func newFleet(t testing.TB) *fleet.Service { return openFleet(t, false) }

// newCheckedFleet is newFleet with the writer checking the quota at commit time
// as serve wires it, on the fleet's own count.
func newCheckedFleet(t testing.TB) *fleet.Service { return openFleet(t, true) }

func openFleet(t testing.TB, quotaAtCommit bool) *fleet.Service {
	t.Helper()
	git, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatalf("git http-backend is needed for this test: %v", err)
	}
	if _, err := git.InitBare("fleet.git"); err != nil {
		t.Fatal(err)
	}
	if err := git.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { git.Close() })
	remote := git.URL() + "/fleet.git"
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte("fleet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "seed"}, {"push", "-q", remote, "main"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = seed
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_TERMINAL_PROMPT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	ctx := context.Background()
	rd := render.Renderer{Options: render.LocalOptions()}
	opts := gitrepo.Options{URL: remote}
	if quotaAtCommit {
		opts.TenantOf = func(files []store.File) (string, error) {
			return store.FolderTenant(rd, store.DefaultTenant, files)
		}
	}
	repo, err := gitrepo.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: rd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// counter is a store.Counter whose answers the test sets: the quota and the guard
// tests are about what the decorator does with a count, not about counting (the
// fleet's own tests cover that).
type counter struct {
	mu       sync.Mutex
	stores   map[string]int
	removals int
	since    time.Time
	err      error
}

func (c *counter) Stores(_ context.Context, tenant string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[tenant], c.err
}

func (c *counter) Removals(_ context.Context, since time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.since = since
	return c.removals, c.err
}

// spy records the Meta each change reaches the fleet with.
type spy struct {
	store.Service
	mu    sync.Mutex
	metas []store.Meta
}

func (s *spy) record(m store.Meta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metas = append(s.metas, m)
}

func (s *spy) last() store.Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metas[len(s.metas)-1]
}

func (s *spy) Create(ctx context.Context, st store.Store, m store.Meta) (store.Outcome, error) {
	s.record(m)
	return s.Service.Create(ctx, st, m)
}

func (s *spy) Update(ctx context.Context, n string, f func(store.Store) (store.Store, error), m store.Meta) (store.Outcome, error) {
	s.record(m)
	return s.Service.Update(ctx, n, f, m)
}

func (s *spy) Delete(ctx context.Context, n string, purge bool, m store.Meta) (store.Outcome, error) {
	s.record(m)
	return s.Service.Delete(ctx, n, purge, m)
}

var reqs atomic.Int64

func meta() store.Meta {
	return store.Meta{Actor: "forged", RequestID: fmt.Sprintf("req-%d", reqs.Add(1))}
}

func dry() store.Meta {
	m := meta()
	m.DryRun = true
	return m
}

func shop(name, tenant string) store.Store {
	return store.Store{Name: name, Engine: store.WooCommerce, Plan: store.Basic, Tenant: tenant,
		Settings: store.Settings{AdminEmail: "owner@example.com"}}
}

func as(p *store.Principal) context.Context {
	return store.WithPrincipal(context.Background(), p)
}

func principal(subject string, grants map[string]store.Role) *store.Principal {
	return &store.Principal{Subject: subject, Method: store.AuthOIDC, Grants: grants}
}

var (
	viewerA = principal("viewer-a", map[string]store.Role{"shop-a": store.RoleViewer})
	editorA = principal("editor-a", map[string]store.Role{"shop-a": store.RoleEditor})
	adminA  = principal("admin-a", map[string]store.Role{"shop-a": store.RoleAdmin})
	editorB = principal("editor-b", map[string]store.Role{"shop-b": store.RoleEditor})
	root    = principal("root", map[string]store.Role{store.AllTenants: store.RoleAdmin})
	nobody  = principal("nobody", map[string]store.Role{})
)

// world is a fleet with stores in two tenants and one from before tenants, and the
// decorator over it.
type world struct {
	fleet   *fleet.Service
	spy     *spy
	counter *counter
	svc     store.Service
	now     time.Time
	// requests: the create request of each seeded store.
	requests map[string]string
}

func newWorld(t testing.TB, limits access.Limits) *world {
	t.Helper()
	w := &world{fleet: newFleet(t), counter: &counter{stores: map[string]int{}}, requests: map[string]string{},
		now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	w.spy = &spy{Service: w.fleet}
	w.svc = access.NewService(w.spy, w.counter, access.Options{Limits: limits, Now: func() time.Time { return w.now }})
	ctx := context.Background()
	for _, s := range []store.Store{shop("a1", "shop-a"), shop("a2", "shop-a"), shop("b1", "shop-b"), shop("d1", "")} {
		m := meta()
		if _, err := w.fleet.Create(ctx, s, m); err != nil {
			t.Fatal(err)
		}
		w.requests[s.Name] = m.RequestID
	}
	// a2 is deleted, so it can be purged.
	if _, err := w.fleet.Delete(ctx, "a2", false, meta()); err != nil {
		t.Fatal(err)
	}
	return w
}

type call struct {
	name string
	do   func(ctx context.Context, svc store.Service) error
}

// calls: every method on a store of shop-a; changes are dry runs so the store stays.
func callsOn(w *world, name string) []call {
	return []call{
		{"get", func(ctx context.Context, svc store.Service) error { _, err := svc.Get(ctx, name); return err }},
		{"history", func(ctx context.Context, svc store.Service) error { _, err := svc.History(ctx, name); return err }},
		{"request", func(ctx context.Context, svc store.Service) error {
			_, err := svc.Request(ctx, w.requests[name])
			return err
		}},
		{"update", func(ctx context.Context, svc store.Service) error {
			_, err := svc.Update(ctx, name, func(s store.Store) (store.Store, error) { s.Settings.Title = "New"; return s, nil }, dry())
			return err
		}},
		{"delete", func(ctx context.Context, svc store.Service) error {
			_, err := svc.Delete(ctx, name, false, dry())
			return err
		}},
	}
}

// TestMethodsRolesTenants: every method × role × own/other tenant. Another
// tenant's store is not found, never forbidden; a role too weak in one's own tenant
// is forbidden.
func TestMethodsRolesTenants(t *testing.T) {
	w := newWorld(t, access.Limits{})
	const ok, nf, fb = "", store.ENOTFOUND, store.EFORBIDDEN
	want := map[string]map[string]string{ // principal → method → code, on a1 (shop-a)
		"viewer-a": {"get": ok, "history": ok, "request": ok, "update": fb, "delete": fb},
		"editor-a": {"get": ok, "history": ok, "request": ok, "update": ok, "delete": ok},
		"admin-a":  {"get": ok, "history": ok, "request": ok, "update": ok, "delete": ok},
		"editor-b": {"get": nf, "history": nf, "request": nf, "update": nf, "delete": nf},
		"root":     {"get": ok, "history": ok, "request": ok, "update": ok, "delete": ok},
		"nobody":   {"get": nf, "history": nf, "request": nf, "update": nf, "delete": nf},
		"auth off": {"get": ok, "history": ok, "request": ok, "update": ok, "delete": ok},
	}
	for _, p := range []*store.Principal{viewerA, editorA, adminA, editorB, root, nobody, nil} {
		who := "auth off"
		if p != nil {
			who = p.Subject
		}
		for _, c := range callsOn(w, "a1") {
			if got := store.ErrorCode(c.do(as(p), w.svc)); got != want[who][c.name] {
				t.Errorf("%s %s a1: %q, want %q", who, c.name, got, want[who][c.name])
			}
		}
	}
	// Purge (a2 is deleted): admin only.
	for p, code := range map[*store.Principal]string{viewerA: fb, editorA: fb, adminA: ok, editorB: nf, root: ok, nobody: nf, nil: ok} {
		if _, err := w.svc.Delete(as(p), "a2", true, dry()); store.ErrorCode(err) != code {
			t.Errorf("%v purge a2: %v, want %q", p, err, code)
		}
	}
	// The store from before tenants is the default tenant's.
	dflt := principal("dflt", map[string]store.Role{store.DefaultTenant: store.RoleViewer})
	if _, err := w.svc.Get(as(dflt), "d1"); err != nil {
		t.Errorf("default tenant's viewer on a store without tenant: %v", err)
	}
	if _, err := w.svc.Get(as(viewerA), "d1"); store.ErrorCode(err) != nf {
		t.Errorf("shop-a's viewer on a store without tenant: %v, want not found", err)
	}
}

// TestHiddenIsAbsent: a store of another tenant is answered exactly as one that
// does not exist, so the answer tells nothing either way.
func TestHiddenIsAbsent(t *testing.T) {
	w := newWorld(t, access.Limits{})
	ctx := as(editorB)
	absent := store.Store{Name: "zz"}
	w.requests["zz"] = "no-such-request"
	hidden, missing := callsOn(w, "a1"), callsOn(w, absent.Name)
	for i := range hidden {
		h, m := hidden[i].do(ctx, w.svc), missing[i].do(ctx, w.svc)
		hm := strings.ReplaceAll(store.ErrorMessage(h), "a1", "zz")
		if hidden[i].name == "request" {
			hm = strings.ReplaceAll(store.ErrorMessage(h), w.requests["a1"], "no-such-request")
		}
		if store.ErrorCode(h) != store.ENOTFOUND || store.ErrorCode(m) != store.ENOTFOUND || hm != store.ErrorMessage(m) {
			t.Errorf("%s: hidden %q / absent %q", hidden[i].name, store.ErrorMessage(h), store.ErrorMessage(m))
		}
	}
	// Purged: the history outlives the folder, and still belongs to its tenant.
	bg := context.Background()
	for range 2 {
		if _, err := w.fleet.Delete(bg, "a2", true, meta()); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := w.fleet.History(bg, "a2"); err != nil || h[0].Tenant != "shop-a" {
		t.Fatalf("the purged store's history does not name its tenant: %v %v", h, err)
	}
	if _, err := w.svc.History(ctx, "a2"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("another tenant's purged store's history: %v, want not found", err)
	}
	if h, err := w.svc.History(as(viewerA), "a2"); err != nil || len(h) == 0 {
		t.Errorf("own purged store's history: %v %v", h, err)
	}
	// Paging tells another tenant nothing of it either: a cursor of its history, one of
	// no history, a change looked up by commit are all the store's absence, never a
	// 400 on the cursor.
	own, err := w.svc.HistoryPage(as(viewerA), "a2", store.HistoryPage{Limit: 1})
	if err != nil || len(own.Entries) != 1 || own.Next == "" {
		t.Fatalf("own purged store's first page: %+v %v", own, err)
	}
	if next, err := w.svc.HistoryPage(as(viewerA), "a2", store.HistoryPage{Limit: 1, Before: own.Next}); err != nil || len(next.Entries) != 1 || next.Entries[0].Commit.SHA == own.Next {
		t.Errorf("own purged store's second page: %+v %v", next, err)
	}
	noneA2 := `store "a2" has no history` // what a store that never was answers
	for _, page := range []store.HistoryPage{{Limit: 1}, {Before: own.Next}, {Before: strings.Repeat("0", 40)}, {At: own.Next, Limit: 1}} {
		if _, err := w.svc.HistoryPage(ctx, "a2", page); store.ErrorCode(err) != store.ENOTFOUND || store.ErrorMessage(err) != noneA2 {
			t.Errorf("another tenant's purged store, page %+v: %v, want %q", page, err, noneA2)
		}
	}
	// So is a live store's.
	for _, page := range []store.HistoryPage{{Before: strings.Repeat("0", 40)}, {At: strings.Repeat("0", 40)}} {
		if _, err := w.svc.HistoryPage(ctx, "a1", page); store.ErrorCode(err) != store.ENOTFOUND || store.ErrorMessage(err) != `store "a1" has no history` {
			t.Errorf("another tenant's store, page %+v: %v", page, err)
		}
	}
}

func TestList(t *testing.T) {
	w := newWorld(t, access.Limits{})
	names := func(p *store.Principal, f store.Filter) []string {
		t.Helper()
		var out []string
		cont := ""
		for {
			views, next, err := w.svc.List(as(p), f, 1, cont)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range views {
				out = append(out, v.Store.Name)
			}
			if next == "" {
				return out
			}
			cont = next
		}
	}
	for _, c := range []struct {
		p    *store.Principal
		f    store.Filter
		want []string
	}{
		{viewerA, store.Filter{}, []string{"a1", "a2"}},
		{editorB, store.Filter{}, []string{"b1"}},
		{root, store.Filter{}, []string{"a1", "a2", "b1", "d1"}},
		{nil, store.Filter{}, []string{"a1", "a2", "b1", "d1"}},
		{nobody, store.Filter{}, nil},
		{viewerA, store.Filter{Tenant: "shop-b"}, nil},
	} {
		if got := names(c.p, c.f); !slices.Equal(got, c.want) {
			t.Errorf("%v %+v: %v, want %v", c.p, c.f, got, c.want)
		}
	}
}

func TestCreate(t *testing.T) {
	w := newWorld(t, access.Limits{})
	twoTenants := principal("two", map[string]store.Role{"shop-a": store.RoleEditor, "shop-b": store.RoleEditor})
	defaultEditor := principal("de", map[string]store.Role{store.DefaultTenant: store.RoleEditor, "shop-a": store.RoleViewer})
	for i, c := range []struct {
		p          *store.Principal
		tenant     string
		wantCode   string
		wantTenant string
		wantField  string
	}{
		{editorA, "", "", "shop-a", ""},
		{editorA, "shop-a", "", "shop-a", ""},
		{adminA, "shop-a", "", "shop-a", ""},
		{viewerA, "shop-a", store.EFORBIDDEN, "", ""},
		{viewerA, "", store.EFORBIDDEN, "", ""},
		{editorB, "shop-a", store.EFORBIDDEN, "", ""},
		{nobody, "", store.EFORBIDDEN, "", ""},
		{nobody, "shop-a", store.EFORBIDDEN, "", ""},
		{root, "", "", store.DefaultTenant, ""},
		{root, "shop-z", "", "shop-z", ""},
		{root, "*", store.EINVALID, "", "tenant"},
		{root, "Shop_A", store.EINVALID, "", "tenant"},
		{twoTenants, "", store.EINVALID, "", "tenant"},
		{twoTenants, "shop-b", "", "shop-b", ""},
		{defaultEditor, "", "", store.DefaultTenant, ""},
		{nil, "", "", store.DefaultTenant, ""},
		{nil, "shop-q", "", "shop-q", ""},
	} {
		for _, dryRun := range []bool{true, false} {
			name := fmt.Sprintf("new-%d-%v", i, dryRun)
			m := meta()
			m.DryRun = dryRun
			_, err := w.svc.Create(as(c.p), shop(name, c.tenant), m)
			if store.ErrorCode(err) != c.wantCode {
				t.Errorf("%v creates in %q (dry run %v): %v, want %q", c.p, c.tenant, dryRun, err, c.wantCode)
				continue
			}
			if c.wantField != "" && !slices.ContainsFunc(store.FieldErrors(err), func(f store.FieldError) bool { return f.Field == c.wantField }) {
				t.Errorf("%v creates in %q: %v, want field %s named", c.p, c.tenant, err, c.wantField)
			}
			if err != nil || dryRun {
				continue
			}
			v, err := w.fleet.Get(context.Background(), name)
			if err != nil || v.Store.Tenant != c.wantTenant {
				t.Errorf("%v creates in %q: stored in %q (%v), want %q", c.p, c.tenant, v.Store.Tenant, err, c.wantTenant)
			}
		}
	}
}

// TestActor: the audit identity is the authenticated one whatever the client
// claims, and X-Actor only for a principal allowed to act for others.
func TestActor(t *testing.T) {
	w := newWorld(t, access.Limits{})
	retitle := func(s store.Store) (store.Store, error) { s.Settings.Title += "!"; return s, nil }
	if _, err := w.svc.Update(as(editorA), "a1", retitle, meta()); err != nil {
		t.Fatal(err)
	}
	h, err := w.fleet.History(context.Background(), "a1")
	if err != nil || h[0].Actor != "editor-a" {
		t.Fatalf("committed actor %q (%v), want the principal's subject", h[0].Actor, err)
	}

	m := meta()
	m.OnBehalfOf = "someone-else"
	_, err = w.svc.Update(as(editorA), "a1", retitle, m)
	if store.ErrorCode(err) != store.EFORBIDDEN || len(store.FieldErrors(err)) != 1 || store.FieldErrors(err)[0].Field != "X-Actor" {
		t.Errorf("X-Actor without actAs: %v, want forbidden naming X-Actor", err)
	}
	for _, do := range []func() error{
		func() error { _, err := w.svc.Create(as(editorA), shop("x1", ""), m); return err },
		func() error { _, err := w.svc.Delete(as(editorA), "a1", false, m); return err },
	} {
		if err := do(); store.ErrorCode(err) != store.EFORBIDDEN {
			t.Errorf("X-Actor without actAs: %v, want forbidden", err)
		}
	}

	dashboard := principal("token:dashboard", map[string]store.Role{store.AllTenants: store.RoleEditor})
	dashboard.ActAs = true
	if _, err := w.svc.Update(as(dashboard), "a1", retitle, m); err != nil {
		t.Fatal(err)
	}
	h, err = w.fleet.History(context.Background(), "a1")
	if err != nil || h[0].Actor != "token:dashboard" || h[0].OnBehalfOf != "someone-else" {
		t.Errorf("acting for another: committed actor %q on behalf of %q (%v)", h[0].Actor, h[0].OnBehalfOf, err)
	}
	// Authentication off: the HTTP layer's actor stands.
	if _, err := w.svc.Update(as(nil), "a1", retitle, meta()); err != nil || w.spy.last().Actor != "forged" {
		t.Errorf("auth off: actor %q (%v)", w.spy.last().Actor, err)
	}
}

func TestTenantImmutable(t *testing.T) {
	w := newWorld(t, access.Limits{})
	move := func(s store.Store) (store.Store, error) { s.Tenant = "shop-b"; return s, nil }
	for _, p := range []*store.Principal{root, nil} {
		_, err := w.svc.Update(as(p), "a1", move, meta())
		if store.ErrorCode(err) != store.EINVALID || store.FieldErrors(err)[0].Field != "tenant" {
			t.Errorf("%v moves a1 to shop-b: %v, want invalid tenant", p, err)
		}
	}
	if v, _ := w.fleet.Get(context.Background(), "a1"); v.Store.Tenant != "shop-a" {
		t.Errorf("a1 is in %q now", v.Store.Tenant)
	}
}

func TestQuota(t *testing.T) {
	w := newWorld(t, access.Limits{StoresPerTenant: 2})
	w.counter.stores["shop-a"] = 2
	for _, m := range []store.Meta{dry(), meta()} {
		_, err := w.svc.Create(as(editorA), shop("q1", ""), m)
		fe := store.FieldErrors(err)
		if store.ErrorCode(err) != store.EINVALID || len(fe) != 1 || fe[0].Field != "tenant" || fe[0].Rule != "quota" ||
			!strings.Contains(fe[0].Message, "limits.storesPerTenant") || !strings.Contains(fe[0].Message, "2") {
			t.Errorf("over quota (dry run %v): %v, want invalid tenant/quota naming the limit", m.DryRun, err)
		}
	}
	if _, err := w.fleet.Get(context.Background(), "q1"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("a create over quota landed: %v", err)
	}
	// Another tenant's quota is its own; so is auth off's default tenant.
	if _, err := w.svc.Create(as(editorB), shop("q2", ""), meta()); err != nil {
		t.Errorf("shop-b under its quota: %v", err)
	}
	w.counter.stores["shop-a"] = 1
	if _, err := w.svc.Create(as(editorA), shop("q3", ""), meta()); err != nil {
		t.Errorf("shop-a under quota: %v", err)
	}
	w.counter.err = store.Errorf(store.EUNAVAILABLE, "fleet repository not reachable")
	if _, err := w.svc.Create(as(editorA), shop("q4", ""), meta()); store.ErrorCode(err) != store.EUNAVAILABLE {
		t.Errorf("counter unavailable: %v, want unavailable", err)
	}
}

// TestGuard: past the hourly number of removals, a delete or purge needs admin and
// force, whoever asks; a later step of a purge is not a new removal.
func TestGuard(t *testing.T) {
	w := newWorld(t, access.Limits{RemovalsPerHour: 3})
	force := func(m store.Meta) store.Meta { m.Force = true; return m }
	cont := func(m store.Meta) store.Meta { m.Continues = true; return m }

	w.counter.removals = 2
	if _, err := w.svc.Delete(as(editorA), "a1", false, dry()); err != nil {
		t.Errorf("under the limit: %v", err)
	}
	if want := w.now.Add(-time.Hour); !w.counter.since.Equal(want) {
		t.Errorf("removals counted since %v, want %v", w.counter.since, want)
	}

	w.counter.removals = 3
	for _, c := range []struct {
		p     *store.Principal
		name  string
		purge bool
		m     store.Meta
		want  string
	}{
		{editorA, "a1", false, dry(), store.EFORBIDDEN},
		{editorA, "a1", false, force(dry()), store.EFORBIDDEN},
		{adminA, "a1", false, dry(), store.EFORBIDDEN},
		{adminA, "a1", false, force(dry()), ""},
		{adminA, "a2", true, dry(), store.EFORBIDDEN},
		{adminA, "a2", true, force(dry()), ""},
		{root, "b1", false, force(dry()), ""},
		{nil, "b1", false, dry(), store.EFORBIDDEN},
		{nil, "b1", false, force(dry()), ""},
		{nil, "a2", true, cont(dry()), ""},
	} {
		_, err := w.svc.Delete(as(c.p), c.name, c.purge, c.m)
		if store.ErrorCode(err) != c.want {
			t.Errorf("%v delete %s purge=%v force=%v continues=%v: %v, want %q", c.p, c.name, c.purge, c.m.Force, c.m.Continues, err, c.want)
		}
		if c.want == store.EFORBIDDEN && !strings.Contains(store.ErrorMessage(err), "limits.removalsPerHour") {
			t.Errorf("the guard's refusal does not name the limit: %v", err)
		}
		if c.want == store.EFORBIDDEN && !strings.Contains(store.ErrorMessage(err), "force=true") {
			t.Errorf("the guard's refusal does not say how to force: %v", err)
		}
	}
	// For real: refused, nothing committed; forced by an admin, committed.
	if _, err := w.svc.Delete(as(adminA), "a1", false, meta()); store.ErrorCode(err) != store.EFORBIDDEN {
		t.Fatalf("past the limit without force: %v", err)
	}
	if v, _ := w.fleet.Get(context.Background(), "a1"); v.State != store.StateActive {
		t.Fatalf("a refused delete changed the store: %v", v.State)
	}
	if _, err := w.svc.Delete(as(adminA), "a1", false, force(meta())); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.fleet.Get(context.Background(), "a1"); v.State != store.StateRetained {
		t.Fatalf("a forced delete did not land: %v", v.State)
	}
}

func TestReadyPassesThrough(t *testing.T) {
	w := newWorld(t, access.Limits{})
	if err := w.svc.Ready(as(nobody)); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestQuotaNearLimitOnly: a create asks the writer to count the tenant's stores again
// where its commit lands only when the tenant is within quotaCheckRoom of its limit as
// this replica counts it; far from it the writer's count, which every commit it runs
// for pays, is not asked for.
func TestQuotaNearLimitOnly(t *testing.T) {
	room := access.QuotaCheckRoom()
	w := newWorld(t, access.Limits{StoresPerTenant: room + 10})
	w.counter.stores["shop-a"] = 0
	if _, err := w.svc.Create(as(editorA), shop("far1", ""), meta()); err != nil {
		t.Fatal(err)
	}
	if got := w.spy.last().StoresPerTenant; got != 0 {
		t.Errorf("far from the limit the writer was asked to count (limit %d passed down)", got)
	}
	w.counter.stores["shop-a"] = 10
	if _, err := w.svc.Create(as(editorA), shop("near1", ""), meta()); err != nil {
		t.Fatal(err)
	}
	if got, want := w.spy.last().StoresPerTenant, room+10; got != want {
		t.Errorf("%d places left: limit passed down %d, want %d", room, got, want)
	}
}
