package github_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// BenchmarkReviewedCreate: what the pull-request path costs a create against the
// direct commit, in the same run, on the same stack (the lifecycle over the GitHub
// writer over the Git writer, a real Git server on loopback; GitHub's REST side an
// httptest server, so GitHub's own latency is not in the figure). direct is a basic
// store, committed and pushed to main; pull-request a premium one: its branch pushed,
// the open pull requests listed, one opened and labelled. Report the ratio.
func BenchmarkReviewedCreate(b *testing.B) {
	for _, path := range []struct {
		name string
		plan store.PlanName
	}{{"direct", store.Basic}, {"pull-request", store.Premium}} {
		b.Run(path.name, func(b *testing.B) {
			s := newStack(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				st := premium(fmt.Sprintf("b%d", i))
				st.Plan = path.plan
				out, err := s.svc.Create(ctx, st, meta(fmt.Sprintf("bench-%d", i)))
				if err != nil {
					b.Fatal(err)
				}
				if (path.plan == store.Premium) != (out.State == store.RequestAwaitingApproval) {
					b.Fatalf("%s: %+v", path.name, out)
				}
			}
		})
	}
}
