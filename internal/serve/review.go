package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/github"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/review"
	"github.com/storefleet/storefleet/internal/store"
)

// reviewFlags turn on review by pull request: the policy that names the changes to
// review, and the GitHub project of the fleet repository.
type reviewFlags struct {
	policyFile  string
	apiURL      string
	repository  string // owner/name
	tokenFile   string
	appID       string
	installID   string
	appKeyFile  string
	secretFile  string
	labels      string
	pollFlag    string
	poll        time.Duration
	policy      *review.Policy
	secret      []byte
	credentials github.Credentials
}

func reviewFlagSet(fs *flag.FlagSet, r *reviewFlags, env func(string) string) {
	str := func(p *string, name, envName, help string) {
		fs.StringVar(p, name, env(envName), help+" ["+envName+"]")
	}
	str(&r.policyFile, "review-policy", "STOREFLEET_REVIEW_POLICY", "approval policy (YAML rules by action, plan, engine, tenant, cluster): the changes it names go to a pull request on GitHub instead of straight to the fleet's branch; empty = every change is committed directly")
	str(&r.repository, "github-repository", "STOREFLEET_GITHUB_REPOSITORY", "the fleet repository on GitHub as owner/name (with --review-policy)")
	str(&r.apiURL, "github-api-url", "STOREFLEET_GITHUB_API_URL", "GitHub Enterprise API base URL, e.g. https://ghe.example.com/api/v3/; empty = api.github.com")
	str(&r.tokenFile, "github-token-file", "STOREFLEET_GITHUB_TOKEN_FILE", "file holding a GitHub token (or use a GitHub App)")
	str(&r.appID, "github-app-id", "STOREFLEET_GITHUB_APP_ID", "GitHub App id (with --github-installation-id and --github-app-key-file)")
	str(&r.installID, "github-installation-id", "STOREFLEET_GITHUB_INSTALLATION_ID", "the GitHub App's installation id on the fleet repository")
	str(&r.appKeyFile, "github-app-key-file", "STOREFLEET_GITHUB_APP_KEY_FILE", "the GitHub App's private key (PEM)")
	str(&r.secretFile, "github-webhook-secret-file", "STOREFLEET_GITHUB_WEBHOOK_SECRET_FILE", "file holding the webhook secret deliveries to /api/v1/github/webhook are signed with")
	fs.StringVar(&r.pollFlag, "github-poll-interval", orDefault(env("STOREFLEET_GITHUB_POLL_INTERVAL"), "1m"), "how often the open pull requests are asked about (conditional requests: an unchanged one costs no rate limit), for webhook deliveries that never arrived [STOREFLEET_GITHUB_POLL_INTERVAL]")
	str(&r.labels, "github-labels", "STOREFLEET_GITHUB_LABELS", "comma-separated labels put on every pull request, beside storefleet:<action>")
}

func (r *reviewFlags) enabled() bool { return r.policyFile != "" }

// validate reads the policy and the secrets, so a mistake stops serve at start.
func (r *reviewFlags) validate() []error {
	if !r.enabled() {
		if r.repository != "" || r.tokenFile != "" || r.appID != "" || r.secretFile != "" {
			return []error{errors.New("--github-* flags need --review-policy: without a policy nothing goes to review")}
		}
		return nil
	}
	var errs []error
	if d, err := time.ParseDuration(r.pollFlag); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("--github-poll-interval %q must be a positive duration", r.pollFlag))
	} else {
		r.poll = d
	}
	p, err := review.Load(r.policyFile)
	if err != nil {
		errs = append(errs, configErrors("--review-policy", err)...)
	}
	r.policy = p
	if owner, name, ok := strings.Cut(r.repository, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		errs = append(errs, fmt.Errorf("--github-repository %q must be owner/name", r.repository))
	}
	switch {
	case r.tokenFile != "" && r.appID != "":
		errs = append(errs, errors.New("--github-token-file and --github-app-id: one of them, not both"))
	case r.tokenFile != "":
		tok, err := readSecret(r.tokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--github-token-file: %w", err))
		}
		r.credentials.Token = tok
	case r.appID != "":
		app, err1 := strconv.ParseInt(r.appID, 10, 64)
		inst, err2 := strconv.ParseInt(r.installID, 10, 64)
		if err1 != nil || err2 != nil || app <= 0 || inst <= 0 {
			errs = append(errs, errors.New("--github-app-id and --github-installation-id must be positive numbers"))
		}
		if _, err := os.Stat(r.appKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("--github-app-key-file: %w", err))
		}
		r.credentials = github.Credentials{AppID: app, InstallationID: inst, PrivateKeyFile: r.appKeyFile}
	default:
		errs = append(errs, errors.New("--review-policy needs GitHub credentials: --github-token-file or --github-app-id"))
	}
	secret, err := readSecret(r.secretFile)
	if err != nil {
		errs = append(errs, fmt.Errorf("--github-webhook-secret-file (needed with --review-policy): %w", err))
	}
	r.secret = []byte(secret)
	return errs
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("no file given")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New("the file is empty")
	}
	return s, nil
}

// reviewing wraps the Git writer with the pull-request writer when review is on;
// merged is told when a pull request was merged (the follower fetches at once).
func reviewing(r reviewFlags, repo *gitrepo.Repo, base string, merged *mergedHook, log *slog.Logger) (store.Repository, *github.Writer, error) {
	direct := gitrepo.Fleet{R: repo}
	if !r.enabled() {
		return direct, nil, nil
	}
	client, err := github.NewClient(r.apiURL, r.credentials, nil)
	if err != nil {
		return nil, nil, err
	}
	owner, name, _ := strings.Cut(r.repository, "/")
	var labels []string
	for l := range strings.SplitSeq(r.labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	w, err := github.New(github.Config{Repository: direct, Branches: direct, Policy: r.policy, Client: client,
		Owner: owner, Name: name, Base: base, Labels: labels, Secret: r.secret, Merged: merged.call, Closed: merged.callClosed, Log: log,
		CreateSpacing: time.Second})
	if err != nil {
		return nil, nil, err
	}
	return w, w, nil
}

// mergedHook is the follower's fetch, which exists only once the API is about to
// serve; a merge delivered before that is fetched by the follower's first run.
type mergedHook struct {
	mu     sync.Mutex
	f      func(context.Context)
	closed func(string, store.Review, store.RequestState)
}

func (h *mergedHook) set(f func(context.Context)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.f = f
}

// setClosed is the Tracker's, which exists only with a cluster.
func (h *mergedHook) setClosed(f func(string, store.Review, store.RequestState)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = f
}

func (h *mergedHook) callClosed(name string, r store.Review, state store.RequestState) {
	h.mu.Lock()
	f := h.closed
	h.mu.Unlock()
	if f != nil {
		f(name, r, state)
	}
}

func (h *mergedHook) call(ctx context.Context) {
	h.mu.Lock()
	f := h.f
	h.mu.Unlock()
	if f != nil {
		f(ctx)
	}
}

// reviewPolicy is the policy for the lifecycle's dry runs; nil when review is off
// (a nil *review.Policy in the interface would not be nil).
func (r *reviewFlags) reviewPolicy() store.ReviewPolicy {
	if r.policy == nil {
		return nil
	}
	return r.policy
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
