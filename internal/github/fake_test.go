package github_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHub speaks the REST endpoints the Writer uses, under GitHub Enterprise's
// /api/v3 prefix, answering with the documented example bodies in testdata/ (a pull
// request's number, branch and URL filled in).
type fakeGitHub struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	prs    []map[string]any // open and closed, in order of creation
	labels map[int][]string
	// hideFromList: the next list answers [] although the pull request exists, as
	// when an earlier create landed but its answer was lost.
	hideFromList int
	// fail answers the next requests with this status (503, or 403 as a secondary
	// rate limit), counting down failN.
	fail, failN int
	creates     int
	auth        []string
	requests    int
	notModified int
	// appTokens counts installation tokens issued; each expires tokenTTL after.
	appTokens int
	tokenTTL  time.Duration
	// posts are when each content-creating call (pull request, labels) arrived.
	posts []time.Time
	// checks is the combined status every commit has.
	checks string
}

func newFakeGitHub(t testing.TB) *fakeGitHub {
	f := &fakeGitHub{t: t, labels: map[int][]string{}, checks: "pending"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func example(t testing.TB, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fakeGitHub) pr(number int, branch, title, body string) map[string]any {
	var pr map[string]any
	if err := json.Unmarshal(example(f.t, "pull_request.json"), &pr); err != nil {
		f.t.Fatal(err)
	}
	n := strconv.Itoa(number)
	pr["number"] = number
	pr["id"] = number
	pr["html_url"] = "https://github.example/fleet-owner/fleet/pull/" + n
	pr["url"] = f.srv.URL + "/api/v3/repos/fleet-owner/fleet/pulls/" + n
	pr["title"], pr["body"] = title, body
	head := pr["head"].(map[string]any)
	head["ref"], head["label"] = branch, "fleet-owner:"+branch
	pr["base"].(map[string]any)["ref"] = "main"
	return pr
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.requests++
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v3/repos/") {
		f.posts = append(f.posts, time.Now())
	}
	if f.failN > 0 {
		f.failN--
		w.Header().Set("Content-Type", "application/json")
		if f.fail == http.StatusForbidden {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write(example(f.t, "secondary_rate_limit.json"))
			return
		}
		w.WriteHeader(f.fail)
		_, _ = w.Write([]byte(`{"message":"Server Error"}`))
		return
	}
	if r.URL.Path == "/api/v3/app/installations/42/access_tokens" && r.Method == http.MethodPost {
		// GitHub's "Create an installation access token for an app": the App's
		// JWT in, a token with its expiry out.
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
			http.Error(w, `{"message":"A JSON web token could not be decoded"}`, http.StatusUnauthorized)
			return
		}
		f.appTokens++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": fmt.Sprintf("ghs_installation_%d", f.appTokens),
			"expires_at": time.Now().Add(f.tokenTTL).UTC().Format(time.RFC3339), "permissions": map[string]string{
				"contents": "write", "pull_requests": "write", "checks": "read", "statuses": "read", "metadata": "read"},
			"repository_selection": "selected"})
		return
	}
	const prefix = "/api/v3/repos/fleet-owner/fleet/"
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case path == "pulls" && r.Method == http.MethodGet:
		head := strings.TrimPrefix(r.URL.Query().Get("head"), "fleet-owner:")
		out := []map[string]any{}
		if f.hideFromList > 0 {
			f.hideFromList--
		} else {
			for _, pr := range f.prs {
				if pr["state"] == "open" && (head == "" || pr["head"].(map[string]any)["ref"] == head) && r.URL.Query().Get("state") == "open" {
					out = append(out, pr)
				}
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case path == "pulls" && r.Method == http.MethodPost:
		var in struct{ Title, Head, Base, Body string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &in); err != nil || in.Base != "main" {
			http.Error(w, `{"message":"Validation Failed"}`, http.StatusUnprocessableEntity)
			return
		}
		for _, pr := range f.prs {
			if pr["state"] == "open" && pr["head"].(map[string]any)["ref"] == in.Head {
				w.WriteHeader(http.StatusUnprocessableEntity)
				_, _ = w.Write(example(f.t, "already_exists.json"))
				return
			}
		}
		f.creates++
		pr := f.pr(len(f.prs)+1, in.Head, in.Title, in.Body)
		f.prs = append(f.prs, pr)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(pr)
	case strings.HasPrefix(path, "pulls/") && r.Method == http.MethodGet:
		n, _ := strconv.Atoi(strings.TrimPrefix(path, "pulls/"))
		if n < 1 || n > len(f.prs) {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		// GitHub's ETag is a digest of the body: any change to the pull request
		// changes it.
		body, _ := json.Marshal(f.prs[n-1])
		etag := fmt.Sprintf(`"%x"`, sha256.Sum256(body))
		if r.Header.Get("If-None-Match") == etag {
			f.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write(body)
	case strings.HasPrefix(path, "commits/") && strings.HasSuffix(path, "/status") && r.Method == http.MethodGet:
		// GitHub's "Get the combined status for a specific reference".
		sha := strings.TrimSuffix(strings.TrimPrefix(path, "commits/"), "/status")
		_ = json.NewEncoder(w).Encode(map[string]any{"state": f.checks, "sha": sha, "total_count": 1,
			"statuses":   []map[string]any{{"state": f.checks, "context": "continuous-integration/jenkins", "description": "Build has completed"}},
			"repository": map[string]any{"id": 1296269, "name": "fleet", "full_name": "fleet-owner/fleet"}})
	case strings.HasPrefix(path, "issues/") && strings.HasSuffix(path, "/labels") && r.Method == http.MethodPost:
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path, "issues/"), "/labels"))
		var labels []string
		_ = json.NewDecoder(r.Body).Decode(&labels)
		f.labels[n] = append(f.labels[n], labels...)
		_, _ = w.Write(example(f.t, "labels.json"))
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

// close marks pull request n closed (merged or not) and returns the
// pull_request.closed webhook payload GitHub sends for it.
func (f *fakeGitHub) close(n int, merged bool) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	pr := f.prs[n-1]
	pr["state"], pr["merged"] = "closed", merged
	ev := map[string]any{"action": "closed", "number": n, "pull_request": pr,
		"repository": pr["base"].(map[string]any)["repo"], "sender": pr["user"]}
	b, err := json.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// requestReviewers asks users to review pull request n.
func (f *fakeGitHub) requestReviewers(n int, logins ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var users []map[string]any
	for i, l := range logins {
		users = append(users, map[string]any{"login": l, "id": i + 1, "type": "User"})
	}
	f.prs[n-1]["requested_reviewers"] = users
}
