package serve

import (
	"net/http"

	"github.com/storefleet/storefleet/internal/dashboard"
)

// withDashboard puts the dashboard beside the API on the same listener: the page
// and its assets are public (they hold no data), every other path goes to the API
// unchanged, so /api/v1 stays behind its authentication.
func withDashboard(apiHandler http.Handler) http.Handler {
	dash := dashboard.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dashboard.Owns(r.URL.Path) {
			dash.ServeHTTP(w, r)
			return
		}
		apiHandler.ServeHTTP(w, r)
	})
}
