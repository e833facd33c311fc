package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"golang.org/x/time/rate"

	"github.com/storefleet/storefleet/internal/store"
)

// Config configures a Writer.
type Config struct {
	// Repository is the direct writer (and the read side) the Writer decorates.
	Repository store.Repository
	// Branches pushes a change to a proposal branch (the same Git writer).
	Branches store.Proposer
	Policy   store.ReviewPolicy
	Client   *gh.Client
	// Owner and Name are the fleet repository's on GitHub; Base is the fleet's
	// branch the pull requests go to.
	Owner, Name, Base string
	// Labels are put on every pull request, beside storefleet:<action>.
	Labels []string
	// Secret is the webhook secret deliveries are signed with.
	Secret []byte
	// Merged is told when a pull request was merged, so the fleet is fetched at
	// once instead of at the next interval. May be nil.
	Merged func(ctx context.Context)
	// Closed is told when a pull request was closed, merged (state committed) or
	// not (rejected), so the stores' status streams show it. May be nil.
	Closed func(store string, r store.Review, state store.RequestState)
	Log    *slog.Logger
	// CreateSpacing is the least time between two content-creating calls (opening a
	// pull request, labelling it): GitHub's secondary rate limits ask for a second.
	// Zero: no spacing (tests).
	CreateSpacing time.Duration
}

// proposal is one request under review.
type proposal struct {
	store, requestID string
	action           store.Action
	review           store.Review
	state            store.RequestState // awaiting-approval, rejected, or committed once merged
	// change is what the branch holds, kept to build it again on a moved base.
	change store.Change
	base   string
	etag   string // of the last poll's answer
}

// Writer is the store.Repository that sends the changes the policy names to review.
type Writer struct {
	store.Repository
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	open      map[string]*proposal // by store: at most one open pull request each
	byRequest map[string]*proposal
	byNumber  map[int]*proposal

	hooks *hookQueue
	// creates spaces the content-creating calls (Config.CreateSpacing).
	creates *rate.Limiter
}

var _ store.Repository = (*Writer)(nil)

