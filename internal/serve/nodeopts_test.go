package serve

import (
	"strings"
	"testing"

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
