package githttp

import "testing"

// ServeFleet serves a new bare repository fleet.git on loopback until the test ends
// and returns its URL and the bare repository's path: what most tests of a fleet
// writer or replica start from.
func ServeFleet(tb testing.TB) (url, bare string) {
	tb.Helper()
	s, err := New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	if bare, err = s.InitBare("fleet.git"); err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s.URL() + "/fleet.git", bare
}
