package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/dashboard"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// stack is gitops-api's handler as serve wires it with a cluster: the fleet service
// on a real Git remote (git http-backend on loopback), the status Tracker in front
// of it, the API and the dashboard on one listener. The cluster's side of the
// Tracker (what the watches of internal/kube report) is fed by the test.
type stack struct {
	srv *httptest.Server
	tr  *status.Tracker
	// streams counts the event streams opened: all stores' and one store's.
	mu                   sync.Mutex
	allStreams, perStore int
}

// newFleet is the fleet service on a real Git remote served by git http-backend.
func newFleet(t *testing.T) *fleet.Service {
	svc, _ := newFleetDiffs(t)
	return svc
}

// newFleetDiffs is newFleet with the history's diffs read from its clone, as serve
// wires them.
func newFleetDiffs(t *testing.T) (*fleet.Service, fleet.Differ) {
	t.Helper()
	git, err := githttp.New(t.TempDir())
	if err != nil {
		t.Fatalf("git http-backend is needed: %v", err)
	}
	_, err = git.InitBare("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if err := git.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { git.Close() })
	remote := git.URL() + "/fleet.git"
	seed := t.TempDir()
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "seed"}, {"push", "-q", remote, "main"}} {
		if args[0] == "add" {
			if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte("fleet\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("git", args...)
		cmd.Dir = seed
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: remote})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	log := slog.New(slog.DiscardHandler)
	svc, err := fleet.New(ctx, fleet.Config{
		Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()},
		Log: log, RequestLog: filepath.Join(t.TempDir(), "requests.jsonl"),
		Charts: chartindex.Dir{Path: filepath.Join("..", "..", "charts")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc, fleet.Differ{R: gitrepo.Fleet{R: repo}}
}

func newStack(t *testing.T) *stack {
	t.Helper()
	svc, diffs := newFleetDiffs(t)
	log := slog.New(slog.DiscardHandler)
	tr := status.New(status.Options{Log: log})
	t.Cleanup(tr.Close)
	tr.SetConnected(true)
	h := api.Handler(status.Service{Stores: svc, T: tr, ShardOf: store.Shard}, api.Options{Status: tr, Log: log, Diffs: diffs})
	st := &stack{tr: tr}
	mounted := dashboard.Mount(h, nil)
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		if r.URL.Path == "/api/v1/events" {
			st.allStreams++
		} else if strings.HasPrefix(r.URL.Path, "/api/v1/stores/") && strings.HasSuffix(r.URL.Path, "/events") {
			st.perStore++
		}
		st.mu.Unlock()
		mounted.ServeHTTP(w, r)
	}))
	t.Cleanup(st.srv.Close)
	return st
}

