package render

import (
	"encoding/json"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/storefleet/storefleet/internal/store"
)

// TestHelmWaitPerCluster: where Helm waits, each engine and plan gets its own
// action timeout (Medusa's first install migrates before it serves); where it
// does not (a cluster without a kubelet), every release has the cluster's one
// timeout and waits for nothing.
func TestHelmWaitPerCluster(t *testing.T) {
	waiting := LocalOptions()
	waiting.DisableWait = false
	for _, tc := range []struct {
		opts    Options
		engine  store.Engine
		plan    store.PlanName
		wait    bool
		timeout time.Duration
	}{
		{waiting, store.WooCommerce, store.Basic, true, 5 * time.Minute},
		{waiting, store.WooCommerce, store.Premium, true, 8 * time.Minute},
		{waiting, store.Medusa, store.Basic, true, 10 * time.Minute},
		{waiting, store.Medusa, store.Premium, true, 15 * time.Minute},
		{LocalOptions(), store.Medusa, store.Premium, false, 10 * time.Minute},
		{LocalOptions(), store.WooCommerce, store.Basic, false, 10 * time.Minute},
	} {
		_, objs, err := objects(shop(tc.engine, tc.plan), tc.opts, store.StateActive)
		if err != nil {
			t.Fatal(err)
		}
		hr := findHelmRelease(t, objs)
		got := hr.Spec.Timeout.Duration
		if got != tc.timeout || hr.Spec.Install.DisableWait == tc.wait || hr.Spec.Upgrade.DisableWait == tc.wait ||
			hr.Spec.Install.DisableWaitForJobs == tc.wait {
			t.Errorf("%s/%s wait=%v: timeout %v, install disableWait %v, upgrade disableWait %v; want timeout %v",
				tc.engine, tc.plan, tc.wait, got, hr.Spec.Install.DisableWait, hr.Spec.Upgrade.DisableWait, tc.timeout)
		}
	}
	bad := waiting
	bad.WaitTimeouts = map[store.Engine]map[store.PlanName]time.Duration{store.Medusa: {store.Basic: 0}}
	if err := bad.Validate(); err == nil {
		t.Error("a zero wait timeout was accepted")
	}
}

func findHelmRelease(t *testing.T, objs map[string][]any) *helmv2.HelmRelease {
	t.Helper()
	for _, list := range objs {
		for _, o := range list {
			if hr, ok := o.(*helmv2.HelmRelease); ok {
				return hr
			}
		}
	}
	t.Fatal("no HelmRelease rendered")
	return nil
}

// TestServiceImages: a cluster that builds its own service images hands each
// engine's chart its own keys only.
func TestServiceImages(t *testing.T) {
	opts := LocalOptions()
	opts.ServiceImages = map[store.Engine]map[string]Image{
		store.WooCommerce: {"wordpress": {Repository: "localhost/storefleet/wordpress", Tag: "6.1.9-deb12"}},
		store.Medusa:      {"redis": {Repository: "localhost/storefleet/redis", Tag: "7.0-deb12"}},
	}
	for e, want := range map[store.Engine]string{store.WooCommerce: "wordpress", store.Medusa: "redis"} {
		_, objs, err := objects(shop(e, store.Basic), opts, store.StateActive)
		if err != nil {
			t.Fatal(err)
		}
		var v ChartValues
		if err := json.Unmarshal(findHelmRelease(t, objs).Spec.Values.Raw, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Images) != 1 || v.Images[want].Repository != opts.ServiceImages[e][want].Repository {
			t.Errorf("%s: images %+v, want only %s", e, v.Images, want)
		}
	}
	opts.ServiceImages[store.Medusa]["redis"] = Image{Repository: "localhost/storefleet/redis"}
	if err := opts.Validate(); err == nil {
		t.Error("a service image without a tag was accepted")
	}
}
