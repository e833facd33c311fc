package dashboard_test

import (
	"context"
	"encoding/json"
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

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/dashboard"
	"github.com/storefleet/storefleet/internal/dashboard/browsertest"
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

// TestBrowser walks a store's life in each supported browser as a person would: a
// bad name shows its error at the field, a create shows its phases live in the list
// and reaches ready, a store waiting on a pull request links to it, a plan change
// shows its diff before it is confirmed, and delete then purge need their
// confirmations.
func TestBrowser(t *testing.T) {
	for _, b := range browsertest.Browsers {
		t.Run(b, func(t *testing.T) { browse(t, b) })
	}
}

func browse(t *testing.T, browser string) {
	s := newStack(t)
	p := browsertest.Start(t, browser, 90*time.Second)
	// Other stores first, so the list shows rows that the stream must not mix up;
	// pending's next change will wait on a pull request.
	for _, name := range []string{"other", "pending"} {
		body := `{"name":"` + name + `","engine":"medusa","plan":"basic","settings":{"adminEmail":"o@example.com"}}`
		resp, err := http.Post(s.srv.URL+"/api/v1/stores", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("create %s: %d", name, resp.StatusCode)
		}
	}

	// The create form, from the OpenAPI schema; a bad name's error at the name field.
	p.Open(s.srv.URL + "/#/new")
	name := p.Wait("name field", "textbox", "name (required)", nil)
	p.TypeInto(name, "Bad_Name")
	p.Choose(p.Wait("engine field", "combobox", "engine (required)", nil), "woocommerce")
	p.Choose(p.Wait("plan field", "combobox", "plan (required)", nil), "basic")
	p.TypeInto(p.Wait("admin email", "textbox", "adminEmail", nil), "owner@example.com")
	p.Click(p.Wait("create button", "button", "Create store", nil))
	bad := p.Wait("the name field's error", "textbox", "name (required)", func(el browsertest.Element) bool {
		p.Shown = p.Description(el)
		return strings.Contains(p.Shown, "rule dns1123Label")
	})
	if got := p.Attr(bad, "aria-invalid"); got != "true" {
		t.Fatalf("the bad name field is not marked invalid: %q", got)
	}
	p.Screenshot("dashboard-create-error.png")

	p.TypeInto(bad, "shop")
	p.Click(p.Wait("create button", "button", "Create store", nil))
	p.Wait("the store's page", "heading", "shop", nil)

	// The list: each row's phase, then shop's phases change live as Flux works.
	p.Open(s.srv.URL + "/#/")
	rowOf := func(el browsertest.Element) string {
		return p.Call(el, `function() { return this.parentElement.innerText; }`)
	}
	waitRow := func(store, phase string) {
		t.Helper()
		p.Wait(store+" "+phase, "rowheader", store, func(el browsertest.Element) bool {
			row := rowOf(el)
			p.Shown = row
			return strings.Contains(row, "\t"+phase+"\t") || strings.HasSuffix(strings.TrimSpace(row), phase)
		})
	}
	waitRow("shop", "committed")
	waitRow("other", "committed")
	// A change sent to review: the row links to its pull request as it happens,
	// showing the number and announcing what it is.
	pr := store.Review{Required: true, URL: "https://github.com/acme/fleet/pull/12", Number: 12, Branch: "storefleet/pending", Checks: "pending"}
	s.tr.Reviewing("pending", pr, store.RequestAwaitingApproval)
	const prName = "Pull request #12 (awaiting approval)"
	marker := p.Wait("pending's pull request in its row", "link", prName, nil)
	if got := p.Attr(marker, "href"); got != pr.URL {
		t.Fatalf("the pull request's link goes to %q, want %q", got, pr.URL)
	}
	if got := p.Call(marker, `function() { return this.closest('tr').querySelector('th').innerText; }`); got != "pending" {
		t.Fatalf("the pull request's link is in the row of %q", got)
	}
	waitRow("pending", "awaiting-approval")
	s.fluxApplies(t, "shop")
	waitRow("shop", "applied")
	s.tr.SetRelease("shop", &status.Release{Generation: 1, ChartVersion: "0.1.0"})
	waitRow("shop", "installing")
	s.tr.SetRelease("shop", &status.Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", Installed: true,
		Ready: &status.Condition{Status: "True", Reason: "InstallSucceeded"}})
	waitRow("shop", "ready")
	if row := rowOf(p.Wait("row of other", "rowheader", "other", nil)); !strings.Contains(row, "committed") {
		t.Fatalf("other's row changed with shop's events: %q", row)
	}
	// Bad states plainly: other fails with Flux's reason; a lost cluster shows unknown.
	s.fluxApplies(t, "other")
	s.tr.SetRelease("other", &status.Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", InstallFailures: 1,
		Ready: &status.Condition{Status: "False", Reason: "InstallFailed", Message: "timed out waiting for the condition"}})
	p.Wait("other failed with its reason", "rowheader", "other", func(el browsertest.Element) bool {
		p.Shown = rowOf(el)
		return strings.Contains(p.Shown, "failed") && strings.Contains(p.Shown, "InstallFailed")
	})
	p.Screenshot("dashboard-list.png")
	s.tr.SetConnected(false)
	waitRow("shop", "unknown")
	s.tr.SetConnected(true)
	waitRow("shop", "ready")

	// The filters are the server's (?q=, which pages the matches): a part of
	// other's name leaves its row alone, and shop's goes.
	p.TypeInto(p.Wait("text filter", "searchbox", "Name, domain or title contains", nil), "oth")
	p.Click(p.Wait("filter button", "button", "Filter", nil))
	p.Wait("one match", "status", "", func(el browsertest.Element) bool {
		p.Shown = p.Text(el)
		return p.Shown == "1 stores on this page."
	})
	if els := p.Find("rowheader", "shop"); len(els) != 0 {
		t.Fatalf("shop is still listed under the filter oth (%d rows)", len(els))
	}
	p.Wait("row of other", "rowheader", "other", nil)
	p.Open(s.srv.URL + "/#/")

	// pending's page names the pull request in its status, as a link to it.
	p.Click(p.Wait("link to pending", "link", "pending", nil))
	p.Wait("pending's page", "heading", "pending", nil)
	link := p.Wait("the pull request on pending's page", "link", prName, nil)
	if got := p.Attr(link, "href"); got != pr.URL {
		t.Fatalf("the pull request's link goes to %q, want %q", got, pr.URL)
	}
	if got := p.Call(link, `function() { return this.closest('section').querySelector('h2').innerText; }`); got != "Status" {
		t.Fatalf("the pull request's link is in the section %q, want Status", got)
	}
	p.Open(s.srv.URL + "/#/")

	// The store's page: its timeline, then a plan change previewed before it is confirmed.
	p.Click(p.Wait("link to shop", "link", "shop", nil))
	p.Wait("the timeline", "list", "Steps", nil)
	p.Screenshot("dashboard-store.png")
	p.Choose(p.Wait("plan select", "combobox", "New plan", nil), "standard")
	p.Click(p.Wait("preview button", "button", "Preview change", nil))
	diff := p.Text(p.Wait("the diff", "region", "Changes to confirm", nil))
	if !strings.Contains(diff, "+") || !strings.Contains(diff, "standard") {
		t.Fatalf("the preview shows no diff to the standard plan:\n%s", diff)
	}
	if got := planOf(t, s, "shop"); got != "basic" {
		t.Fatalf("the plan changed before the confirmation: %s", got)
	}
	p.Click(p.Wait("confirm button", "button", "Confirm change", nil))
	p.Until("the confirmed change lands", func() bool { return planOf(t, s, "shop") == "standard" })
	// The history shows each change's diff on demand: the plan change's names the
	// new plan.
	change := s.commitOf(t, "shop")[:10]
	p.Click(p.Wait("the plan change's diff button", "button", "Changes of "+change, nil))
	hist := p.Wait("the plan change's diff", "region", "Changes in "+change, nil)
	if d := p.Text(hist); !strings.Contains(d, "+") || !strings.Contains(d, "standard") || !strings.Contains(d, "modify") {
		t.Fatalf("the history's diff of the plan change:\n%s", d)
	}

	// Delete keeps the data; purge wants the name typed.
	p.Click(p.Wait("delete button", "button", "Delete store", nil))
	s.fluxApplies(t, "shop")
	s.tr.SetRelease("shop", nil)
	s.tr.SetNamespace("shop", true)
	p.Wait("retained", "region", "Status", func(el browsertest.Element) bool {
		p.Shown = p.Text(el)
		return strings.Contains(p.Shown, "retained")
	})
	purge := p.Wait("purge button", "button", "Purge data", nil)
	if got := p.Call(purge, `function() { return String(this.disabled); }`); got != "true" {
		t.Fatal("purge is possible without typing the name")
	}
	p.TypeInto(p.Wait("purge confirmation", "textbox", "Type shop to confirm", nil), "shop")
	p.Click(p.Wait("purge button", "button", "Purge data", nil))
	p.Wait("purging", "region", "Status", func(el browsertest.Element) bool {
		p.Shown = p.Text(el)
		return strings.Contains(p.Shown, "purging")
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
