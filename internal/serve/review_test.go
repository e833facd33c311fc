package serve_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/serve"
)

// prHost is GitHub's REST side for the three calls the review path makes (list,
// create, labels), with bodies shaped as GitHub documents them; internal/github's
// tests cover the rest.
type prHost struct {
	mu  sync.Mutex
	prs []map[string]any
}

func (h *prHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(r.URL.Path, "/api/v3/repos/acme/fleet/")
	switch {
	case path == "pulls" && r.Method == "GET":
		out := []map[string]any{}
		for _, pr := range h.prs {
			if pr["state"] == "open" && "acme:"+pr["head"].(map[string]any)["ref"].(string) == r.URL.Query().Get("head") {
				out = append(out, pr)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case path == "pulls" && r.Method == "POST":
		var in struct{ Head, Base, Title, Body string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		n := len(h.prs) + 1
		pr := map[string]any{"id": n, "number": n, "state": "open", "title": in.Title, "body": in.Body, "merged": false,
			"html_url": "https://github.com/acme/fleet/pull/" + string(rune('0'+n)),
			"head":     map[string]any{"ref": in.Head, "label": "acme:" + in.Head},
			"base":     map[string]any{"ref": in.Base, "label": "acme:" + in.Base}}
		h.prs = append(h.prs, pr)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(pr)
	case strings.HasSuffix(path, "/labels"):
		_, _ = w.Write([]byte(`[{"id":1,"name":"storefleet:create","color":"f29513","default":false}]`))
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

func (h *prHost) closedEvent(n int, merged bool) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	pr := h.prs[n-1]
	pr["state"], pr["merged"] = "closed", merged
	b, _ := json.Marshal(map[string]any{"action": "closed", "number": n, "pull_request": pr})
	return b
}

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
	host := &prHost{}
	gh := httptest.NewServer(host)
	defer gh.Close()
	data := filepath.Join(dir, "data")
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", data, "--seed-dir", "../../fleet", "--review-policy", policy,
		"--github-repository", "acme/fleet", "--github-api-url", gh.URL+"/api/v3/", "--github-token-file", token,
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
	payload := host.closedEvent(1, true)
	deliver := func(sig, id string) response {
		req, _ := http.NewRequest("POST", s.url+"/api/v1/github/webhook", strings.NewReader(string(payload)))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", sig)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b}
	}
	forged := hmac.New(sha256.New, []byte("not-the-secret"))
	forged.Write(payload)
	if r := deliver("sha256="+hex.EncodeToString(forged.Sum(nil)), "d-forged"); r.status != http.StatusUnauthorized {
		t.Fatalf("forged delivery: %d %s", r.status, r.body)
	}
	// Merged on the server with real git (a squash, as GitHub's button), then told.
	wt := filepath.Join(dir, "wt")
	gitOut(t, dir, "clone", "-q", "--branch", "main", bare, wt)
	gitOut(t, wt, "fetch", "-q", "origin", out.Review.Branch)
	msg := gitOut(t, wt, "log", "-1", "--format=%B", "FETCH_HEAD")
	gitOut(t, wt, "merge", "-q", "--squash", "FETCH_HEAD")
	gitOut(t, wt, "-c", "user.name=Reviewer", "-c", "user.email=r@example.com", "commit", "-q", "-m", msg)
	gitOut(t, wt, "push", "-q", "origin", "main")
	good := hmac.New(sha256.New, []byte("whsec-serve"))
	good.Write(payload)
	if r := deliver("sha256="+hex.EncodeToString(good.Sum(nil)), "d-1"); r.status != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %s", r.status, r.body)
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
