package serve

import (
	"strings"
	"testing"
)

// --flux-shards (or its variable) reaches both the render options and the shard
// layout, and a count render would refuse stops serve at start, by name.
func TestFluxShardsSetting(t *testing.T) {
	c, err := parse(nil, vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.FluxShards != 0 || c.kube.shards.FluxShards != 0 {
		t.Errorf("default: render %d, layout %d; want 0 (no sharding)", c.opts.FluxShards, c.kube.shards.FluxShards)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"--flux-shards", "3"}},
		{env: map[string]string{"STOREFLEET_FLUX_SHARDS": "3"}},
		{args: []string{"--flux-shards", "3"}, env: map[string]string{"STOREFLEET_FLUX_SHARDS": "many"}},
	} {
		c, err := parse(tc.args, vars(tc.env))
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		if c.opts.FluxShards != 3 || c.kube.shards.FluxShards != 3 {
			t.Errorf("%v %v: render %d, layout %d; want 3", tc.args, tc.env, c.opts.FluxShards, c.kube.shards.FluxShards)
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--flux-shards", "two"}, want: "flux-shards"},
		{args: []string{"--flux-shards", "-1"}, want: "flux shards"},
		{args: []string{"--flux-shards", "65"}, want: "flux shards"},
		{env: map[string]string{"STOREFLEET_FLUX_SHARDS": "many"}, want: "STOREFLEET_FLUX_SHARDS"},
	} {
		if _, err := parse(tc.args, vars(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}
