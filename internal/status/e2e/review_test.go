package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/github/githubtest"
	"github.com/storefleet/storefleet/internal/serve"
)

// TestReviewedStoreReachesReady: with a review policy, a premium store waits in a
// pull request (awaiting-approval, the PR's URL; a retry with the same key gets the
// same PR), a forged delivery is refused, and once the PR is merged on the fleet
// remote with real git and GitHub's delivery arrives, Flux installs it (ready). A
// second PR closed without merge is rejected and nothing of it reaches the fleet.
//
// The reviewing gitops-api runs beside the package's (which has the cluster and
// publishes the shards): it has no cluster, so the merge reaches Flux as any commit
// on the fleet's branch does.
func TestReviewedStoreReachesReady(t *testing.T) {
	a := startAPI(t)
	gh := githubtest.Start("acme", "fleet")
	defer gh.Close()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "e2e-webhook-secret"
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--fleet-url", env.FleetURL,
		"--chart-repository", "storefleet", "--chart-versions", env.ChartRepoURL + "/index.yaml",
		"--review-policy", write("review.yaml", "rules:\n  - name: premium-plans\n    plans: [premium]\n"),
		"--github-repository", "acme/fleet", "--github-api-url", gh.APIURL(),
		"--github-token-file", write("token", "ghp_e2e"), "--github-webhook-secret-file", write("secret", secret),
		"--shutdown-grace", "5s"}
	logF, err := os.Create(filepath.Join(env.LogDir, "gitops-api-review.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	exited := make(chan error, 1)
	go func() {
		exited <- serve.Run(ctx, args, func(string) string { return "" }, pw, logF)
		pw.Close()
	}()
	defer func() { cancel(); <-exited }()
	line := make([]byte, 256)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatalf("reviewing gitops-api did not start: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	reviewer := strings.TrimSpace(strings.TrimPrefix(string(line[:n]), "gitops-api listening on "))

	type outcome struct {
		State, Phase string
		Review       struct{ URL, Branch string }
	}
	create := func(name, key string) outcome {
		t.Helper()
		body := fmt.Sprintf(`{"name":%q,"engine":"woocommerce","plan":"premium","version":"0.1.0","settings":{"adminEmail":"owner@example.com"}}`, name)
		req, _ := http.NewRequest(http.MethodPost, reviewer+"/api/v1/stores", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out outcome
		if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != http.StatusAccepted || out.State != "awaiting-approval" || out.Review.URL == "" {
			t.Fatalf("create %s: %d %s", name, resp.StatusCode, b)
		}
		return out
	}
	yes := create("e2e-reviewed", "e2e-reviewed-1")
	if again := create("e2e-reviewed", "e2e-reviewed-1"); again.Review.URL != yes.Review.URL || gh.PullRequests() != 1 {
		t.Fatalf("a retry opened another pull request: %s, %d in all", again.Review.URL, gh.PullRequests())
	}
	hook := reviewer + "/api/v1/github/webhook"
	payload := gh.CloseAs(1, true)
	if code, err := githubtest.Deliver(hook, "pull_request", "e2e-forged", "guessed", payload); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("forged delivery: %d %v", code, err)
	}
	squashMerge(t, env.FleetURL, yes.Review.Branch)
	if code, err := githubtest.Deliver(hook, "pull_request", "e2e-merged", secret, payload); err != nil || code != http.StatusAccepted {
		t.Fatalf("merged delivery: %d %v", code, err)
	}
	waitFor(t, 4*time.Minute, func() (bool, string) {
		resp, err := http.Get(a.URL + "/api/v1/stores/e2e-reviewed")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, "GET: " + resp.Status
		}
		v := a.get(t, "e2e-reviewed")
		return v.Status.Phase == "ready", v.Status.Phase + " " + v.Status.Message
	})

	// A rebase merge (GitHub replays the commit onto main): the store reaches ready
	// too, and its history still names the request.
	rebased := create("e2e-rebased", "e2e-rebased-1")
	rebaseMerge(t, env.FleetURL, rebased.Review.Branch)
	if code, err := githubtest.Deliver(hook, "pull_request", "e2e-rebased", secret, gh.CloseAs(2, true)); err != nil || code != http.StatusAccepted {
		t.Fatalf("rebase-merged delivery: %d %v", code, err)
	}
	waitFor(t, 4*time.Minute, func() (bool, string) {
		resp, err := http.Get(a.URL + "/api/v1/stores/e2e-rebased")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, "GET: " + resp.Status
		}
		v := a.get(t, "e2e-rebased")
		return v.Status.Phase == "ready", v.Status.Phase + " " + v.Status.Message
	})
	var hist struct {
		Items []struct{ Action, Actor, RequestID string }
	}
	if err := json.Unmarshal(a.do(t, http.MethodGet, "/api/v1/stores/e2e-rebased/history", nil, http.StatusOK), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Items) != 1 || hist.Items[0].Action != "create" || hist.Items[0].Actor == "" || hist.Items[0].RequestID != "e2e-rebased-1" {
		t.Fatalf("history after a rebase merge: %+v", hist.Items)
	}

	no := create("e2e-refused", "e2e-refused-1")
	// The store's own view shows it under review before anything is on main.
	var view struct {
		Status struct {
			Phase  string
			Review *struct{ URL string }
		}
	}
	resp, err := http.Get(reviewer + "/api/v1/stores/e2e-refused")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &view); err != nil || resp.StatusCode != http.StatusOK || view.Status.Phase != "awaiting-approval" ||
		view.Status.Review == nil || view.Status.Review.URL != no.Review.URL {
		t.Fatalf("GET of a store under review: %d %s", resp.StatusCode, b)
	}
	if code, err := githubtest.Deliver(hook, "pull_request", "e2e-closed", secret, gh.CloseAs(3, false)); err != nil || code != http.StatusAccepted {
		t.Fatalf("closed delivery: %d %v", code, err)
	}
	waitFor(t, time.Minute, func() (bool, string) {
		resp, err := http.Get(reviewer + "/api/v1/requests/e2e-refused-1")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `"state":"rejected"`), string(b)
	})
	if resp, err := http.Get(reviewer + "/api/v1/stores/e2e-refused"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a rejected create is still shown: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	waitFor(t, time.Minute, func() (bool, string) {
		out := gitIn(t, dir, "ls-remote", env.FleetURL, "refs/heads/storefleet/*")
		return out == "", "proposal branches left: " + out
	})
	if out := gitIn(t, dir, "ls-remote", env.FleetURL, "refs/heads/main"); out == "" {
		t.Fatal("no main on the fleet remote")
	}
	clone := filepath.Join(dir, "check")
	gitIn(t, dir, "clone", "-q", "--branch", "main", env.FleetURL, clone)
	if files := gitIn(t, clone, "ls-files"); strings.Contains(files, "/e2e-refused/") || !strings.Contains(files, "/e2e-reviewed/") {
		t.Fatalf("main after one merge and one rejection (branch %s):\n%s", no.Review.Branch, files)
	}
}

