package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/dashboard/browsertest"
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
	// A gitops-api that has just started shows every store unknown until its watches
	// have listed once (it may be this test that starts it): the walk begins once it
	// is connected, as a person's visit would.
	waitFor(t, time.Minute, func() (bool, string) {
		var ready map[string]string
		_ = json.Unmarshal(a.do(t, http.MethodGet, "/readyz", nil, http.StatusOK), &ready)
		return ready["cluster"] == "connected", "readyz: " + ready["cluster"]
	})
	// A bound on the whole scenario so that a page that never shows what is awaited
	// fails instead of hanging; Flux installs, upgrades and uninstalls in it, so it
	// is generous. Nothing is asserted about durations. Chromium only: the
	// scenario's cost is the cluster's, and internal/dashboard's TestBrowser runs
	// the page in every supported browser.
	p := browsertest.Start(t, "chromium", 5*time.Minute)
	p.OnFail = "; logs in " + env.LogDir
	const name = "browsed"

	p.Open(a.URL + "/#/new")
	p.TypeInto(p.Wait("name field", "textbox", "name (required)", nil), name)
	p.Choose(p.Wait("engine field", "combobox", "engine (required)", nil), "woocommerce")
	p.Choose(p.Wait("plan field", "combobox", "plan (required)", nil), "basic")
	p.TypeInto(p.Wait("admin email", "textbox", "adminEmail", nil), "owner@example.com")
	p.Click(p.Wait("create button", "button", "Create store", nil))
	p.Wait("the store's page", "heading", name, nil)

	// The list, loaded once: every phase text the row shows from now on is recorded
	// by the page itself, so a phase shown for a moment between two polls counts.
	p.Open(a.URL + "/#/")
	row := p.Wait("row of "+name, "rowheader", name, nil)
	p.Call(row, `function() {
		const tr = this.parentElement; window.seenPhases = [];
		const note = () => { const p = tr.cells[4].innerText.trim(); if (window.seenPhases.at(-1) !== p) window.seenPhases.push(p); };
		note(); new MutationObserver(note).observe(tr, {subtree: true, childList: true, characterData: true}); }`)
	p.Wait(name+" ready in the list", "rowheader", name, func(n browsertest.Element) bool {
		return lastPhase(p, n) == "ready"
	})
	seen := strings.Split(p.Call(row, `function() { return window.seenPhases.join(" "); }`), " ")
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
	p.Click(p.Wait("link to "+name, "link", name, nil))
	p.Wait("the timeline", "list", "Steps", nil)
	p.Choose(p.Wait("plan select", "combobox", "New plan", nil), "standard")
	p.Click(p.Wait("preview button", "button", "Preview change", nil))
	preview := p.Wait("the diff", "region", "Changes to confirm", nil)
	if diff := p.Text(preview); !strings.Contains(diff, "+") || !strings.Contains(diff, "standard") {
		t.Fatalf("the preview shows no diff to the standard plan:\n%s", diff)
	}
	if p := planOf(t, a, name); p != "basic" {
		t.Fatalf("the plan changed before the confirmation: %s", p)
	}
	before := a.get(t, name).Status.Generation
	p.Click(p.Wait("confirm button", "button", "Confirm change", nil))
	// Flux upgrades the release to the new generation. Here the upgrade is refused:
	// a bigger plan expands the store's volume claims, and the API server allows
	// that only for bound claims, which nothing binds in the test environment (no
	// provisioner; helm-controller says "PersistentVolumeClaim ... is invalid: spec:
	// Forbidden"). So the page must show what Flux decided — the phase with Flux's
	// reason (UpgradeFailed while helm-controller retries) — as it would show ready
	// on a cluster with expandable storage.
	var outcome storeView
	p.Wait("the plan change's outcome", "region", "Status", func(n browsertest.Element) bool {
		outcome = a.get(t, name)
		st := outcome.Status
		if st.Generation <= before || st.Phase != "ready" && !strings.Contains(st.Reason, "Fail") {
			return false
		}
		return phaseShown(p, n) == st.Phase && strings.Contains(p.Text(n), st.Reason)
	})
	t.Logf("after the plan change: %s %s %s", outcome.Status.Phase, outcome.Status.Reason, outcome.Status.Message)
	if p := planOf(t, a, name); p != "standard" {
		t.Fatalf("plan %s after the confirmed change", p)
	}
	p.Wait("the plan in the facts", "definition", "", func(n browsertest.Element) bool {
		return p.Text(n) == "standard"
	})
	// The history shows the change's diff on demand.
	change := a.history(t, name)[0].Commit.SHA[:10]
	p.Click(p.Wait("the plan change's diff button", "button", "Changes of "+change, nil))
	if d := p.Text(p.Wait("the plan change's diff", "region", "Changes in "+change, nil)); !strings.Contains(d, "standard") || !strings.Contains(d, "+") {
		t.Fatalf("the history's diff of the plan change:\n%s", d)
	}

	// Delete keeps the data; Flux uninstalls, the page shows retained.
	p.Click(p.Wait("delete button", "button", "Delete store", nil))
	p.Wait("retained", "region", "Status", func(n browsertest.Element) bool {
		return phaseShown(p, n) == "retained"
	})
	purge := p.Wait("purge button", "button", "Purge data", nil)
	if got := p.Call(purge, `function() { return String(this.disabled); }`); got != "true" {
		t.Fatal("purge is possible without typing the name")
	}
	p.TypeInto(p.Wait("purge confirmation", "textbox", "Type "+name+" to confirm", nil), name)
	p.Click(p.Wait("purge button", "button", "Purge data", nil))
	// With a cluster, gitops-api finishes the purge itself: the store is gone.
	p.Wait("purged", "paragraph", "", func(n browsertest.Element) bool {
		return p.Text(n) == "This store is gone: purged."
	})
	// The folder's removal comes first (the 404 above); Flux then prunes the
	// namespace, and the page's status follows the stream to deleted.
	p.Wait("deleted", "region", "Status", func(n browsertest.Element) bool {
		return phaseShown(p, n) == "deleted"
	})
	a.do(t, http.MethodGet, "/api/v1/stores/"+name, nil, http.StatusNotFound)
	wantNamespaceGone(t, name)

	p.Open(a.URL + "/#/")
	p.Wait("the list again", "table", "Stores and their phases", nil)
	if els := p.Find("rowheader", name); len(els) != 0 {
		t.Fatalf("the purged store still has a row (%d)", len(els))
	}
}

// phaseShown is the phase the Status region shows: the line after its "Phase"
// term (the region's timeline names steps that share the phases' words).
func phaseShown(p *browsertest.Page, region browsertest.Element) string {
	lines := strings.Split(p.Text(region), "\n")
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

func lastPhase(p *browsertest.Page, rowHeader browsertest.Element) string {
	return strings.TrimSpace(p.Call(rowHeader, `function() { return this.parentElement.cells[4].innerText; }`))
}
