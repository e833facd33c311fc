package fleet

import "github.com/storefleet/storefleet/internal/store"

// wouldReview tells a dry run whether the change would open a pull request; nil
// when no review policy is configured, so answers stay as they were without one.
func (s *Service) wouldReview(st store.Store, action store.Action) *store.Review {
	if s.review == nil {
		return nil
	}
	return &store.Review{Required: s.review.Requires(subjectOf(st, action))}
}

func subjectOf(st store.Store, action store.Action) store.ReviewSubject {
	return store.ReviewSubject{Action: action, Plan: string(st.Plan), Engine: string(st.Engine),
		Tenant: st.Tenant, Cluster: st.Cluster}
}

// proposed answers a change the repository sent to review: accepted, with its pull
// request, and not in the index — the fleet's branch does not have it until the
// pull request is merged, and then the follower reads it from there like any
// outside commit.
func proposed(out store.Outcome, p *store.Proposed) store.Outcome {
	r := p.Review
	r.Required = true
	out.State = store.RequestAwaitingApproval
	out.Phase = store.PhaseAwaitingApproval
	out.Review = &r
	return out
}