// squashMerge merges branch into main on the remote as GitHub's squash button does.
func squashMerge(t *testing.T, remote, branch string) {
	t.Helper()
	wt := filepath.Join(t.TempDir(), "wt")
	gitIn(t, filepath.Dir(wt), "clone", "-q", "--branch", "main", remote, wt)
	gitIn(t, wt, "fetch", "-q", "origin", branch)
	msg := gitIn(t, wt, "log", "-1", "--format=%B", "FETCH_HEAD")
	title, body, _ := strings.Cut(msg, "\n")
	gitIn(t, wt, "merge", "-q", "--squash", "FETCH_HEAD")
	gitIn(t, wt, "-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.com", "commit", "-q", "-m", title+" (#1)\n"+body)
	gitIn(t, wt, "push", "-q", "origin", "main")
}

// rebaseMerge merges branch into main on the remote as GitHub's rebase button does:
// its commits replayed onto main by another committer.
func rebaseMerge(t *testing.T, remote, branch string) {
	t.Helper()
	wt := filepath.Join(t.TempDir(), "wt")
	gitIn(t, filepath.Dir(wt), "clone", "-q", "--branch", "main", remote, wt)
	gitIn(t, wt, "fetch", "-q", "origin", branch+":proposal")
	gitIn(t, wt, "-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.com", "rebase", "-q", "--force-rebase", "main", "proposal")
	gitIn(t, wt, "push", "-q", "origin", "proposal:main")
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}
