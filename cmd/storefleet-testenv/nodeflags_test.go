package main

import (
	"slices"
	"testing"

	"github.com/storefleet/storefleet/internal/testenv"
)

// {nodeFlags} gives gitops-api what the environment's cluster needs: Helm's wait
// and the node's images when a node runs, no wait without one.
func TestNodeFlagsExpanded(t *testing.T) {
	args := []string{"gitops-api", "serve", "{nodeFlags}", "--listen", "x"}
	got := expandDevArgs(args, testenv.State{}, "/d")
	if want := []string{"gitops-api", "serve", "--helm-wait", "off", "--listen", "x"}; !slices.Equal(got, want) {
		t.Errorf("without a node: %q, want %q", got, want)
	}
	st := testenv.State{Node: &testenv.NodeState{Images: []string{
		"localhost/storefleet/pause:1", "localhost/storefleet/mariadb:10.11-deb12", "localhost/storefleet/wordpress:6.1.9-deb12",
		"localhost/storefleet/postgresql:15-deb12", "localhost/storefleet/redis:7.0-deb12", "localhost/storefleet/medusa:2.21.2-node22",
	}}}
	got = expandDevArgs(args, st, "/d")
	want := []string{"gitops-api", "serve", "--helm-wait", "on", "--medusa-image", "localhost/storefleet/medusa:2.21.2-node22",
		"--service-images", "medusa.postgresql=localhost/storefleet/postgresql:15-deb12,medusa.redis=localhost/storefleet/redis:7.0-deb12," +
			"woocommerce.mysql=localhost/storefleet/mariadb:10.11-deb12,woocommerce.wordpress=localhost/storefleet/wordpress:6.1.9-deb12",
		"--listen", "x"}
	if !slices.Equal(got, want) {
		t.Errorf("with a node:\n%q\nwant\n%q", got, want)
	}
}
