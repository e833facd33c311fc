package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/storefleet/storefleet/internal/store"
)

// Recover learns the open pull requests of earlier runs from GitHub, so that after
// a restart a change to a store under review is still refused naming its pull
// request, and its merge or close is still settled (by delivery or poll). The
// branch names the store and the request; what it holds is read back from the
// fleet remote (learn), so such a pull request is shown in its store's view and
// rebuilt on a moved base like the others.
func (w *Writer) Recover(ctx context.Context) error {
	opts := &gh.PullRequestListOptions{State: "open", Base: w.cfg.Base, ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		prs, resp, err := w.cfg.Client.PullRequests.List(ctx, w.cfg.Owner, w.cfg.Name, opts)
		if err != nil {
			return unavailable(err)
		}
		for _, pr := range prs {
			if p := w.adopt(pr); p != nil {
				// A branch that cannot be read now is read again at the next move
				// of the base.
				w.learn(ctx, p)
			}
		}
		if resp.NextPage == 0 {
			return nil
		}
		opts.Page = resp.NextPage
	}
}

func (w *Writer) adopt(pr *gh.PullRequest) *proposal {
	branch := pr.GetHead().GetRef()
	rest, ok := strings.CutPrefix(branch, "storefleet/")
	if !ok {
		return nil
	}
	name, id, ok := strings.Cut(rest, "/")
	if !ok || name == "" || id == "" || BranchName(name, id) != branch {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open[name] != nil {
		return nil
	}
	p := &proposal{store: name, requestID: id, state: store.RequestAwaitingApproval,
		review: store.Review{Required: true, URL: pr.GetHTMLURL(), Number: pr.GetNumber(), Branch: branch, Commit: pr.GetHead().GetSHA()}}
	w.open[name] = p
	w.byRequest[id] = p
	w.byNumber[p.review.Number] = p
	return p
}

// learn reads back the change of a proposal adopted from an earlier run, once;
// false while it is not known.
func (w *Writer) learn(ctx context.Context, p *proposal) bool {
	w.mu.Lock()
	known, branch := p.change.Store != "", p.review.Branch
	w.mu.Unlock()
	if known {
		return true
	}
	c, bc, err := w.cfg.Branches.ReadProposal(ctx, branch)
	if err == nil && BranchName(c.Store, c.RequestID) != branch {
		err = fmt.Errorf("the branch holds request %s of store %s, which its name does not match", c.RequestID, c.Store)
	}
	if err != nil {
		w.log.Warn("adopted proposal not read back", "pr", p.review.URL, "branch", branch, "err", err)
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.change.Store == "" {
		p.change, p.action, p.base = c, c.Action, bc.Base
	}
	return true
}