// New returns a Writer; Close stops its webhook worker.
func New(cfg Config) (*Writer, error) {
	if cfg.Repository == nil || cfg.Branches == nil || cfg.Policy == nil || cfg.Client == nil {
		return nil, errors.New("github: Repository, Branches, Policy and Client are needed")
	}
	if cfg.Owner == "" || cfg.Name == "" {
		return nil, errors.New("github: the repository's owner and name are needed")
	}
	if cfg.Base == "" {
		cfg.Base = "main"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{Repository: cfg.Repository, cfg: cfg, log: cfg.Log,
		open: map[string]*proposal{}, byRequest: map[string]*proposal{}, byNumber: map[int]*proposal{}}
	w.hooks = newHookQueue(w)
	w.creates = rate.NewLimiter(rate.Inf, 1)
	if cfg.CreateSpacing > 0 {
		w.creates = rate.NewLimiter(rate.Every(cfg.CreateSpacing), 1)
	}
	return w, nil
}

// Close stops the webhook worker once the deliveries queued are processed.
func (w *Writer) Close() { w.hooks.close() }

func subjectOf(c store.Change) store.ReviewSubject {
	return store.ReviewSubject{Action: c.Action, Plan: c.Plan, Engine: c.Engine, Tenant: c.Tenant, Cluster: c.Cluster}
}

// Submit commits c directly, or proposes it when the policy sends it to review.
func (w *Writer) Submit(ctx context.Context, c store.Change) (store.Commit, error) {
	w.mu.Lock()
	p := w.open[c.Store]
	adopted := p != nil && p.change.Store == ""
	w.mu.Unlock()
	if p != nil {
		if p.requestID == c.RequestID && !c.Continues {
			if adopted {
				// Adopted after a restart: propose again, which finds the same
				// pull request and learns the change.
				return w.propose(ctx, c)
			}
			// A retry of the proposed request: the same pull request.
			return store.Commit{}, &store.Proposed{Review: p.review}
		}
		return store.Commit{}, store.Errorf(store.ECONFLICT,
			"store %q has a change awaiting approval in pull request %s; it must be merged or closed first", c.Store, p.review.URL)
	}
	// The second step of a purge follows its first by itself: the approval of the
	// first covers both.
	if c.Continues || !w.cfg.Policy.Requires(subjectOf(c)) {
		return w.Repository.Submit(ctx, c)
	}
	return w.propose(ctx, c)
}

func (w *Writer) propose(ctx context.Context, c store.Change) (store.Commit, error) {
	branch := BranchName(c.Store, c.RequestID)
	diff, err := w.diff(ctx, c)
	if err != nil {
		return store.Commit{}, err
	}
	bc, err := w.cfg.Branches.Propose(ctx, branch, c)
	if err != nil {
		return store.Commit{}, err
	}
	if bc.NoOp {
		return store.Commit{SHA: bc.Base}, nil
	}
	pr, err := w.ensurePR(ctx, branch, c, diff)
	if err != nil {
		return store.Commit{}, err
	}
	r := store.Review{Required: true, URL: pr.GetHTMLURL(), Number: pr.GetNumber(), Branch: branch, Commit: bc.Commit}
	p := &proposal{store: c.Store, requestID: c.RequestID, action: c.Action, review: r, state: store.RequestAwaitingApproval,
		change: c, base: bc.Base}
	w.mu.Lock()
	w.open[c.Store] = p
	w.byRequest[c.RequestID] = p
	w.byNumber[r.Number] = p
	w.mu.Unlock()
	w.log.Info("change proposed for review", "store", c.Store, "action", c.Action, "request", c.RequestID, "pr", r.URL)
	return store.Commit{}, &store.Proposed{Review: r}
}

// ensurePR returns the open pull request of branch, opening it if there is none.
func (w *Writer) ensurePR(ctx context.Context, branch string, c store.Change, diff string) (*gh.PullRequest, error) {
	if pr, err := w.findPR(ctx, branch); err != nil || pr != nil {
		return pr, err
	}
	if err := w.creates.Wait(ctx); err != nil {
		return nil, store.Errorf(store.EUNAVAILABLE, "too many pull requests being opened now; nothing reached the fleet's branch, retry later with the same Idempotency-Key")
	}
	pr, _, err := w.cfg.Client.PullRequests.Create(ctx, w.cfg.Owner, w.cfg.Name, &gh.NewPullRequest{
		Title: gh.String(fmt.Sprintf("storefleet: %s %s", c.Action, c.Store)),
		Head:  gh.String(branch), Base: gh.String(w.cfg.Base),
		Body:                gh.String(body(c, diff)),
		MaintainerCanModify: gh.Bool(false),
	})
	if alreadyExists(err) {
		// Opened by an earlier try whose answer was lost: find it.
		pr, err = w.findPR(ctx, branch)
		if err == nil && pr == nil {
			err = fmt.Errorf("github: GitHub says a pull request for %s exists but lists none", branch)
		}
	}
	if err != nil {
		return nil, unavailable(err)
	}
	labels := append(append([]string(nil), w.cfg.Labels...), "storefleet:"+string(c.Action))
	if err := w.creates.Wait(ctx); err != nil {
		w.log.Warn("labels not set on pull request: no time left", "pr", pr.GetHTMLURL())
		return pr, nil
	}
	if _, _, err := w.cfg.Client.Issues.AddLabelsToIssue(ctx, w.cfg.Owner, w.cfg.Name, pr.GetNumber(), labels); err != nil {
		// The pull request is open and reviewable without its labels; say so and go on.
		w.log.Warn("labels not set on pull request", "pr", pr.GetHTMLURL(), "err", err)
	}
	return pr, nil
}

func (w *Writer) findPR(ctx context.Context, branch string) (*gh.PullRequest, error) {
	prs, _, err := w.cfg.Client.PullRequests.List(ctx, w.cfg.Owner, w.cfg.Name, &gh.PullRequestListOptions{
		State: "open", Head: w.cfg.Owner + ":" + branch, Base: w.cfg.Base})
	if err != nil {
		return nil, unavailable(err)
	}
	for _, pr := range prs {
		if pr.GetHead().GetRef() == branch {
			return pr, nil
		}
	}
	return nil, nil
}

func alreadyExists(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, e := range er.Errors {
		if strings.Contains(e.Message, "already exists") {
			return true
		}
	}
	return strings.Contains(er.Message, "already exists")
}

// unavailable turns GitHub being down or rate-limiting into the domain's
// EUNAVAILABLE: nothing reached the fleet's branch, a retry with the same key
// resumes. Other errors stay as they are.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var (
		rl   *gh.RateLimitError
		ab   *gh.AbuseRateLimitError
		er   *gh.ErrorResponse
		ne   net.Error
		se   *store.Error
		msg  string
		wait time.Duration
	)
	switch {
	case errors.As(err, &se):
		return err
	case errors.As(err, &rl), errors.As(err, &ab):
		msg = "GitHub is rate-limiting this service; nothing reached the fleet's branch, retry later with the same Idempotency-Key"
		if ab != nil && ab.RetryAfter != nil {
			wait = *ab.RetryAfter
		}
		if rl != nil {
			wait = time.Until(rl.Rate.Reset.Time)
		}
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode >= 500:
		msg = "GitHub answered with a server error; nothing reached the fleet's branch, retry later with the same Idempotency-Key"
	case errors.As(err, &ne):
		msg = "GitHub cannot be reached; nothing reached the fleet's branch, retry later with the same Idempotency-Key"
	default:
		return fmt.Errorf("github: %w", err)
	}
	return fmt.Errorf("%w: %v", &store.Error{Code: store.EUNAVAILABLE, Message: msg, RetryAfter: max(wait, 0)}, err)
}

