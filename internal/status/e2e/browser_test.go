package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestBrowserOnCluster walks a store's life in Chromium against gitops-api wired to
// the test environment as `make dev` wires it (real kube-apiserver, Flux's
// controllers, the fleet repository over HTTP): the phases a person sees in the
// list come from Flux, not from a test feeding the tracker. Create through the
// form, watch the row reach ready without reloading, change the plan after seeing
// the diff, delete (retained), purge (gone). internal/dashboard's TestBrowser
// keeps the states a cluster is hard to bring to (failed, unknown).
func TestBrowserOnCluster(t *testing.T) {
	a := startAPI(t)
	ctx := chromium(t)
	const name = "browsed"

	nav(t, ctx, a.URL+"/#/new")
	bTypeInto(t, ctx, bWait(t, ctx, "name field", "textbox", "name (required)", nil), name)
	bChoose(t, ctx, bWait(t, ctx, "engine field", "combobox", "engine (required)", nil), "woocommerce")
	bChoose(t, ctx, bWait(t, ctx, "plan field", "combobox", "plan (required)", nil), "basic")
	bTypeInto(t, ctx, bWait(t, ctx, "admin email", "textbox", "adminEmail", nil), "owner@example.com")
	bClick(t, ctx, bWait(t, ctx, "create button", "button", "Create store", nil))
	bWait(t, ctx, "the store's page", "heading", name, nil)

	// The list, loaded once: every phase text the row shows from now on is recorded
	// by the page itself, so a phase shown for a moment between two polls counts.
	nav(t, ctx, a.URL+"/#/")
	row := bWait(t, ctx, "row of "+name, "rowheader", name, nil)
	bCall(t, ctx, row, `function() {
		const tr = this.parentElement; window.seenPhases = [];
		const note = () => { const p = tr.cells[4].innerText.trim(); if (window.seenPhases.at(-1) !== p) window.seenPhases.push(p); };
		note(); new MutationObserver(note).observe(tr, {subtree: true, childList: true, characterData: true}); }`)
	bWait(t, ctx, name+" ready in the list", "rowheader", name, func(n *accessibility.Node) bool {
		return lastPhase(t, ctx, n) == "ready"
	})
	seen := strings.Split(bCall(t, ctx, row, `function() { return window.seenPhases.join(" "); }`), " ")
	t.Logf("phases the row showed: %v", seen)
	// Live: the row changed under the person's eyes, through at least one of Flux's
	// steps, without a reload (a reload would have dropped the recording).
	way := []string{"requested", "committed", "sourceFetched", "applied", "installing", "ready"}
	if len(seen) < 2 || seen[len(seen)-1] != "ready" {
		t.Fatalf("the row showed %v; want steps before ready, shown live", seen)
	}
	for _, p := range seen {
		if !slices.Contains(way, p) {
			t.Fatalf("the row showed %q on the way to ready (%v)", p, seen)
		}
	}

	// The store's page: a plan change shows its diff before it is confirmed.
	bClick(t, ctx, bWait(t, ctx, "link to "+name, "link", name, nil))
	bWait(t, ctx, "the timeline", "list", "Steps", nil)
	bChoose(t, ctx, bWait(t, ctx, "plan select", "combobox", "New plan", nil), "standard")
	bClick(t, ctx, bWait(t, ctx, "preview button", "button", "Preview change", nil))
	preview := bWait(t, ctx, "the diff", "region", "Changes to confirm", nil)
	if diff := bText(t, ctx, preview); !strings.Contains(diff, "+") || !strings.Contains(diff, "standard") {
		t.Fatalf("the preview shows no diff to the standard plan:\n%s", diff)
	}
	if p := planOf(t, a, name); p != "basic" {
		t.Fatalf("the plan changed before the confirmation: %s", p)
	}
	before := a.get(t, name).Status.Generation
	bClick(t, ctx, bWait(t, ctx, "confirm button", "button", "Confirm change", nil))
	// Flux upgrades the release to the new generation. Here the upgrade is refused:
	// a bigger plan expands the store's volume claims, and the API server allows
	// that only for bound claims, which nothing binds in the test environment (no
	// provisioner; helm-controller says "PersistentVolumeClaim ... is invalid: spec:
	// Forbidden"). So the page must show what Flux decided — the phase with Flux's
	// reason (UpgradeFailed while helm-controller retries) — as it would show ready
	// on a cluster with expandable storage.
	var outcome storeView
	bWait(t, ctx, "the plan change's outcome", "region", "Status", func(n *accessibility.Node) bool {
		outcome = a.get(t, name)
		st := outcome.Status
		if st.Generation <= before || st.Phase != "ready" && !strings.Contains(st.Reason, "Fail") {
			return false
		}
		return phaseShown(t, ctx, n) == st.Phase && strings.Contains(bText(t, ctx, n), st.Reason)
	})
	t.Logf("after the plan change: %s %s %s", outcome.Status.Phase, outcome.Status.Reason, outcome.Status.Message)
	if p := planOf(t, a, name); p != "standard" {
		t.Fatalf("plan %s after the confirmed change", p)
	}
	bWait(t, ctx, "the plan in the facts", "definition", "", func(n *accessibility.Node) bool {
		return bText(t, ctx, n) == "standard"
	})
	// The history shows the change's diff on demand.
	change := a.history(t, name)[0].Commit.SHA[:10]
	bClick(t, ctx, bWait(t, ctx, "the plan change's diff button", "button", "Changes of "+change, nil))
	if d := bText(t, ctx, bWait(t, ctx, "the plan change's diff", "region", "Changes in "+change, nil)); !strings.Contains(d, "standard") || !strings.Contains(d, "+") {
		t.Fatalf("the history's diff of the plan change:\n%s", d)
	}

	// Delete keeps the data; Flux uninstalls, the page shows retained.
	bClick(t, ctx, bWait(t, ctx, "delete button", "button", "Delete store", nil))
	bWait(t, ctx, "retained", "region", "Status", func(n *accessibility.Node) bool {
		return phaseShown(t, ctx, n) == "retained"
	})
	purge := bWait(t, ctx, "purge button", "button", "Purge data", nil)
	if got := bCall(t, ctx, purge, `function() { return String(this.disabled); }`); got != "true" {
		t.Fatal("purge is possible without typing the name")
	}
	bTypeInto(t, ctx, bWait(t, ctx, "purge confirmation", "textbox", "Type "+name+" to confirm", nil), name)
	bClick(t, ctx, bWait(t, ctx, "purge button", "button", "Purge data", nil))
	// With a cluster, gitops-api finishes the purge itself: the store is gone.
	bWait(t, ctx, "purged", "paragraph", "", func(n *accessibility.Node) bool {
		return bText(t, ctx, n) == "This store is gone: purged."
	})
	// The folder's removal comes first (the 404 above); Flux then prunes the
	// namespace, and the page's status follows the stream to deleted.
	bWait(t, ctx, "deleted", "region", "Status", func(n *accessibility.Node) bool {
		return phaseShown(t, ctx, n) == "deleted"
	})
	a.do(t, http.MethodGet, "/api/v1/stores/"+name, nil, http.StatusNotFound)
	wantNamespaceGone(t, name)

	nav(t, ctx, a.URL+"/#/")
	bWait(t, ctx, "the list again", "table", "Stores and their phases", nil)
	if nodes, err := axFind(ctx, "rowheader", name); err != nil || len(nodes) != 0 {
		t.Fatalf("the purged store still has a row (%d, %v)", len(nodes), err)
	}
}

