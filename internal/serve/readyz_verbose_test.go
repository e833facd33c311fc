package serve_test

import (
	"net/http"
	"strings"
	"testing"
)

// /readyz?verbose without a cluster: the fleet is its one check. While the remote
// does not answer it is [-] with the same domain message as plain /readyz (never
// the URL or its credentials), the probe fails with 503 and Retry-After; once the
// remote is back it passes.
func TestVerboseReadyzFollowsTheFleet(t *testing.T) {
	rm := newGitRemote(t, urlUser, urlPass)
	rm.up()
	rm.down()
	all := &transcript{}
	defer all.mustNotShow(t, urlPass, urlUser)
	s := runServe(t, all, nil, "--data-dir", t.TempDir(), "--fleet-url", rm.url(urlUser+":"+urlPass))

	r := s.do("GET", "/readyz?verbose", "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		!strings.HasPrefix(string(r.body), "[-]fleet failed: remote unreachable") || !strings.HasSuffix(string(r.body), "\nreadyz check failed\n") {
		t.Fatalf("/readyz?verbose with the remote down: %d %v\n%s", r.status, r.header, r.body)
	}
	rm.up()
	r = s.await("/readyz?verbose", http.StatusOK, "")
	if string(r.body) != "[+]fleet ok\nreadyz check passed\n" {
		t.Fatalf("/readyz?verbose with the remote up:\n%s", r.body)
	}
}
