package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/store"
)

// failing is a store.Service whose reads fail with one domain error.
type failing struct {
	store.Service
	err error
}

func (f failing) Get(context.Context, string) (store.View, error) { return store.View{}, f.err }

// Each domain error code becomes its HTTP status here and only here; an unavailable
// dependency is 503 with Retry-After, so a client knows that nothing happened and
// when to try again.
func TestErrorCodesBecomeStatuses(t *testing.T) {
	for code, want := range map[string]int{
		store.EINVALID: 422, store.ENOTFOUND: 404, store.ECONFLICT: 409, store.EUNAUTHORIZED: 401,
		store.EFORBIDDEN: 403, store.EUNAVAILABLE: 503, store.EINTERNAL: 500, store.EPRECONDITION: 412,
	} {
		srv := httptest.NewServer(api.Handler(failing{err: store.Errorf(code, "because")}, api.Options{}))
		resp, err := http.Get(srv.URL + "/api/v1/stores/shop")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", code, resp.StatusCode, want)
		}
		if got := resp.Header.Get("Retry-After"); (code == store.EUNAVAILABLE) != (got != "") {
			t.Errorf("%s: Retry-After %q", code, got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", code, ct)
		}
	}
}