// phaseShown is the phase the Status region shows: the line after its "Phase"
// term (the region's timeline names steps that share the phases' words).
func phaseShown(t *testing.T, ctx context.Context, region *accessibility.Node) string {
	lines := strings.Split(bText(t, ctx, region), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "Phase" && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return ""
}

func planOf(t testing.TB, a *gitopsAPI, name string) string {
	t.Helper()
	var v struct {
		Plan string `json:"plan"`
	}
	if err := json.Unmarshal(a.do(t, http.MethodGet, "/api/v1/stores/"+name, nil, http.StatusOK), &v); err != nil {
		t.Fatal(err)
	}
	return v.Plan
}

func lastPhase(t *testing.T, ctx context.Context, rowHeader *accessibility.Node) string {
	return strings.TrimSpace(bCall(t, ctx, rowHeader, `function() { return this.parentElement.cells[4].innerText; }`))
}

// chromium starts Debian's chromium headless; without it the test fails saying
// what to install (a browser test that skips would pass without a browser).
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed: make deps installs it (mk/dashboard.mk)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	// A bound on the whole scenario so that a page that never shows what is
	// awaited fails instead of hanging; Flux installs, upgrades and uninstalls in
	// it, so it is generous. Nothing is asserted about durations.
	ctx, cancel3 := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

func nav(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
}

// axFind returns the nodes with this role and accessible name (any name when
// empty): what a screen reader announces, not how the page is styled.
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

// bWait polls until a node with the role and name exists that ok accepts (nil: any).
func bWait(t *testing.T, ctx context.Context, what, role, name string, ok func(*accessibility.Node) bool) *accessibility.Node {
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
			last = fmt.Sprintf("%s %q seen, not as wanted", role, name)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: never seen (last: %s); logs in %s", what, last, env.LogDir)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// bCall runs fn (a JavaScript function) with the node as this and returns its result.
func bCall(t *testing.T, ctx context.Context, n *accessibility.Node, fn string, args ...any) string {
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

func bClick(t *testing.T, ctx context.Context, n *accessibility.Node) {
	t.Helper()
	bCall(t, ctx, n, `function() { this.focus(); this.click(); }`)
}

// bTypeInto focuses the field and types as a keyboard does (input events fire).
func bTypeInto(t *testing.T, ctx context.Context, n *accessibility.Node, text string) {
	t.Helper()
	bCall(t, ctx, n, `function() { this.focus(); this.select && this.select(); }`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(text)); err != nil {
		t.Fatal(err)
	}
}

func bChoose(t *testing.T, ctx context.Context, n *accessibility.Node, option string) {
	t.Helper()
	got := bCall(t, ctx, n, `function(v) { this.focus(); this.value = v; this.dispatchEvent(new Event('input', {bubbles: true}));
		this.dispatchEvent(new Event('change', {bubbles: true})); return this.value; }`, option)
	if got != option {
		t.Fatalf("select has no option %q", option)
	}
}

func bText(t *testing.T, ctx context.Context, n *accessibility.Node) string {
	t.Helper()
	return strings.TrimSpace(bCall(t, ctx, n, `function() { return this.innerText; }`))
}
