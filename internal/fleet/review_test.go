package fleet_test

import (
	"context"
	"testing"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/store"
)

// premiumReviewed sends premium plans to review.
type premiumReviewed struct{}

func (premiumReviewed) Requires(s store.ReviewSubject) bool { return s.Plan == string(store.Premium) }

// proposingRepo proposes what the policy reviews, as the pull-request writer does,
// and commits the rest.
type proposingRepo struct {
	*memRepo
	seen []store.Change
}

func (r *proposingRepo) Submit(ctx context.Context, c store.Change) (store.Commit, error) {
	r.seen = append(r.seen, c)
	if c.Plan == string(store.Premium) {
		return store.Commit{}, &store.Proposed{Review: store.Review{URL: "https://github.example/pull/7", Number: 7,
			Branch: "storefleet/" + c.Store + "/" + c.RequestID}}
	}
	return r.memRepo.Submit(ctx, c)
}

func TestDryRunSaysWhetherAPullRequestWouldOpen(t *testing.T) {
	svc := newService(t, newMemRepo(), func(c *fleet.Config) { c.Review = premiumReviewed{} })
	for plan, want := range map[store.PlanName]bool{store.Premium: true, store.Basic: false} {
		s := shop("dry-"+string(plan), "")
		s.Plan = plan
		m := meta()
		m.DryRun = true
		out, err := svc.Create(context.Background(), s, m)
		if err != nil {
			t.Fatal(err)
		}
		if out.Review == nil || out.Review.Required != want {
			t.Errorf("plan %s: review %+v, want required=%v", plan, out.Review, want)
		}
	}
	// Without a policy the answer stays as it was: no review field at all.
	plain := newService(t, newMemRepo())
	m := meta()
	m.DryRun = true
	out, err := plain.Create(context.Background(), shop("plain", ""), m)
	if err != nil || out.Review != nil {
		t.Fatalf("without a policy: %+v, %v", out.Review, err)
	}
}

func TestProposedChangeIsAcceptedAwaitingApproval(t *testing.T) {
	r := &proposingRepo{memRepo: newMemRepo()}
	svc, err := fleet.New(context.Background(), fleet.Config{Repo: r, Renderer: renderer, Review: premiumReviewed{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	s := shop("big", "")
	s.Plan = store.Premium
	out, err := svc.Create(context.Background(), s, meta())
	if err != nil {
		t.Fatal(err)
	}
	if out.State != store.RequestAwaitingApproval || out.Phase != store.PhaseAwaitingApproval || out.Commit != nil {
		t.Fatalf("outcome %+v", out)
	}
	if out.Review == nil || !out.Review.Required || out.Review.URL != "https://github.example/pull/7" {
		t.Fatalf("review %+v", out.Review)
	}
	if c := r.seen[0]; c.Plan != "premium" || c.Engine != "woocommerce" {
		t.Fatalf("the writer was not told plan and engine: %+v", c)
	}
	// Nothing is on the fleet's branch until the pull request is merged.
	if _, err := svc.Get(context.Background(), "big"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Fatalf("a proposed store is visible before merge: %v", err)
	}
}
