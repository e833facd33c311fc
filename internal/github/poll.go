package github

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/storefleet/storefleet/internal/store"
)

// Poll catches what missed webhook deliveries would have said: each open pull
// request is asked for with the ETag of its last answer, so one that did not change
// costs a 304, which GitHub does not count against the rate limit.
func (w *Writer) Poll(ctx context.Context) error {
	w.mu.Lock()
	nums := make([]int, 0, len(w.open))
	for _, p := range w.open {
		nums = append(nums, p.review.Number)
	}
	w.mu.Unlock()
	var errs []error
	for _, n := range nums {
		if err := w.pollOne(ctx, n); err != nil {
			errs = append(errs, err)
		}
		w.mu.Lock()
		p := w.byNumber[n]
		var sha string
		if p != nil && p.state == store.RequestAwaitingApproval {
			sha = p.review.Commit
		}
		w.mu.Unlock()
		if sha != "" {
			if err := w.pollChecks(ctx, p, sha); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (w *Writer) pollOne(ctx context.Context, number int) error {
	req, err := w.cfg.Client.NewRequest(http.MethodGet, "repos/"+w.cfg.Owner+"/"+w.cfg.Name+"/pulls/"+strconv.Itoa(number), nil)
	if err != nil {
		return err
	}
	w.mu.Lock()
	p := w.byNumber[number]
	etag := ""
	if p != nil {
		etag = p.etag
	}
	w.mu.Unlock()
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	var pr gh.PullRequest
	resp, err := w.cfg.Client.Do(ctx, req, &pr)
	if resp != nil && resp.StatusCode == http.StatusNotModified {
		return nil
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	if p != nil {
		p.etag = resp.Header.Get("ETag")
	}
	w.mu.Unlock()
	if pr.GetState() == "closed" {
		w.closed(ctx, number, pr.GetHead().GetRef(), pr.GetMerged())
		return nil
	}
	w.sawReviewers(&pr)
	return nil
}

// pollChecks reads the combined status of each open proposal's commit (the checks
// a reviewer waits for).
func (w *Writer) pollChecks(ctx context.Context, p *proposal, sha string) error {
	st, _, err := w.cfg.Client.Repositories.GetCombinedStatus(ctx, w.cfg.Owner, w.cfg.Name, sha, nil)
	if err != nil {
		return err
	}
	w.mu.Lock()
	p.review.Checks = st.GetState()
	w.mu.Unlock()
	return nil
}

// sawReviewers records who is asked to review pull request pr.
func (w *Writer) sawReviewers(pr *gh.PullRequest) {
	var who []string
	for _, u := range pr.RequestedReviewers {
		who = append(who, u.GetLogin())
	}
	for _, t := range pr.RequestedTeams {
		who = append(who, "team:"+t.GetSlug())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.byNumber[pr.GetNumber()]; p != nil {
		p.review.Reviewers = who
	}
}

// RunPoll polls every interval until ctx ends.
func (w *Writer) RunPoll(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.Poll(ctx); err != nil {
				w.log.Warn("polling the open pull requests failed; the next poll tries again", "err", err)
			}
		}
	}
}
