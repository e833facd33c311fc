package nodetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/testenv"
)

// splitRef splits localhost/storefleet/x:tag into repository and tag.
func splitRef(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	return ref[:i], ref[i+1:]
}

// TestWooCommerceChartServes installs the woocommerce chart with the images built
// from Debian's packages (WordPress 6.1, MariaDB 10.11) on the node: WordPress is
// installed by the chart's set-up (WordPress's own installer through php-cli),
// serves its home page through the Service, reports in the set-up container's
// termination message that WooCommerce could not be had (no plugin directory
// here), keeps its data when its Pods are killed, and a purge removes the volumes.
func TestWooCommerceChartServes(t *testing.T) {
	e, refs := startNode(t, "mariadb", "wordpress")
	n := e.Node
	ctx := context.Background()
	c := e.Client
	wpRepo, wpTag := splitRef(refs["wordpress"])
	dbRepo, dbTag := splitRef(refs["mariadb"])

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store-shop", Labels: map[string]string{
		// What render gives a WooCommerce store's namespace.
		"pod-security.kubernetes.io/enforce": "baseline",
	}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	values := fmt.Sprintf(`store:
  name: shop
  domain: shop.stores.localhost
  title: Storefleet Test Shop
  adminEmail: owner@example.com
storage: {uploads: 1Gi, database: 1Gi}
images:
  wordpress: {repository: %s, tag: %s}
  mysql: {repository: %s, tag: %s}
  pullPolicy: Never
`, wpRepo, wpTag, dbRepo, dbTag)
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	helm := func(args ...string) {
		t.Helper()
		cmd := exec.Command(e.Tools.Helm, append(args, "--kubeconfig", e.Kubeconfig, "-n", "store-shop")...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm %v: %v\n%s", args, err, out)
		}
	}
	t0 := time.Now()
	helm("install", "shop", filepath.Join(root, "charts/woocommerce"), "-f", vf)

	waitServing := func(what string) {
		t.Helper()
		wait(t, what, 10*time.Minute, func() (bool, string) {
			// A container restarting again and again will not get better: stop
			// waiting and say which (the report has its reason).
			var ps corev1.PodList
			if err := c.List(ctx, &ps, client.InNamespace("store-shop")); err == nil {
				for _, p := range ps.Items {
					for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
						if s.RestartCount >= 3 {
							t.Fatalf("%s: container %s of %s restarted %d times\n%s", what, s.Name, p.Name, s.RestartCount, podReport(c))
						}
					}
				}
			}
			var d appsv1.Deployment
			if err := c.Get(ctx, client.ObjectKey{Namespace: "store-shop", Name: "shop-wordpress"}, &d); err != nil {
				return false, err.Error()
			}
			return d.Status.ReadyReplicas == 1 && d.Status.UpdatedReplicas == 1 && d.Status.Replicas == 1,
				fmt.Sprintf("%d ready", d.Status.ReadyReplicas)
		})
	}
	waitServing("WordPress ready")
	t.Logf("WordPress ready %s after helm install", time.Since(t0).Round(100*time.Millisecond))

	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "store-shop", Name: "shop-wordpress"}, &svc); err != nil {
		t.Fatal(err)
	}
	home := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(svc.Spec.ClusterIP, "80")+"/", nil)
		req.Host = "shop.stores.localhost"
		hc := n.HTTPClient()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return answer(hc, req)
	}
	// Ready is the probe's answer; the first page WordPress renders (PHP's caches
	// cold) can take longer than a request's 10 s on a loaded machine, so the page
	// is asked for until it comes.
	wait(t, "home page through the Service", 2*time.Minute, func() (bool, string) {
		code, body := home()
		return code == 200 && strings.Contains(body, "Storefleet Test Shop"), fmt.Sprintf("%d\n%.2000s", code, body)
	})
	// The store's host through the node's ingress (the test process's router, the
	// default IngressClass), as a visitor would reach it.
	wait(t, "home page through the ingress", 2*time.Minute, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.IngressAddr()+"/", nil)
		req.Host = "shop.stores.localhost"
		code, body := answer(n.HTTPClient(), req)
		return code == 200 && strings.Contains(body, "Storefleet Test Shop"), fmt.Sprintf("%d %.200s", code, body)
	})
	t.Logf("home page through the ingress at %s (Host shop.stores.localhost)", n.IngressAddr())
	// And from the host, through the loopback forwarder people use (curl).
	hreq, _ := http.NewRequest(http.MethodGet, n.IngressURL+"/", nil)
	hreq.Host = "shop.stores.localhost"
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatalf("ingress from the host's loopback: %v", err)
	}
	hbody, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != 200 || !strings.Contains(string(hbody), "Storefleet Test Shop") {
		t.Fatalf("ingress from the host's loopback %s: %d %.300s", n.IngressURL, hresp.StatusCode, hbody)
	}

	programs, podsRSS := n.Memory()
	var total int64
	var parts []string
	for name, b := range programs {
		total += b
		parts = append(parts, fmt.Sprintf("%s %d", name, b>>20))
	}
	t.Logf("memory: node programs %d MiB (%s), Pods %d MiB (one store: WordPress + MariaDB)",
		total>>20, strings.Join(parts, ", "), podsRSS>>20)

	// The set-up's report: no WooCommerce here (the plugin directory cannot be
	// reached), WordPress serving regardless.
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("store-shop"), client.MatchingLabels{"app.kubernetes.io/component": "wordpress"}); err != nil {
		t.Fatal(err)
	}
	var msg string
	for _, p := range pods.Items {
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == "woocommerce-setup" && s.State.Terminated != nil {
				msg = s.State.Terminated.Message
			}
		}
	}
	if !strings.Contains(msg, "WooCommerce not installed") {
		t.Fatalf("woocommerce-setup termination message %q, want the reason WooCommerce is missing", msg)
	}
	t.Logf("woocommerce-setup reported: %s", msg)

	// Kill both Pods: they come back on the same volumes, WordPress still
	// installed (an empty database would redirect to the installer).
	for _, p := range []string{"shop-mysql-0", pods.Items[0].Name} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "store-shop", Name: p}}
		if err := c.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	t1 := time.Now()
	wait(t, "the killed WordPress Pod replaced", 5*time.Minute, func() (bool, string) {
		var ps corev1.PodList
		if err := c.List(ctx, &ps, client.InNamespace("store-shop"), client.MatchingLabels{"app.kubernetes.io/component": "wordpress"}); err != nil {
			return false, err.Error()
		}
		for _, p := range ps.Items {
			if p.Name == pods.Items[0].Name {
				return false, "old Pod still there"
			}
		}
		return len(ps.Items) == 1, fmt.Sprintf("%d pods", len(ps.Items))
	})
	waitServing("WordPress ready after its Pods were killed")
	t.Logf("serving again %s after the Pods were killed", time.Since(t1).Round(100*time.Millisecond))
	wait(t, "home page after the kill", 2*time.Minute, func() (bool, string) {
		code, body := home()
		return code == 200 && strings.Contains(body, "Storefleet Test Shop"), fmt.Sprintf("%d %.300s", code, body)
	})

	// Purge: uninstall, then delete the namespace (the claims are kept by the
	// release, as the chart says); the provisioner then removes the volumes.
	helm("uninstall", "shop", "--wait")
	if err := c.Delete(ctx, ns); err != nil {
		t.Fatal(err)
	}
	wait(t, "volumes removed after the purge", 5*time.Minute, func() (bool, string) {
		var pvs corev1.PersistentVolumeList
		if err := c.List(ctx, &pvs); err != nil {
			return false, err.Error()
		}
		ents, _ := os.ReadDir(filepath.Join(n.Dir, "volumes"))
		return len(pvs.Items) == 0 && len(ents) == 0, fmt.Sprintf("%d PVs, %d volume folders", len(pvs.Items), len(ents))
	})
}