var unsafeRef = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// BranchName is the proposal branch of a request: storefleet/<store>/<request-id>,
// the id's characters a ref may not hold replaced.
func BranchName(storeName, requestID string) string {
	id := strings.Trim(unsafeRef.ReplaceAllString(requestID, "-"), ".-")
	id = strings.ReplaceAll(id, "..", "-")
	if strings.HasSuffix(id, ".lock") {
		id += "-" // git refuses a ref component ending in .lock
	}
	if id == "" {
		id = "request"
	}
	return "storefleet/" + storeName + "/" + id
}

// FindRequest answers a request under review from the proposals; the rest from the
// fleet's history.
func (w *Writer) FindRequest(ctx context.Context, id string) (store.Found, error) {
	w.mu.Lock()
	p := w.byRequest[id]
	var f store.Found
	var rv *store.Review
	if p != nil {
		r := p.review
		r.Reviewers = append([]string(nil), r.Reviewers...)
		rv = &r
		if p.state != store.RequestCommitted {
			f = store.Found{State: p.state, Store: p.store, Action: p.action, Review: rv}
		}
	}
	w.mu.Unlock()
	if f.State != "" {
		return f, nil
	}
	f, err := w.Repository.FindRequest(ctx, id)
	if err == nil && rv != nil {
		f.Review = rv
	}
	return f, err
}

// Review returns the pull request of request id, if it was proposed here.
func (w *Writer) Review(id string) (store.Review, store.RequestState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.byRequest[id]
	if p == nil {
		return store.Review{}, "", false
	}
	return p.review, p.state, true
}

// OpenProposals returns the changes whose pull request is open, for the stores'
// own view.
func (w *Writer) OpenProposals() []store.Proposal {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]store.Proposal, 0, len(w.open))
	for _, p := range w.open {
		r := p.review
		r.Reviewers = append([]string(nil), r.Reviewers...)
		pr := store.Proposal{Store: p.store, Action: p.action, Review: r}
		if !p.change.Remove {
			pr.Files = p.change.Files
		}
		out = append(out, pr)
	}
	return out
}
