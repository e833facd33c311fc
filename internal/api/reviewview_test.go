package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// A store whose change waits on a pull request is awaiting-approval with the pull
// request in GET and on its stream, in the one Status shape, although the cluster
// still runs it ready: the fleet's view (store.View.Review) wins over the live phase.
func TestStatusUnderReview(t *testing.T) {
	sp := loadSpec(t)
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("x", "main@sha1:c1")
	tr.Load("shop", status.Desired{State: store.StateRetained, Commit: "c1", Shard: "x"})
	tr.SetShardSource("x", "main@sha1:c1", nil)
	pr := store.Review{Required: true, URL: "https://github.example/o/fleet/pull/3", Number: 3, Branch: "storefleet/shop/r1", Reviewers: []string{"bob"}, Checks: "pending"}
	tr.Reviewing("shop", pr, store.RequestAwaitingApproval)
	svc := oneStore{v: store.View{
		Store:  store.Store{Name: "shop", Engine: store.WooCommerce, Plan: "basic", Cluster: "local"}.WithDefaults(""),
		State:  store.StateRetained,
		Commit: &store.Commit{SHA: "c1", Time: time.Unix(1e9, 0).UTC()},
		Review: &pr,
	}}
	srv := httptest.NewServer(api.Handler(svc, api.Options{Status: tr}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/stores/shop")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Plan   string          `json:"plan"`
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	var st store.Status
	if err := json.Unmarshal(got.Status, &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != store.PhaseAwaitingApproval || st.Review == nil || st.Review.URL != pr.URL || st.Review.Checks != "pending" || got.Plan != "basic" {
		t.Fatalf("GET of a store under review: %s", body)
	}

	resp, err = http.Get(srv.URL + "/api/v1/stores/shop/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var streamed json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && streamed == nil {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			streamed = json.RawMessage(d)
		}
	}
	statusSchema := sp.schema(t, "#/components/schemas/Status")
	for what, raw := range map[string]json.RawMessage{"GET": got.Status, "stream": streamed} {
		v, err := jsonAny(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := statusSchema.Validate(v); err != nil {
			t.Errorf("%s status does not match the Status schema: %v\n%s", what, err, raw)
		}
	}
	if !bytes.Equal(got.Status, streamed) {
		t.Errorf("GET status\n%s\nstream\n%s", got.Status, streamed)
	}
}
