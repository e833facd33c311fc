package github

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"

	"github.com/storefleet/storefleet/internal/store"
)

// maxDeliveries is how many delivery ids are remembered for deduplication: GitHub
// redelivers within hours, at a rate far below this per hour.
const maxDeliveries = 10_000

// hookQueue processes deliveries one at a time, in the order received, off the
// request: GitHub wants an answer within 10 s and a merge may need a fetch.
type hookQueue struct {
	w    *Writer
	ch   chan store.Delivery
	done chan struct{}

	mu    sync.Mutex
	seen  map[string]bool
	order []string
}

func newHookQueue(w *Writer) *hookQueue {
	q := &hookQueue{w: w, ch: make(chan store.Delivery, 256), done: make(chan struct{}), seen: map[string]bool{}}
	go q.run()
	return q
}

func (q *hookQueue) close() {
	close(q.ch)
	<-q.done
}

func (q *hookQueue) run() {
	defer close(q.done)
	for d := range q.ch {
		q.w.process(context.Background(), d)
	}
}

// firstTime records id and reports whether it is new.
func (q *hookQueue) firstTime(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seen[id] {
		return false
	}
	q.seen[id] = true
	q.order = append(q.order, id)
	if len(q.order) > maxDeliveries {
		delete(q.seen, q.order[0])
		q.order = q.order[1:]
	}
	return true
}

var _ store.DeliveryReceiver = (*Writer)(nil)

// Receive checks a delivery's X-Hub-Signature-256 and queues it.
func (w *Writer) Receive(ctx context.Context, d store.Delivery) error {
	if !validSignature(d.Signature, d.Payload, w.cfg.Secret) {
		return store.Errorf(store.EUNAUTHORIZED, "the delivery's X-Hub-Signature-256 is missing or does not match")
	}
	if d.ID == "" || d.Event == "" {
		return &store.Error{Code: store.EINVALID, Message: "a delivery names its event and id",
			Fields: []store.FieldError{{Field: "X-GitHub-Delivery", Rule: "required", Message: "X-GitHub-Event and X-GitHub-Delivery are required"}}}
	}
	if !w.hooks.firstTime(d.ID) {
		w.log.Info("webhook delivery seen before; ignored", "delivery", d.ID)
		return nil
	}
	select {
	case w.hooks.ch <- d:
		return nil
	default:
		// Never block GitHub's request: refuse, and GitHub's redelivery (or the
		// poll) brings it again.
		w.hooks.mu.Lock()
		delete(w.hooks.seen, d.ID)
		w.hooks.mu.Unlock()
		return store.Errorf(store.EUNAVAILABLE, "too many webhook deliveries queued")
	}
}

// validSignature checks sig ("sha256=<hex>") against the payload's HMAC-SHA256.
// Only the SHA-256 header is taken: a delivery with SHA-1 alone is refused.
func validSignature(sig string, payload, secret []byte) bool {
	hexSum, ok := strings.CutPrefix(sig, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return hmac.Equal(got, m.Sum(nil))
}

func (w *Writer) process(ctx context.Context, d store.Delivery) {
	if d.Event != "pull_request" && d.Event != "push" {
		return
	}
	ev, err := gh.ParseWebHook(d.Event, d.Payload)
	w.log.Debug("webhook delivery", "delivery", d.ID, "event", d.Event, "type", fmt.Sprintf("%T", ev))
	if err != nil {
		w.log.Warn("webhook delivery unreadable", "delivery", d.ID, "err", err)
		return
	}
	switch e := ev.(type) {
	case *gh.PullRequestEvent:
		if e.GetAction() == "closed" {
			w.closed(ctx, e.GetPullRequest().GetNumber(), e.GetPullRequest().GetHead().GetRef(), e.GetPullRequest().GetMerged())
		} else if e.GetPullRequest() != nil {
			// review_requested, synchronize, …: the reviewers as the event has them.
			w.sawReviewers(e.GetPullRequest())
		}
	case *gh.PushEvent:
		if e.GetRef() == "refs/heads/"+w.cfg.Base {
			w.baseMoved(ctx)
		}
	}
}

// baseMoved fetches the fleet's branch and builds every open proposal again on its
// new tip, so each pull request stays mergeable (also where branch protection wants
// branches up to date). The change is the same: what moved is the rest of the fleet.
func (w *Writer) baseMoved(ctx context.Context) {
	if w.cfg.Merged != nil {
		w.cfg.Merged(ctx)
	}
	w.mu.Lock()
	open := make([]*proposal, 0, len(w.open))
	for _, p := range w.open {
		open = append(open, p)
	}
	w.mu.Unlock()
	for _, p := range open {
		if !w.learn(ctx, p) {
			continue
		}
		w.mu.Lock()
		change := p.change
		w.mu.Unlock()
		bc, err := w.cfg.Branches.Propose(ctx, p.review.Branch, change)
		if err != nil {
			// The store's folder moved under the proposal (an outside push): the
			// pull request shows GitHub's conflict, and a reviewer decides.
			w.log.Warn("open proposal not rebuilt on the moved base", "pr", p.review.URL, "err", err)
			continue
		}
		if bc.NoOp || bc.Base == p.base {
			w.log.Debug("open proposal already on the base", "pr", p.review.URL, "base", bc.Base, "noop", bc.NoOp)
			continue
		}
		w.mu.Lock()
		p.base, p.review.Commit = bc.Base, bc.Commit
		w.mu.Unlock()
		w.log.Info("open proposal rebuilt on the moved base", "pr", p.review.URL, "base", bc.Base)
	}
}

// closed settles the proposal of pull request number: merged, it is the fleet's
// (the fetch makes it committed … ready); closed without merge, it is rejected.
func (w *Writer) closed(ctx context.Context, number int, branch string, merged bool) {
	w.mu.Lock()
	p := w.byNumber[number]
	if p == nil || p.review.Branch != branch {
		w.mu.Unlock()
		// Not one of ours (or from before a restart that forgot it): nothing to do.
		w.log.Info("pull request closed that no request here proposed", "pr", number, "branch", branch)
		return
	}
	if w.open[p.store] == p {
		delete(w.open, p.store)
	}
	first := p.state == store.RequestAwaitingApproval
	if merged {
		p.state = store.RequestCommitted
	} else {
		p.state = store.RequestRejected
	}
	r, state := p.review, p.state
	r.Reviewers = append([]string(nil), r.Reviewers...)
	w.mu.Unlock()
	w.log.Info("pull request closed", "pr", r.URL, "store", p.store, "request", p.requestID, "merged", merged)
	if first && w.cfg.Closed != nil {
		// Once: a poll and a delivery may both report the same close.
		w.cfg.Closed(p.store, r, state)
	}
	if first {
		// The branch has served: merged, its commit is on the fleet's branch;
		// rejected, it must not stay where someone could still merge it by hand. A
		// branch that stays (the remote down) is only clutter: the next proposal of
		// the store uses another request's branch.
		if err := w.cfg.Branches.DropBranch(ctx, r.Branch); err != nil {
			w.log.Warn("proposal branch not deleted after its pull request closed", "branch", r.Branch, "pr", r.URL, "err", err)
		}
	}
	if merged {
		// The merge moved the base of every other open pull request.
		w.baseMoved(ctx)
	}
}
