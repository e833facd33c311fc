package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/github/githubtest"
	"github.com/storefleet/storefleet/internal/serve"
)

func TestReviewByPullRequestThroughServe(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	policy := write("review.yaml", "rules:\n  - name: premium\n    plans: [premium]\n")
	token := write("token", "ghp_serve_test_token\n")
	secret := write("secret", "whsec-serve\n")
	gh := githubtest.Start("acme", "fleet")
	defer gh.Close()
	data := filepath.Join(dir, "data")
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", data, "--seed-dir", "../../fleet", "--review-policy", policy,
		"--github-repository", "acme/fleet", "--github-api-url", gh.APIURL(), "--github-token-file", token,
		"--github-webhook-secret-file", secret)

	premium := `{"name":"big","engine":"woocommerce","plan":"premium","settings":{"adminEmail":"a@example.com"}}`
	dry := s.do("POST", "/api/v1/stores?dryRun=true", premium)
	if dry.status != http.StatusOK || !strings.Contains(string(dry.body), `"review":{"required":true}`) {
		t.Fatalf("dry run: %d %s", dry.status, dry.body)
	}
	r := s.do("POST", "/api/v1/stores", premium)
	var out struct {
		State, Phase string
		Review       struct{ URL, Branch string }
	}
	if err := json.Unmarshal(r.body, &out); err != nil || r.status != http.StatusAccepted ||
		out.State != "awaiting-approval" || out.Phase != "awaiting-approval" || out.Review.URL != "https://github.com/acme/fleet/pull/1" {
		t.Fatalf("premium create: %d %s", r.status, r.body)
	}
	bare := filepath.Join(data, "fleet.git")
	if branches := gitOut(t, bare, "branch", "--list", "storefleet/*"); !strings.Contains(branches, out.Review.Branch) {
		t.Fatalf("branch %s not on the fleet remote: %q", out.Review.Branch, branches)
	}

	// A forged delivery is refused; GitHub's signed one is taken.
	payload := gh.CloseAs(1, true)
	hook := s.url + "/api/v1/github/webhook"
	if code, err := githubtest.Deliver(hook, "pull_request", "d-forged", "not-the-secret", payload); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("forged delivery: %d %v", code, err)
	}
	// Merged on the server with real git (a squash, as GitHub's button), then told.
	wt := filepath.Join(dir, "wt")
	gitOut(t, dir, "clone", "-q", "--branch", "main", bare, wt)
	gitOut(t, wt, "fetch", "-q", "origin", out.Review.Branch)
	msg := gitOut(t, wt, "log", "-1", "--format=%B", "FETCH_HEAD")
	gitOut(t, wt, "merge", "-q", "--squash", "FETCH_HEAD")
	gitOut(t, wt, "-c", "user.name=Reviewer", "-c", "user.email=r@example.com", "commit", "-q", "-m", msg)
	gitOut(t, wt, "push", "-q", "origin", "main")
	if code, err := githubtest.Deliver(hook, "pull_request", "d-1", "whsec-serve", payload); err != nil || code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %v", code, err)
	}
	s.await("/api/v1/stores/big", http.StatusOK, `"plan":"premium"`)
	h := s.do("GET", "/api/v1/stores/big/history", "")
	if !strings.Contains(string(h.body), `"action":"create"`) || !strings.Contains(string(h.body), `"requestId"`) {
		t.Fatalf("history after merge: %s", h.body)
	}
	all.mustNotShow(t, "ghp_serve_test_token", "whsec-serve")
}

func TestReviewPolicyCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "review.yaml")
	if err := os.WriteFile(policy, []byte("rules:\n  - name: gold\n    plans: [gold]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	err := serve.Run(context.Background(), []string{"--listen", "127.0.0.1:0", "--data-dir", data, "--seed-dir", "../../fleet",
		"--review-policy", policy, "--github-repository", "acme"}, func(string) string { return "" }, io.Discard, io.Discard)
	var ue *serve.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("want a usage error, got %v", err)
	}
	for _, want := range []string{"--review-policy", "plans[0]", "--github-repository", "credentials", "--github-webhook-secret-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("serve created its data dir before refusing the configuration")
	}
}
