package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// TestShopsServeOnNode is the platform end to end: gitops-api against a test
// environment with a worker node (Helm waits there, the charts run on the images
// built here), one WooCommerce and one Medusa store created through the API reach
// ready with running Pods and answer HTTP through the node's ingress (WordPress's
// home page; Medusa's /health and /store/products with the publishable key its
// set-up made); their Pods killed, they come back with their data; deleted then
// purged, their volumes are gone. It starts an environment of its own beside the
// package's (which has no node, so its stores never run).
func TestShopsServeOnNode(t *testing.T) {
	testenv.RequireNode(t)
	ne := testenv.StartT(t, testenv.Options{Node: true, NodeImages: testenv.ShopImages})
	n := ne.Node
	dataDir := t.TempDir()
	artifacts, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	flags := ne.State().ServeFlags()
	t.Logf("gitops-api flags for this cluster: %v", flags)
	a, err := launchServe(ne, "127.0.0.1:0", dataDir, artifacts, metrics, "gitops-api-shops.log", flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.stop() })

	ctx := context.Background()
	type shop struct {
		name, engine, title string
		start               time.Time
		serving             time.Duration
		serves              func() (bool, string)
	}
	shops := []*shop{
		{name: "wpnode", engine: string(store.WooCommerce), title: "Node Test Shop"},
		{name: "mdnode", engine: string(store.Medusa), title: "Node Test Market"},
	}
	// WordPress's home page (installed: not the installer); Medusa's /health.
	shops[0].serves = func() (bool, string) {
		code, body := shopGet(n, "wpnode", "/", "")
		return code == http.StatusOK && strings.Contains(body, "Node Test Shop") && !strings.Contains(body, "wp-admin/install.php"),
			fmt.Sprintf("%d %.300s", code, body)
	}
	shops[1].serves = func() (bool, string) {
		code, body := shopGet(n, "mdnode", "/health", "")
		return code == http.StatusOK && strings.Contains(body, "OK"), fmt.Sprintf("%d %.300s", code, body)
	}
	streams := map[string]*stream{}
	for _, s := range shops {
		s.start = time.Now()
		a.do(t, http.MethodPost, "/api/v1/stores", map[string]any{"name": s.name, "engine": s.engine, "plan": "basic",
			"settings": map[string]any{"adminEmail": "owner@example.com", "title": s.title}}, http.StatusAccepted)
		streams[s.name] = a.events(t, "/api/v1/stores/"+s.name+"/events", "")
	}
	for _, s := range shops {
		limit := 8 * time.Minute
		if s.engine == string(store.Medusa) {
			limit = 15 * time.Minute
		}
		got, last, _ := streams[s.name].phases(t, limit, store.PhaseReady, store.PhaseFailed)
		if last.Phase != store.PhaseReady {
			t.Fatalf("%s: phases %v, last %+v\n%s", s.name, got, last, podReport(ctx, ne.Client, s.name))
		}
		t.Logf("%s: ready %s after the request (phases %v)", s.name, time.Since(s.start).Round(time.Second), got)
		// Ready means serving: the shop answers at once, through the node's
		// ingress at its own host. (The stores are awaited in turn; WooCommerce's
		// is the shorter install, so neither figure includes the other's wait.)
		waitFor(t, time.Minute, s.serves)
		s.serving = time.Since(s.start)
		wantPodsRunning(t, ctx, ne.Client, s.name)
	}
	wp, md := shops[0], shops[1]
	home := wp.serves
	key := publishableKey(t, ctx, ne.Client, md.name)
	products := func() (bool, string) {
		code, body := shopGet(n, md.name, "/store/products", key)
		return code == http.StatusOK && strings.Contains(body, `"products"`), fmt.Sprintf("%d %.300s", code, body)
	}
	waitFor(t, time.Minute, products)
	for _, s := range shops {
		t.Logf("request -> serving, %s (%s): %s", s.engine, s.name, s.serving.Round(time.Second))
	}
	// From the host too, as `make dev` and curl reach them.
	req, _ := http.NewRequest(http.MethodGet, n.IngressURL+"/", nil)
	req.Host = wp.name + "." + store.DefaultBaseDomain
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), wp.title) {
		t.Fatalf("home page from the host's loopback %s: %d %.300s", n.IngressURL, resp.StatusCode, body)
	}

	// Every Pod killed: they come back on the same volumes. WordPress is still
	// installed (its home page, not the installer); Medusa's database still has
	// the key the set-up made.
	for _, s := range shops {
		if err := ne.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("store-"+s.name)); err != nil {
			t.Fatal(err)
		}
	}
	// Medusa migrates again at every start (its init containers), minutes on a
	// busy machine.
	waitFor(t, 5*time.Minute, home)
	waitFor(t, 12*time.Minute, products)
	for _, s := range shops {
		wantPodsRunning(t, ctx, ne.Client, s.name)
	}

	// Delete (retained: the data stays), then purge: the volumes go.
	for _, s := range shops {
		a.do(t, http.MethodDelete, "/api/v1/stores/"+s.name, nil, http.StatusAccepted)
		got, last, _ := a.events(t, "/api/v1/stores/"+s.name+"/events", "").phases(t, 5*time.Minute, store.PhaseRetained)
		if last.Phase != store.PhaseRetained {
			t.Fatalf("%s after delete: %v %+v", s.name, got, last)
		}
		if pvs := volumesOf(t, ctx, ne.Client, s.name); len(pvs) == 0 {
			t.Fatalf("%s: a retained store has no volumes", s.name)
		}
		a.do(t, http.MethodDelete, "/api/v1/stores/"+s.name+"?purge=true", nil, http.StatusAccepted)
		got, last, _ = a.events(t, "/api/v1/stores/"+s.name+"/events", "").phases(t, 5*time.Minute, store.PhaseDeleted)
		if last.Phase != store.PhaseDeleted {
			t.Fatalf("%s after purge: %v %+v", s.name, got, last)
		}
	}
	waitFor(t, 5*time.Minute, func() (bool, string) {
		var left []string
		for _, s := range shops {
			for _, pv := range volumesOf(t, ctx, ne.Client, s.name) {
				left = append(left, pv.Name)
			}
		}
		ents, _ := os.ReadDir(filepath.Join(n.Dir, "volumes"))
		return len(left) == 0 && len(ents) == 0, fmt.Sprintf("PVs %v, %d volume folders", left, len(ents))
	})
}

