package testenv

import "testing"

// The controllers' --concurrent: Options first, then the environment variable, then
// the default; anything not a positive integer counts as unset.
func TestConcurrency(t *testing.T) {
	const name = "STOREFLEET_TEST_CONCURRENT"
	for _, c := range []struct {
		opt  int
		env  string
		want int
	}{
		{0, "", 4},
		{0, "16", 16},
		{10, "16", 10},
		{0, "0", 4},
		{0, "-2", 4},
		{0, "many", 4},
	} {
		t.Setenv(name, c.env)
		if got := concurrency(c.opt, name, 4); got != c.want {
			t.Errorf("concurrency(%d, %s=%q, 4) = %d, want %d", c.opt, name, c.env, got, c.want)
		}
	}
}
