package github_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/github"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/review"
	"github.com/storefleet/storefleet/internal/store"
)

const secret = "webhook-secret-for-tests"

// stack is gitops-api's write path with review: the lifecycle over the GitHub
// writer over the real Git writer, pushing to a real Git server on loopback.
type stack struct {
	bare   string
	repo   *gitrepo.Repo
	writer *github.Writer
	svc    *fleet.Service
	gh     *fakeGitHub
	merged atomic.Int32
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx := context.Background()
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
	if _, err := gitrepo.Seed(ctx, bare, "main", skel, gitrepo.Signature{}); err != nil {
		t.Fatal(err)
	}
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: srv.URL() + "/fleet.git"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	s := &stack{bare: bare, repo: repo, gh: newFakeGitHub(t)}
	s.writer = s.newWriter(t)
	s.svc = s.newService(t, s.writer)
	return s
}

func (s *stack) newWriter(t testing.TB) *github.Writer {
	t.Helper()
	return s.newWriterWith(t, github.Credentials{Token: "ghp_test_token"})
}

func (s *stack) newWriterWith(t testing.TB, cr github.Credentials) *github.Writer {
	t.Helper()
	policy, err := review.Parse([]byte("rules:\n  - name: premium\n    plans: [premium]\n  - name: purges\n    actions: [purge]\n"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := github.NewClient(s.gh.srv.URL, cr, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := github.New(github.Config{
		Repository: gitrepo.Fleet{R: s.repo}, Branches: gitrepo.Fleet{R: s.repo}, Policy: policy, Client: client,
		Owner: "fleet-owner", Name: "fleet", Base: "main", Labels: []string{"fleet-review"}, Secret: []byte(secret), Log: testLog(t),
		Merged: func(ctx context.Context) {
			if err := s.repo.Refresh(ctx); err == nil {
				s.merged.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func (s *stack) newService(t testing.TB, repo store.Repository) *fleet.Service {
	t.Helper()
	svc, err := fleet.New(context.Background(), fleet.Config{Repo: repo, Renderer: render.Renderer{Options: render.LocalOptions()},
		Cluster: "local", BaseDomain: "stores.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func premium(name string) store.Store {
	return store.Store{Name: name, Engine: store.WooCommerce, Plan: store.Premium,
		Settings: store.Settings{AdminEmail: "owner@example.com"}}
}

func meta(id string) store.Meta {
	return store.Meta{Actor: "alice@example.com", RequestID: id, ClientKey: true}
}

func TestPremiumCreateOpensOnePullRequest(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	mainBefore := git(t, s.bare, "rev-parse", "main")
	out, err := s.svc.Create(ctx, premium("big"), meta("req-big"))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != store.RequestAwaitingApproval || out.Phase != store.PhaseAwaitingApproval || out.Review == nil {
		t.Fatalf("outcome %+v", out)
	}
	if out.Review.URL != "https://github.example/fleet-owner/fleet/pull/1" || out.Review.Branch != "storefleet/big/req-big" {
		t.Fatalf("review %+v", out.Review)
	}
	if got := git(t, s.bare, "rev-parse", "main"); got != mainBefore {
		t.Fatal("the fleet's branch moved before review")
	}
	if got := git(t, s.bare, "rev-parse", "storefleet/big/req-big"); got != out.Review.Commit {
		t.Fatalf("branch at %s, review says %s", got, out.Review.Commit)
	}
	body := s.gh.prs[0]["body"].(string)
	for _, want := range []string{"| Store | `big` |", "| Action | `create` |", "| Plan | `premium` |", "| Tenant | `default` |",
		"| Requested by | `alice@example.com` |", "| Request id | `req-big` |", "+++ b/stores/local/", "+  name: store-big"} {
		if !strings.Contains(body, want) {
			t.Errorf("pull request body lacks %q:\n%s", want, body)
		}
	}
	if got := strings.Join(s.gh.labels[1], ","); got != "fleet-review,storefleet:create" {
		t.Errorf("labels %q", got)
	}
	if a := s.gh.auth[0]; a != "Bearer ghp_test_token" {
		t.Errorf("authorization %q", a)
	}

	// A retry with the same key: the same pull request, none opened again.
	again, err := s.svc.Create(ctx, premium("big"), meta("req-big"))
	if err != nil || again.Review == nil || again.Review.Number != 1 {
		t.Fatalf("retry: %+v, %v", again, err)
	}
	// After a restart that forgot it: found again on GitHub.
	w2 := s.newWriter(t)
	svc2 := s.newService(t, w2)
	again, err = svc2.Create(ctx, premium("big"), meta("req-big"))
	if err != nil || again.Review == nil || again.Review.Number != 1 {
		t.Fatalf("retry after restart: %+v, %v", again, err)
	}
	if s.gh.creates != 1 {
		t.Fatalf("%d pull requests opened for one request", s.gh.creates)
	}
}

func TestAlreadyExistsIsSuccess(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if _, err := s.svc.Create(ctx, premium("dup"), meta("req-dup")); err != nil {
		t.Fatal(err)
	}
	// Forget it here, and let GitHub's list miss it once: the create answers 422
	// "already exists", which must end in the same pull request.
	svc2 := s.newService(t, s.newWriter(t))
	s.gh.mu.Lock()
	s.gh.hideFromList = 1
	s.gh.mu.Unlock()
	out, err := svc2.Create(ctx, premium("dup"), meta("req-dup"))
	if err != nil || out.Review == nil || out.Review.Number != 1 {
		t.Fatalf("422 already exists: %+v, %v", out, err)
	}
}

func TestSecondChangeWhileOpenIsRefusedNamingThePullRequest(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	basic := premium("shop")
	basic.Plan = store.Basic
	if _, err := s.svc.Create(ctx, basic, meta("req-1")); err != nil {
		t.Fatal(err)
	}
	out, err := s.svc.Update(ctx, "shop", func(st store.Store) (store.Store, error) { st.Plan = store.Premium; return st, nil }, meta("req-2"))
	if err != nil || out.State != store.RequestAwaitingApproval {
		t.Fatalf("premium update: %+v, %v", out, err)
	}
	_, err = s.svc.Update(ctx, "shop", func(st store.Store) (store.Store, error) {
		st.Settings.Title = "another"
		return st, nil
	}, meta("req-3"))
	if store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(err.Error(), out.Review.URL) {
		t.Fatalf("second change while the pull request is open: %v", err)
	}
}

func TestDirectChangesStayDirect(t *testing.T) {
	s := newStack(t)
	basic := premium("small")
	basic.Plan = store.Basic
	out, err := s.svc.Create(context.Background(), basic, meta("req-small"))
	if err != nil || out.State != store.RequestCommitted || out.Review != nil {
		t.Fatalf("%+v, %v", out, err)
	}
	if got := git(t, s.bare, "rev-parse", "main"); got != out.Commit.SHA {
		t.Fatalf("main at %s, commit %s", got, out.Commit.SHA)
	}
	if len(s.gh.prs) != 0 {
		t.Fatal("a pull request for a change the policy does not name")
	}
}

func TestGitHubDownOrRateLimitingIsUnavailableAndResumable(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusForbidden} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			s := newStack(t)
			ctx := context.Background()
			mainBefore := git(t, s.bare, "rev-parse", "main")
			s.gh.mu.Lock()
			s.gh.fail, s.gh.failN = code, 1
			s.gh.mu.Unlock()
			_, err := s.svc.Create(ctx, premium("later"), meta("req-later"))
			if store.ErrorCode(err) != store.EUNAVAILABLE {
				t.Fatalf("GitHub answering %d: %v", code, err)
			}
			if code == http.StatusForbidden && store.ErrorRetryAfter(err) != time.Second {
				t.Fatalf("GitHub's Retry-After not carried: %s", store.ErrorRetryAfter(err))
			}
			if strings.Contains(err.Error(), "ghp_test_token") {
				t.Fatal("the token is in the error")
			}
			if got := git(t, s.bare, "rev-parse", "main"); got != mainBefore {
				t.Fatal("the fleet's branch moved")
			}
			if code == http.StatusForbidden {
				// A secondary rate limit is honoured: until its Retry-After the
				// client does not ask GitHub at all.
				s.gh.mu.Lock()
				before := s.gh.requests
				s.gh.mu.Unlock()
				if _, err := s.svc.Create(ctx, premium("later"), meta("req-later")); store.ErrorCode(err) != store.EUNAVAILABLE {
					t.Fatalf("within the Retry-After: %v", err)
				}
				s.gh.mu.Lock()
				after := s.gh.requests
				s.gh.mu.Unlock()
				if after != before {
					t.Fatalf("%d requests to GitHub within its Retry-After", after-before)
				}
				time.Sleep(1100 * time.Millisecond) // the fake's Retry-After: 1
			}
			out, err := s.svc.Create(ctx, premium("later"), meta("req-later"))
			if err != nil || out.Review == nil || out.Review.Number != 1 {
				t.Fatalf("resumed: %+v, %v", out, err)
			}
		})
	}
}

func sign(payload []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(payload)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestWebhookRefusesUnsignedForgedAndSHA1Only(t *testing.T) {
	s := newStack(t)
	payload := []byte(`{"action":"closed","number":1}`)
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(payload)
	for name, sig := range map[string]string{
		"unsigned":  "",
		"sha1 only": "sha1=" + hex.EncodeToString(m.Sum(nil)),
		"forged":    sign([]byte(`{"action":"opened"}`)),
		"garbage":   "sha256=zz",
	} {
		err := s.writer.Receive(context.Background(), store.Delivery{Event: "pull_request", ID: "d-" + name, Signature: sig, Payload: payload})
		if store.ErrorCode(err) != store.EUNAUTHORIZED {
			t.Errorf("%s delivery: %v", name, err)
		}
	}
	if err := s.writer.Receive(context.Background(), store.Delivery{Event: "ping", ID: "d-ok", Signature: sign(payload), Payload: payload}); err != nil {
		t.Fatalf("a signed delivery: %v", err)
	}
}

// mergeOnServer merges branch into main with real git, as GitHub's squash button.
func mergeOnServer(t *testing.T, bare, branch string) {
	t.Helper()
	wt := filepath.Join(t.TempDir(), "wt")
	git(t, filepath.Dir(wt), "clone", "-q", "--branch", "main", bare, wt)
	git(t, wt, "config", "user.name", "Reviewer")
	git(t, wt, "config", "user.email", "reviewer@example.com")
	git(t, wt, "fetch", "-q", "origin", branch)
	msg := git(t, wt, "log", "-1", "--format=%B", "FETCH_HEAD")
	title, body, _ := strings.Cut(msg, "\n")
	git(t, wt, "merge", "-q", "--squash", "FETCH_HEAD")
	git(t, wt, "commit", "-q", "-m", title+" (#1)\n"+body)
	git(t, wt, "push", "-q", "origin", "main")
}

func deliver(t *testing.T, w *github.Writer, id string, payload []byte) {
	t.Helper()
	deliverEvent(t, w, "pull_request", id, payload)
}

func deliverEvent(t *testing.T, w *github.Writer, event, id string, payload []byte) {
	t.Helper()
	if err := w.Receive(context.Background(), store.Delivery{Event: event, ID: id, Signature: sign(payload), Payload: payload}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

func TestMergedThenRejected(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	out, err := s.svc.Create(ctx, premium("yes"), meta("req-yes"))
	if err != nil {
		t.Fatal(err)
	}
	mergeOnServer(t, s.bare, out.Review.Branch)
	payload := s.gh.close(out.Review.Number, true)
	deliver(t, s.writer, "delivery-1", payload)
	deliver(t, s.writer, "delivery-1", payload) // redelivered: ignored
	waitFor(t, "the merge is fetched", func() bool { return s.merged.Load() > 0 })
	if n := s.merged.Load(); n != 1 {
		t.Fatalf("a redelivered merge was processed %d times", n)
	}
	// The follower's job in serve; here the index is told directly.
	s.svc.Refreshed(ctx, []string{store.Dir("local", "yes")})
	v, err := s.svc.Get(ctx, "yes")
	if err != nil || v.Store.Plan != store.Premium {
		t.Fatalf("merged store: %+v, %v", v, err)
	}
	hist, err := s.svc.History(ctx, "yes")
	if err != nil || len(hist) != 1 || hist[0].RequestID != "req-yes" || hist[0].Actor != "alice@example.com" || hist[0].Action != store.ActionCreate {
		t.Fatalf("history after a squash merge: %+v, %v", hist, err)
	}
	if f, err := s.writer.FindRequest(ctx, "req-yes"); err != nil || f.State != store.RequestCommitted {
		t.Fatalf("merged request: %+v, %v", f, err)
	}

	// Closed without merge: rejected, nothing on main, and the store is free again.
	mainBefore := git(t, s.bare, "rev-parse", "main")
	no, err := s.svc.Create(ctx, premium("no"), meta("req-no"))
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s.writer, "delivery-2", s.gh.close(no.Review.Number, false))
	waitFor(t, "the request is rejected", func() bool {
		f, err := s.writer.FindRequest(ctx, "req-no")
		return err == nil && f.State == store.RequestRejected
	})
	if got := git(t, s.bare, "rev-parse", "main"); got != mainBefore {
		t.Fatal("a rejected change reached the fleet's branch")
	}
	// Both proposal branches, merged and rejected, are gone from the remote.
	waitFor(t, "the proposal branches are deleted", func() bool {
		return git(t, s.bare, "for-each-ref", "refs/heads/storefleet/") == ""
	})
	if _, err := s.svc.Get(ctx, "no"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Fatalf("a rejected store exists: %v", err)
	}
	// A delivery for a pull request nobody here proposed is accepted and ignored.
	deliver(t, s.writer, "delivery-3", s.gh.close(1, true))
}

// The request's outcome follows its pull request: awaiting-approval, then merged
// (with the commit the merge brought) or rejected.
func TestRequestOutcomeFollowsThePullRequest(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	yes, err := s.svc.Create(ctx, premium("yes"), meta("req-yes"))
	if err != nil {
		t.Fatal(err)
	}
	no, err := s.svc.Create(ctx, premium("no"), meta("req-no"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.svc.Request(ctx, "req-yes"); err != nil || out.State != store.RequestAwaitingApproval || out.Review == nil {
		t.Fatalf("before review: %+v, %v", out, err)
	}
	mergeOnServer(t, s.bare, yes.Review.Branch)
	deliver(t, s.writer, "m", s.gh.close(yes.Review.Number, true))
	deliver(t, s.writer, "r", s.gh.close(no.Review.Number, false))
	waitFor(t, "both settled", func() bool {
		a, _ := s.svc.Request(ctx, "req-yes")
		b, _ := s.svc.Request(ctx, "req-no")
		return a.State == store.RequestCommitted && b.State == store.RequestRejected
	})
	a, _ := s.svc.Request(ctx, "req-yes")
	if a.Phase != store.PhaseMerged || a.Commit == nil || a.Commit.SHA != git(t, s.bare, "rev-parse", "main") {
		t.Fatalf("merged request: %+v (main %s)", a, git(t, s.bare, "rev-parse", "main"))
	}
	b, _ := s.svc.Request(ctx, "req-no")
	if b.Phase != store.PhaseRejected || b.Commit != nil {
		t.Fatalf("rejected request: %+v", b)
	}
}

// When the policy reviews purges, one approval covers both steps: the second
// (which gitops-api commits itself once Flux applied the first) goes straight in.
func TestPurgeUnderReviewNeedsOneApproval(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	basic := premium("gone")
	basic.Plan = store.Basic
	if _, err := s.svc.Create(ctx, basic, meta("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.Delete(ctx, "gone", false, meta("d")); err != nil {
		t.Fatal(err)
	}
	step1, err := s.svc.Delete(ctx, "gone", true, meta("p"))
	if err != nil || step1.State != store.RequestAwaitingApproval {
		t.Fatalf("purge: %+v, %v", step1, err)
	}
	mergeOnServer(t, s.bare, step1.Review.Branch)
	deliver(t, s.writer, "p-merged", s.gh.close(step1.Review.Number, true))
	waitFor(t, "the merge is fetched", func() bool { return s.merged.Load() > 0 })
	s.svc.Refreshed(ctx, []string{store.Dir("local", "gone")})
	if out := git(t, s.bare, "ls-tree", "-r", "--name-only", "main"); !strings.Contains(out, "/gone/") {
		t.Fatalf("the folder is not on main after the first step: %s", out)
	}
	m := meta("p")
	m.Continues = true
	step2, err := s.svc.Delete(ctx, "gone", true, m)
	if err != nil || step2.State != store.RequestCommitted {
		t.Fatalf("second purge step: %+v, %v", step2, err)
	}
	if len(s.gh.prs) != 1 {
		t.Fatalf("%d pull requests for one purge", len(s.gh.prs))
	}
	if out := git(t, s.bare, "ls-tree", "-r", "--name-only", "main"); strings.Contains(out, "/gone/") {
		t.Fatalf("the folder is still on main: %s", out)
	}
}

// twoProposals opens pull requests for two premium stores, "first" and "second",
// and returns their outcomes and the second branch's commit.
func twoProposals(t *testing.T, s *stack) (a, b store.Outcome, oldB string) {
	t.Helper()
	ctx := context.Background()
	a, err := s.svc.Create(ctx, premium("first"), meta("req-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err = s.svc.Create(ctx, premium("second"), meta("req-b"))
	if err != nil {
		t.Fatal(err)
	}
	return a, b, git(t, s.bare, "rev-parse", b.Review.Branch)
}

// A pull request whose base moved (another PR merged, or a direct commit pushed) is
// built again on the new tip and stays a fast-forward of main.
func TestOpenProposalFollowsItsBase(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	a, b, oldB := twoProposals(t, s)
	mergeOnServer(t, s.bare, a.Review.Branch)
	deliver(t, s.writer, "a-merged", s.gh.close(a.Review.Number, true))
	waitFor(t, "the second branch is rebuilt", func() bool {
		return git(t, s.bare, "rev-parse", b.Review.Branch) != oldB
	})
	main := git(t, s.bare, "rev-parse", "main")
	if parent := git(t, s.bare, "rev-parse", b.Review.Branch+"^"); parent != main {
		t.Fatalf("rebuilt on %s, main is %s", parent, main)
	}
	// A direct commit moves main again; GitHub's push event says so.
	basic := premium("direct")
	basic.Plan = store.Basic
	if _, err := s.svc.Create(ctx, basic, meta("req-direct")); err != nil {
		t.Fatal(err)
	}
	main = git(t, s.bare, "rev-parse", "main")
	push := []byte(`{"ref":"refs/heads/main","before":"` + git(t, s.bare, "rev-parse", "main^") + `","after":"` + main +
		`","repository":{"id":1296269,"name":"fleet","full_name":"fleet-owner/fleet"},"pusher":{"name":"storefleet"}}`)
	deliverEvent(t, s.writer, "push", "push-1", push)
	waitFor(t, "the branch follows the push", func() bool {
		return git(t, s.bare, "rev-parse", b.Review.Branch+"^") == main
	})
	// Still the same change: the second store's files and trailers.
	msg := git(t, s.bare, "log", "-1", "--format=%B", b.Review.Branch)
	if !strings.Contains(msg, "Request-Id: req-b") || !strings.Contains(msg, "Store: second") {
		t.Fatalf("rebuilt commit: %s", msg)
	}
}

// testWriter sends the writer's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Deliveries can be missed (gitops-api down, GitHub's retries spent): the poll
// finds the closed pull request, and asks with the ETag so an unchanged one is a 304.
func TestPollCatchesAMissedDelivery(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	out, err := s.svc.Create(ctx, premium("quiet"), meta("req-quiet"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.writer.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s.gh.notModified != 1 {
		t.Fatalf("%d answers 304 for an unchanged pull request polled twice, want 1", s.gh.notModified)
	}
	if f, _ := s.writer.FindRequest(ctx, "req-quiet"); f.State != store.RequestAwaitingApproval {
		t.Fatalf("still open: %+v", f)
	}
	// Reviewers asked and the checks' state show on the request.
	s.gh.requestReviewers(out.Review.Number, "octocat", "hubot")
	s.gh.mu.Lock()
	s.gh.checks = "success"
	s.gh.mu.Unlock()
	if err := s.writer.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.svc.Request(ctx, "req-quiet")
	if err != nil || got.Review == nil || strings.Join(got.Review.Reviewers, ",") != "octocat,hubot" || got.Review.Checks != "success" ||
		got.Review.URL != out.Review.URL {
		t.Fatalf("request under review: %+v (review %+v), %v", got, got.Review, err)
	}
	s.gh.close(out.Review.Number, false) // closed on GitHub; no delivery
	if err := s.writer.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.writer.FindRequest(ctx, "req-quiet"); f.State != store.RequestRejected {
		t.Fatalf("after the poll: %+v", f)
	}
}

// testLog is the writer's log in a test's output; benchmarks discard it.
func testLog(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// After a restart the open pull requests are learnt from GitHub: a change to the
// store is still refused naming its pull request, and its close is still settled.
func TestRecoverAfterRestart(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	out, err := s.svc.Create(ctx, premium("kept"), meta("req-kept"))
	if err != nil {
		t.Fatal(err)
	}
	w2 := s.newWriter(t)
	if err := w2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	basic := premium("kept")
	basic.Plan = store.Basic
	_, err = s.newService(t, w2).Create(ctx, basic, meta("req-other"))
	if store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(err.Error(), out.Review.URL) {
		t.Fatalf("a change while the recovered pull request is open: %v", err)
	}
	deliver(t, w2, "closed-after-restart", s.gh.close(out.Review.Number, false))
	waitFor(t, "the recovered request is rejected", func() bool {
		f, err := w2.FindRequest(ctx, "req-kept")
		return err == nil && f.State == store.RequestRejected
	})
}

// Content-creating calls are spaced as GitHub's secondary rate limits ask. With a
// spacing far beyond the write deadline: the first create opens its pull request
// (the labels, which would wait, are left out with a log line), the second finds no
// room and is EUNAVAILABLE with nothing sent — the limiter refuses at once rather than
// wait past the deadline.
func TestContentCreatingCallsAreSpaced(t *testing.T) {
	s := newStack(t)
	client, err := github.NewClient(s.gh.srv.URL, github.Credentials{Token: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := review.Parse([]byte("rules:\n  - name: p\n    plans: [premium]\n"))
	w, err := github.New(github.Config{Repository: gitrepo.Fleet{R: s.repo}, Branches: gitrepo.Fleet{R: s.repo}, Policy: policy,
		Client: client, Owner: "fleet-owner", Name: "fleet", Secret: []byte(secret), CreateSpacing: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	svc, err := fleet.New(context.Background(), fleet.Config{Repo: w, Renderer: render.Renderer{Options: render.LocalOptions()},
		Cluster: "local", WriteTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	first, err := svc.Create(context.Background(), premium("s1"), meta("req-s1"))
	if err != nil || first.State != store.RequestAwaitingApproval {
		t.Fatalf("first: %+v, %v", first, err)
	}
	if _, err := svc.Create(context.Background(), premium("s2"), meta("req-s2")); store.ErrorCode(err) != store.EUNAVAILABLE {
		t.Fatalf("second within the spacing: %v", err)
	}
	s.gh.mu.Lock()
	defer s.gh.mu.Unlock()
	if len(s.gh.posts) != 1 || s.gh.creates != 1 {
		t.Fatalf("%d content-creating calls (%d pull requests), want 1", len(s.gh.posts), s.gh.creates)
	}
}

func TestBranchName(t *testing.T) {
	for id, want := range map[string]string{
		"shop-1":               "storefleet/shop/shop-1",
		"0b9f1c2e.retry":       "storefleet/shop/0b9f1c2e.retry",
		"a b/c..d~e^f:g?h*i[j": "storefleet/shop/a-b-c-d-e-f-g-h-i-j",
		"..lock.":              "storefleet/shop/lock",
		"///":                  "storefleet/shop/request",
		"key.lock":             "storefleet/shop/key.lock-",
	} {
		if got := github.BranchName("shop", id); got != want {
			t.Errorf("BranchName(%q) = %q, want %q", id, got, want)
		}
	}
}

// A store deleted on the fleet's branch (by an outside push) while an update to it
// is under review: the proposal cannot be rebuilt on the new base and is left for
// the reviewer (GitHub shows the conflict); closed, the request is rejected and the
// store stays gone.
func TestProposalForAStoreDeletedMeanwhile(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	basic := premium("fleeting")
	basic.Plan = store.Basic
	if _, err := s.svc.Create(ctx, basic, meta("c")); err != nil {
		t.Fatal(err)
	}
	up, err := s.svc.Update(ctx, "fleeting", func(st store.Store) (store.Store, error) { st.Plan = store.Premium; return st, nil }, meta("u"))
	if err != nil || up.State != store.RequestAwaitingApproval {
		t.Fatalf("%+v, %v", up, err)
	}
	branchBefore := git(t, s.bare, "rev-parse", up.Review.Branch)
	wt := filepath.Join(t.TempDir(), "wt")
	git(t, filepath.Dir(wt), "clone", "-q", "--branch", "main", s.bare, wt)
	git(t, wt, "rm", "-q", "-r", "stores/local")
	git(t, wt, "-c", "user.name=Operator", "-c", "user.email=op@example.com", "commit", "-q", "-m", "remove by hand")
	git(t, wt, "push", "-q", "origin", "main")
	main := git(t, s.bare, "rev-parse", "main")
	deliverEvent(t, s.writer, "push", "p", []byte(`{"ref":"refs/heads/main","after":"`+main+`"}`))
	deliver(t, s.writer, "closed", s.gh.close(up.Review.Number, false))
	waitFor(t, "rejected", func() bool {
		f, err := s.writer.FindRequest(ctx, "u")
		return err == nil && f.State == store.RequestRejected
	})
	// The branch is deleted with the close; no other commit of the request was ever
	// pushed (the remote keeps every object it received until a gc).
	ofRequest := func(sha string) bool {
		return slices.Contains(strings.Split(git(t, s.bare, "log", "-1", "--format=%B", sha), "\n"), "Request-Id: u")
	}
	if !ofRequest(branchBefore) {
		t.Fatal("the proposal's commit does not name its request")
	}
	for line := range strings.SplitSeq(git(t, s.bare, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"), "\n") {
		sha, typ, _ := strings.Cut(line, " ")
		if typ == "commit" && sha != branchBefore && ofRequest(sha) {
			t.Fatalf("a proposal for a store that is gone was rebuilt: %s", sha)
		}
	}
	if refs := git(t, s.bare, "for-each-ref", "refs/heads/storefleet/"); refs != "" {
		t.Fatalf("the rejected proposal's branch is still there: %s", refs)
	}
	if files := git(t, s.bare, "ls-tree", "-r", "--name-only", "main"); strings.Contains(files, "fleeting") {
		t.Fatalf("the store came back: %s", files)
	}
}

// A store under review is seen in its own view: a proposed create is a store (its
// proposed spec, its tenant) rather than a 404, a change under review leaves the
// spec on the fleet's branch in view with the pull request beside it; once closed
// without merge a proposed create is gone, and a merge leaves no review behind.
func TestStoreViewShowsTheReview(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	big, err := s.svc.Create(ctx, premium("big"), meta("req-big"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.svc.Get(ctx, "big")
	if err != nil || v.Review == nil || v.Review.URL != big.Review.URL || v.Store.Plan != store.Premium || v.Store.Tenant != "default" {
		t.Fatalf("a proposed create: %+v, %v", v, err)
	}
	basic := premium("shop")
	basic.Plan = store.Basic
	if _, err := s.svc.Create(ctx, basic, meta("req-shop")); err != nil {
		t.Fatal(err)
	}
	up, err := s.svc.Update(ctx, "shop", func(st store.Store) (store.Store, error) { st.Plan = store.Premium; return st, nil }, meta("req-up"))
	if err != nil || up.Review == nil {
		t.Fatalf("premium update: %+v, %v", up, err)
	}
	v, err = s.svc.Get(ctx, "shop")
	if err != nil || v.Review == nil || v.Review.Number != up.Review.Number || v.Store.Plan != store.Basic || v.Commit == nil {
		t.Fatalf("an update under review shows the current spec and the pull request: %+v, %v", v, err)
	}
	list := func(f store.Filter) map[string]*store.Review {
		views, _, err := s.svc.List(ctx, f, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*store.Review{}
		for _, v := range views {
			out[v.Store.Name] = v.Review
		}
		return out
	}
	all := list(store.Filter{})
	if len(all) != 2 || all["big"] == nil || all["shop"] == nil || all["big"].Number != big.Review.Number {
		t.Fatalf("list: %+v", all)
	}
	if got := list(store.Filter{Phase: string(store.PhaseAwaitingApproval)}); len(got) != 2 {
		t.Fatalf("?phase=awaiting-approval: %+v", got)
	}
	if got := list(store.Filter{Tenants: []string{"acme"}}); len(got) != 0 {
		t.Fatalf("another tenant's view lists %+v", got)
	}

	deliver(t, s.writer, "close-big", s.gh.close(big.Review.Number, false))
	waitFor(t, "the create is rejected", func() bool {
		_, err := s.svc.Get(ctx, "big")
		return store.ErrorCode(err) == store.ENOTFOUND
	})
	mergeOnServer(t, s.bare, up.Review.Branch)
	deliver(t, s.writer, "merge-up", s.gh.close(up.Review.Number, true))
	waitFor(t, "the merge is fetched", func() bool { return s.merged.Load() > 0 })
	s.svc.Refreshed(ctx, []string{store.Dir("local", "shop")})
	v, err = s.svc.Get(ctx, "shop")
	if err != nil || v.Review != nil || v.Store.Plan != store.Premium {
		t.Fatalf("after the merge: %+v, %v", v, err)
	}
	if all := list(store.Filter{}); len(all) != 1 || all["shop"] != nil {
		t.Fatalf("list after the close and the merge: %+v", all)
	}
}

// A pull request adopted after a restart is read back from its branch: its store's
// view shows it, and it is rebuilt on a moved base like the others, with the same
// files and trailers.
func TestAdoptedProposalFollowsItsBase(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	a, b, oldB := twoProposals(t, s)
	folder := store.Dir("local", "second")

	// A restart: a new writer knows the pull requests only from GitHub.
	w2 := s.newWriter(t)
	if err := w2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	svc2 := s.newService(t, w2)
	if v, err := svc2.Get(ctx, "second"); err != nil || v.Review == nil || v.Review.Number != b.Review.Number || v.Store.Plan != store.Premium {
		t.Fatalf("an adopted proposed create: %+v, %v", v, err)
	}
	mergeOnServer(t, s.bare, a.Review.Branch)
	deliver(t, w2, "a-merged-after-restart", s.gh.close(a.Review.Number, true))
	waitFor(t, "the adopted branch is rebuilt", func() bool {
		return git(t, s.bare, "rev-parse", b.Review.Branch) != oldB
	})
	main := git(t, s.bare, "rev-parse", "main")
	if parent := git(t, s.bare, "rev-parse", b.Review.Branch+"^"); parent != main {
		t.Fatalf("rebuilt on %s, main is %s", parent, main)
	}
	if got, want := git(t, s.bare, "rev-parse", b.Review.Branch+":"+folder), git(t, s.bare, "rev-parse", oldB+":"+folder); got != want {
		t.Fatalf("the rebuilt folder is %s, the proposal's was %s", got, want)
	}
	msg := git(t, s.bare, "log", "-1", "--format=%B", b.Review.Branch)
	for _, tr := range []string{"Request-Id: req-b", "Store: second", "Action: create", "Actor: alice@example.com", "Tenant: default"} {
		if !strings.Contains(msg, tr) {
			t.Fatalf("rebuilt commit lacks %q: %s", tr, msg)
		}
	}
}
