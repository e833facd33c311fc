package github

import (
	"context"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/storefleet/storefleet/internal/store"
)

// Recover learns the open pull requests of earlier runs from GitHub, so that after
// a restart a change to a store under review is still refused naming its pull
// request, and its merge or close is still settled (by delivery or poll). The
// branch names the store and the request; what the branch holds is not read back,
// so such a pull request is not rebuilt on a moved base until its request is sent
// again (the retry proposes it anew).
func (w *Writer) Recover(ctx context.Context) error {
	opts := &gh.PullRequestListOptions{State: "open", Base: w.cfg.Base, ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		prs, resp, err := w.cfg.Client.PullRequests.List(ctx, w.cfg.Owner, w.cfg.Name, opts)
		if err != nil {
			return unavailable(err)
		}
		for _, pr := range prs {
			w.adopt(pr)
		}
		if resp.NextPage == 0 {
			return nil
		}
		opts.Page = resp.NextPage
	}
}

func (w *Writer) adopt(pr *gh.PullRequest) {
	branch := pr.GetHead().GetRef()
	rest, ok := strings.CutPrefix(branch, "storefleet/")
	if !ok {
		return
	}
	name, id, ok := strings.Cut(rest, "/")
	if !ok || name == "" || id == "" || BranchName(name, id) != branch {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open[name] != nil {
		return
	}
	p := &proposal{store: name, requestID: id, state: store.RequestAwaitingApproval,
		review: store.Review{Required: true, URL: pr.GetHTMLURL(), Number: pr.GetNumber(), Branch: branch, Commit: pr.GetHead().GetSHA()}}
	w.open[name] = p
	w.byRequest[id] = p
	w.byNumber[p.review.Number] = p
}
