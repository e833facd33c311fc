package serve

import (
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// A cluster that runs Pods turns Helm's wait on and may name its own service
// images; the default is the test environment without a node (no wait, the
// charts' images).
func TestHelmWaitAndServiceImages(t *testing.T) {
	c, err := parse(nil, vars(nil))
	if err != nil || !c.opts.DisableWait || c.opts.ServiceImages != nil {
		t.Fatalf("defaults: disableWait %v images %v err %v", c.opts.DisableWait, c.opts.ServiceImages, err)
	}
	c, err = parse([]string{"--helm-wait", "on", "--service-images",
		"woocommerce.wordpress=localhost/storefleet/wordpress:6.1.9-deb12, medusa.redis=localhost:5000/redis:7.0"}, vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.Engine]map[string]render.Image{
		store.WooCommerce: {"wordpress": {Repository: "localhost/storefleet/wordpress", Tag: "6.1.9-deb12"}},
		store.Medusa:      {"redis": {Repository: "localhost:5000/redis", Tag: "7.0"}},
	}
	if c.opts.DisableWait || len(c.opts.ServiceImages) != 2 ||
		c.opts.ServiceImages[store.WooCommerce]["wordpress"] != want[store.WooCommerce]["wordpress"] ||
		c.opts.ServiceImages[store.Medusa]["redis"] != want[store.Medusa]["redis"] {
		t.Errorf("got disableWait %v images %v, want wait and %v", c.opts.DisableWait, c.opts.ServiceImages, want)
	}
	for _, args := range [][]string{
		{"--helm-wait", "yes"},
		{"--service-images", "shopify.app=a:1"},
		{"--service-images", "woocommerce=a:1"},
		{"--service-images", "woocommerce.mysql=mysql"},
	} {
		_, err := parse(args, vars(nil))
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want a problem naming %s", args, err, args[0])
		}
	}
}

// --release-interval sets every HelmRelease's spec.interval; render's own default
// unless given, and bounded so that a typo cannot make helm-controller spin or stop
// correcting drift.
func TestReleaseInterval(t *testing.T) {
	c, err := parse(nil, vars(nil))
	if err != nil || c.opts.Interval != render.LocalOptions().Interval {
		t.Fatalf("default: interval %v err %v, want %v", c.opts.Interval, err, render.LocalOptions().Interval)
	}
	c, err = parse(nil, vars(map[string]string{"STOREFLEET_RELEASE_INTERVAL": "1h"}))
	if err != nil || c.opts.Interval != time.Hour {
		t.Fatalf("STOREFLEET_RELEASE_INTERVAL=1h: interval %v err %v", c.opts.Interval, err)
	}
	files, err := render.Store(store.Store{Name: "interval", Engine: store.WooCommerce, Plan: store.Basic,
		Version: "0.1.0", Settings: store.Settings{AdminEmail: "a@example.com"}}.WithDefaults(store.DefaultBaseDomain), c.opts)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range files {
		found = found || strings.Contains(string(f.Content), "interval: 1h0m0s")
	}
	if !found {
		t.Errorf("no rendered file carries interval: 1h0m0s")
	}
	for _, v := range []string{"30s", "25h", "10", "soon"} {
		_, err := parse([]string{"--release-interval", v}, vars(nil))
		if err == nil || !strings.Contains(err.Error(), "--release-interval") {
			t.Errorf("--release-interval %s: %v, want a problem naming the flag", v, err)
		}
	}
}