// commitOf reads the store's last fleet commit through the API, as Flux would see it.
func (s *stack) commitOf(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(s.srv.URL + "/api/v1/stores/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Plan   string `json:"plan"`
		Status struct {
			Commit string `json:"commit"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Status.Commit
}

// fluxApplies reports what the watches see once Flux has fetched and applied the
// store's last commit.
func (s *stack) fluxApplies(t *testing.T, name string) {
	rev := "main@sha1:" + s.commitOf(t, name)
	shard := store.Shard(name)
	s.tr.Published(shard, rev)
	s.tr.SetShardSource(shard, rev, &status.Condition{Status: "True", Reason: "Succeeded"})
	s.tr.SetShardApply(shard, rev, &status.Condition{Status: "True", Reason: "ReconciliationSucceeded"})
}

// browser starts Debian's chromium headless. A machine without it fails here,
// saying what to install: a browser test that skips would pass without a browser.
func browser(t testing.TB) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed: the dashboard's browser test needs Debian's chromium package (make deps installs it: mk/dashboard.mk)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The browser lives as long as the context of its first call, so that one has
	// no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	// The whole scenario's bound, so that a page that never shows what is awaited
	// fails the test instead of hanging it; nothing is asserted about durations.
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// axFind returns the nodes of the page's accessibility tree with this role and
// accessible name: what a screen reader announces, not how the page is styled.
func axFind(ctx context.Context, role, name string) ([]*accessibility.Node, error) {
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return nil, err
	}
	res, err := chromedp.Call(ctx, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{
		NodeID: doc.Root.NodeID, Role: role, AccessibleName: name})
	if err != nil {
		return nil, err
	}
	var out []*accessibility.Node
	for _, n := range res.Nodes {
		if !n.Ignored {
			out = append(out, n)
		}
	}
	return out, nil
}

// shown is what the last check of a waitFor saw, for its failure message.
var shown string

// waitFor polls until the node exists and ok accepts it (nil: any).
func waitFor(t *testing.T, ctx context.Context, what, role, name string, ok func(*accessibility.Node) bool) *accessibility.Node {
	t.Helper()
	var last string
	for {
		nodes, err := axFind(ctx, role, name)
		if err != nil {
			last = err.Error()
		}
		for _, n := range nodes {
			if ok == nil || ok(n) {
				return n
			}
			last = fmt.Sprintf("%s %q: %s", role, name, describe(n))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: never seen (last: %s; shown: %q)", what, last, shown)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func axString(v *accessibility.Value) string {
	if v == nil {
		return ""
	}
	var s string
	if json.Unmarshal(v.Value, &s) == nil {
		return s
	}
	return string(v.Value)
}

func describe(n *accessibility.Node) string {
	return fmt.Sprintf("name=%q description=%q value=%q", axString(n.Name), axString(n.Description), axString(n.Value))
}

// call runs fn (a JavaScript function) with the node as this, returning its result.
func call(t *testing.T, ctx context.Context, n *accessibility.Node, fn string, args ...any) string {
	t.Helper()
	obj, err := chromedp.Call(ctx, dom.ResolveNode, dom.ResolveNodeParams{BackendNodeID: n.BackendDOMNodeID})
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	on := func(p *runtime.CallFunctionOnParams) { p.ObjectID = obj.Object.ObjectID }
	out, err := chromedp.Run(ctx, chromedp.CallFunctionOn[string](`function(...a) { const r = (`+fn+`).apply(this, a); return r === undefined || r === null ? "" : String(r); }`, on, args...))
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

func click(t *testing.T, ctx context.Context, n *accessibility.Node) {
	t.Helper()
	call(t, ctx, n, `function() { this.focus(); this.click(); }`)
}

// typeInto focuses the field and types as a keyboard does (input events fire).
func typeInto(t *testing.T, ctx context.Context, n *accessibility.Node, text string) {
	t.Helper()
	call(t, ctx, n, `function() { this.focus(); this.select && this.select(); }`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(text)); err != nil {
		t.Fatal(err)
	}
}

// choose picks an option of a select by its text, as the keyboard would.
func choose(t *testing.T, ctx context.Context, n *accessibility.Node, option string) {
	t.Helper()
	got := call(t, ctx, n, `function(v) { this.focus(); this.value = v; this.dispatchEvent(new Event('input', {bubbles: true}));
		this.dispatchEvent(new Event('change', {bubbles: true})); return this.value; }`, option)
	if got != option {
		t.Fatalf("select has no option %q", option)
	}
}

func text(t *testing.T, ctx context.Context, n *accessibility.Node) string {
	t.Helper()
	return call(t, ctx, n, `function() { return this.innerText; }`)
}

// rowText is the text of the table row whose row header is the store's name.
func rowText(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	n := waitFor(t, ctx, "row of "+name, "rowheader", name, nil)
	return call(t, ctx, n, `function() { return this.parentElement.innerText; }`)
}

func screenshot(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	dir := os.Getenv("DASHBOARD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser walks a store's life in Chromium as a person would: a bad name shows
// its error at the field, a create shows its phases live in the list and reaches
// ready, a plan change shows its diff before it is confirmed, and delete then
// purge need their confirmations.
func TestBrowser(t *testing.T) {
	s := newStack(t)
	ctx := browser(t)
	// Another store first, so the list shows rows that the stream must not mix up.
	other := `{"name":"other","engine":"medusa","plan":"basic","settings":{"adminEmail":"o@example.com"}}`
	resp, err := http.Post(s.srv.URL+"/api/v1/stores", "application/json", strings.NewReader(other))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create other: %d", resp.StatusCode)
	}

	// The create form, from the OpenAPI schema; a bad name's error at the name field.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/#/new")); err != nil {
		t.Fatal(err)
	}
	name := waitFor(t, ctx, "name field", "textbox", "name (required)", nil)
	typeInto(t, ctx, name, "Bad_Name")
	choose(t, ctx, waitFor(t, ctx, "engine field", "combobox", "engine (required)", nil), "woocommerce")
	choose(t, ctx, waitFor(t, ctx, "plan field", "combobox", "plan (required)", nil), "basic")
	typeInto(t, ctx, waitFor(t, ctx, "admin email", "textbox", "adminEmail", nil), "owner@example.com")
	click(t, ctx, waitFor(t, ctx, "create button", "button", "Create store", nil))
	bad := waitFor(t, ctx, "the name field's error", "textbox", "name (required)", func(n *accessibility.Node) bool {
		return strings.Contains(axString(n.Description), "rule dns1123Label")
	})
	if got := call(t, ctx, bad, `function() { return this.getAttribute('aria-invalid'); }`); got != "true" {
		t.Fatalf("the bad name field is not marked invalid: %q", got)
	}
	screenshot(t, ctx, "dashboard-create-error.png")

	typeInto(t, ctx, bad, "shop")
	click(t, ctx, waitFor(t, ctx, "create button", "button", "Create store", nil))
	waitFor(t, ctx, "the store's page", "heading", "shop", nil)

	// The list: each row's phase, then shop's phases change live as Flux works.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/#/")); err != nil {
		t.Fatal(err)
	}
	waitRow := func(store, phase string) {
		t.Helper()
		waitFor(t, ctx, store+" "+phase, "rowheader", store, func(n *accessibility.Node) bool {
			row := call(t, ctx, n, `function() { return this.parentElement.innerText; }`)
			shown = row
			return strings.Contains(row, "\t"+phase+"\t") || strings.HasSuffix(strings.TrimSpace(row), phase)
		})
	}
	waitRow("shop", "committed")
	waitRow("other", "committed")
	s.fluxApplies(t, "shop")
	waitRow("shop", "applied")
	s.tr.SetRelease("shop", &status.Release{Generation: 1, ChartVersion: "0.1.0"})
	waitRow("shop", "installing")
	s.tr.SetRelease("shop", &status.Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", Installed: true,
		Ready: &status.Condition{Status: "True", Reason: "InstallSucceeded"}})
	waitRow("shop", "ready")
	if row := rowText(t, ctx, "other"); !strings.Contains(row, "committed") {
		t.Fatalf("other's row changed with shop's events: %q", row)
	}
	// Bad states plainly: other fails with Flux's reason; a lost cluster shows unknown.
	s.fluxApplies(t, "other")
	s.tr.SetRelease("other", &status.Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", InstallFailures: 1,
		Ready: &status.Condition{Status: "False", Reason: "InstallFailed", Message: "timed out waiting for the condition"}})
	waitFor(t, ctx, "other failed with its reason", "rowheader", "other", func(n *accessibility.Node) bool {
		shown = call(t, ctx, n, `function() { return this.parentElement.innerText; }`)
		return strings.Contains(shown, "failed") && strings.Contains(shown, "InstallFailed")
	})
	screenshot(t, ctx, "dashboard-list.png")
	s.tr.SetConnected(false)
	waitRow("shop", "unknown")
	s.tr.SetConnected(true)
	waitRow("shop", "ready")

	// The filters are the server's (?q=, which pages the matches): a part of
	// other's name leaves its row alone, and shop's goes.
	typeInto(t, ctx, waitFor(t, ctx, "text filter", "searchbox", "Name, domain or title contains", nil), "oth")
	click(t, ctx, waitFor(t, ctx, "filter button", "button", "Filter", nil))
	waitFor(t, ctx, "one match", "status", "", func(n *accessibility.Node) bool {
		shown = text(t, ctx, n)
		return shown == "1 stores on this page."
	})
	if nodes, err := axFind(ctx, "rowheader", "shop"); err != nil || len(nodes) != 0 {
		t.Fatalf("shop is still listed under the filter oth (%d rows, %v)", len(nodes), err)
	}
	rowText(t, ctx, "other")
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/#/")); err != nil {
		t.Fatal(err)
	}

	// The store's page: its timeline, then a plan change previewed before it is confirmed.
	click(t, ctx, waitFor(t, ctx, "link to shop", "link", "shop", nil))
	waitFor(t, ctx, "the timeline", "list", "Steps", nil)
	screenshot(t, ctx, "dashboard-store.png")
	choose(t, ctx, waitFor(t, ctx, "plan select", "combobox", "New plan", nil), "standard")
	click(t, ctx, waitFor(t, ctx, "preview button", "button", "Preview change", nil))
	preview := waitFor(t, ctx, "the diff", "region", "Changes to confirm", nil)
	diff := text(t, ctx, preview)
	if !strings.Contains(diff, "+") || !strings.Contains(diff, "standard") {
		t.Fatalf("the preview shows no diff to the standard plan:\n%s", diff)
	}
	if got := planOf(t, s, "shop"); got != "basic" {
		t.Fatalf("the plan changed before the confirmation: %s", got)
	}
	click(t, ctx, waitFor(t, ctx, "confirm button", "button", "Confirm change", nil))
	for planOf(t, s, "shop") != "standard" {
		select {
		case <-ctx.Done():
			t.Fatal("the confirmed change never landed")
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The history shows each change's diff on demand: the plan change's names the
	// new plan.
	change := s.commitOf(t, "shop")[:10]
	click(t, ctx, waitFor(t, ctx, "the plan change's diff button", "button", "Changes of "+change, nil))
	hist := waitFor(t, ctx, "the plan change's diff", "region", "Changes in "+change, nil)
	if d := text(t, ctx, hist); !strings.Contains(d, "+") || !strings.Contains(d, "standard") || !strings.Contains(d, "modify") {
		t.Fatalf("the history's diff of the plan change:\n%s", d)
	}

	// Delete keeps the data; purge wants the name typed.
	click(t, ctx, waitFor(t, ctx, "delete button", "button", "Delete store", nil))
	s.fluxApplies(t, "shop")
	s.tr.SetRelease("shop", nil)
	s.tr.SetNamespace("shop", true)
	waitFor(t, ctx, "retained", "region", "Status", func(n *accessibility.Node) bool {
		shown = text(t, ctx, n)
		return strings.Contains(shown, "retained")
	})
	purge := waitFor(t, ctx, "purge button", "button", "Purge data", nil)
	if got := call(t, ctx, purge, `function() { return String(this.disabled); }`); got != "true" {
		t.Fatal("purge is possible without typing the name")
	}
	typeInto(t, ctx, waitFor(t, ctx, "purge confirmation", "textbox", "Type shop to confirm", nil), "shop")
	click(t, ctx, waitFor(t, ctx, "purge button", "button", "Purge data", nil))
	waitFor(t, ctx, "purging", "region", "Status", func(n *accessibility.Node) bool {
		shown = text(t, ctx, n)
		return strings.Contains(shown, "purging")
	})

	// One stream per tab: the page was loaded once (the list, the store's page and
	// the form are hash changes of the same document), and never one per store.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perStore != 0 || s.allStreams != 1 {
		t.Fatalf("event streams opened: %d of all stores, %d of one store; want 1 and 0", s.allStreams, s.perStore)
	}
}

func planOf(t *testing.T, s *stack, name string) string {
	t.Helper()
	resp, err := http.Get(s.srv.URL + "/api/v1/stores/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Plan string `json:"plan"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Plan
}
