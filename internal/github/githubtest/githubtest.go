// Package githubtest is GitHub's REST side for tests of other packages that drive
// the review path end to end (serve, the test environment): the list, create and
// labels calls of pull requests, with bodies shaped as GitHub documents them, and
// webhook deliveries signed as GitHub signs them. internal/github's own tests use a
// fuller fake with failure modes.
package githubtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Server serves one repository, Owner/Name, under GitHub Enterprise's /api/v3.
type Server struct {
	Owner, Name string
	srv         *httptest.Server

	mu  sync.Mutex
	prs []map[string]any
}

// Start serves on loopback until Close.
func Start(owner, name string) *Server {
	s := &Server{Owner: owner, Name: name}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIURL is the base URL to give gitops-api (--github-api-url).
func (s *Server) APIURL() string { return s.srv.URL + "/api/v3/" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// PullRequests returns how many pull requests were opened.
func (s *Server) PullRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.prs)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v3/repos/"+s.Owner+"/"+s.Name+"/")
	switch {
	case !ok:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	case path == "pulls" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, pr := range s.prs {
			if pr["state"] == "open" && pr["head"].(map[string]any)["label"] == r.URL.Query().Get("head") {
				out = append(out, pr)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case path == "pulls" && r.Method == http.MethodPost:
		var in struct{ Head, Base, Title, Body string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Head == "" || in.Base == "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":"Validation Failed","documentation_url":"https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}`))
			return
		}
		n := len(s.prs) + 1
		pr := map[string]any{
			"id": n, "number": n, "state": "open", "locked": false, "title": in.Title, "body": in.Body,
			"merged": false, "draft": false, "mergeable_state": "clean",
			"html_url": fmt.Sprintf("https://github.com/%s/%s/pull/%d", s.Owner, s.Name, n),
			"url":      fmt.Sprintf("%s/api/v3/repos/%s/%s/pulls/%d", s.srv.URL, s.Owner, s.Name, n),
			"user":     map[string]any{"login": "storefleet[bot]", "id": 1, "type": "Bot"},
			"head":     map[string]any{"ref": in.Head, "label": s.Owner + ":" + in.Head},
			"base":     map[string]any{"ref": in.Base, "label": s.Owner + ":" + in.Base},
		}
		s.prs = append(s.prs, pr)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(pr)
	case strings.HasPrefix(path, "issues/") && strings.HasSuffix(path, "/labels"):
		var labels []string
		_ = json.NewDecoder(r.Body).Decode(&labels)
		out := make([]map[string]any, len(labels))
		for i, l := range labels {
			out[i] = map[string]any{"id": i + 1, "name": l, "color": "f29513", "default": false}
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

// CloseAs marks pull request n closed, merged or not, and returns the
// pull_request "closed" delivery GitHub sends for it.
func (s *Server) CloseAs(n int, merged bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.prs[n-1]
	pr["state"], pr["merged"] = "closed", merged
	b, _ := json.Marshal(map[string]any{"action": "closed", "number": n, "pull_request": pr,
		"repository": map[string]any{"name": s.Name, "full_name": s.Owner + "/" + s.Name}})
	return b
}

// Deliver posts payload to url as GitHub delivers event id, signed with secret
// ("" sends it unsigned), and returns the status.
func Deliver(url, event, id, secret string, payload []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", Sign(secret, payload))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Sign is the X-Hub-Signature-256 of payload under secret.
func Sign(secret string, payload []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(payload)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