// shopGet asks the node's ingress for path on the store's host (inside the node's
// namespace), with Medusa's publishable key when given.
func shopGet(n *testenv.Node, name, path, key string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.IngressAddr()+path, nil)
	req.Host = name + "." + store.DefaultBaseDomain
	if key != "" {
		req.Header.Set("x-publishable-api-key", key)
	}
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wantPodsRunning: every Pod of the store is Running with all containers ready
// (a Job's completed Pods aside).
func wantPodsRunning(t *testing.T, ctx context.Context, c client.Client, name string) {
	t.Helper()
	waitFor(t, 5*time.Minute, func() (bool, string) {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace("store-"+name)); err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded {
				continue
			}
			if p.Status.Phase != corev1.PodRunning {
				return false, podReport(ctx, c, name)
			}
			for _, cs := range p.Status.ContainerStatuses {
				if !cs.Ready {
					return false, podReport(ctx, c, name)
				}
			}
			running++
		}
		return running > 0, podReport(ctx, c, name)
	})
}

// podReport is each Pod's phase and its containers' states, for failures.
func podReport(ctx context.Context, c client.Client, name string) string {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("store-"+name)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "%s %s:", p.Name, p.Status.Phase)
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			fmt.Fprintf(&b, " %s ready=%v", cs.Name, cs.Ready)
			if w := cs.State.Waiting; w != nil {
				fmt.Fprintf(&b, " waiting(%s: %.200s)", w.Reason, w.Message)
			}
			if x := cs.State.Terminated; x != nil {
				fmt.Fprintf(&b, " terminated(%s %d: %.200s)", x.Reason, x.ExitCode, x.Message)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// publishableKey is the storefront key Medusa's set-up reports in its
// termination message.
func publishableKey(t *testing.T, ctx context.Context, c client.Client, name string) string {
	t.Helper()
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("store-"+name)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == "setup" && s.State.Terminated != nil {
				if key := strings.TrimSpace(strings.TrimPrefix(s.State.Terminated.Message, "publishable-api-key:")); strings.HasPrefix(key, "pk_") {
					return key
				}
			}
		}
	}
	t.Fatalf("no publishable key in the setup container's termination message:\n%s", podReport(ctx, c, name))
	return ""
}

// volumesOf are the PersistentVolumes bound to the store's claims.
func volumesOf(t *testing.T, ctx context.Context, c client.Client, name string) []corev1.PersistentVolume {
	t.Helper()
	var pvs corev1.PersistentVolumeList
	if err := c.List(ctx, &pvs); err != nil {
		t.Fatal(err)
	}
	var out []corev1.PersistentVolume
	for _, pv := range pvs.Items {
		if pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Namespace == "store-"+name {
			out = append(out, pv)
		}
	}
	return out
}
