package nodetest

import (
	"context"
	"fmt"
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

// TestMedusaChartServes installs the medusa chart with the images built here
// (Medusa 2.21 on Node 22 from npm, Debian's PostgreSQL 15 and Redis 7.0) on the
// node: migrations and the set-up run as init containers, and Medusa answers
// /health through the Service.
func TestMedusaChartServes(t *testing.T) {
	e, refs := startNode(t, "postgresql", "redis", "medusa")
	n := e.Node
	ctx := context.Background()
	c := e.Client
	mRepo, mTag := splitRef(refs["medusa"])
	pRepo, pTag := splitRef(refs["postgresql"])
	rRepo, rTag := splitRef(refs["redis"])
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store-market", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	values := fmt.Sprintf(`store:
  name: market
  domain: market.stores.localhost
  title: Storefleet Test Market
  adminEmail: owner@example.com
storage: {uploads: 1Gi, database: 1Gi}
image: {repository: %s, tag: %s, pullPolicy: Never}
images:
  postgresql: {repository: %s, tag: %s}
  redis: {repository: %s, tag: %s}
  pullPolicy: Never
`, mRepo, mTag, pRepo, pTag, rRepo, rTag)
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.Tools.Helm, "install", "market", filepath.Join(root, "charts/medusa"), "-f", vf,
		"--kubeconfig", e.Kubeconfig, "-n", "store-market")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	wait(t, "Medusa ready", 15*time.Minute, func() (bool, string) {
		var ps corev1.PodList
		if err := c.List(ctx, &ps, client.InNamespace("store-market")); err == nil {
			for _, p := range ps.Items {
				for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
					if s.RestartCount >= 3 {
						t.Fatalf("container %s of %s restarted %d times\n%s", s.Name, p.Name, s.RestartCount, podReport(c))
					}
				}
			}
		}
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: "store-market", Name: "market-medusa"}, &d); err != nil {
			return false, err.Error()
		}
		return d.Status.ReadyReplicas == 1, fmt.Sprintf("%d ready", d.Status.ReadyReplicas)
	})
	t.Logf("Medusa ready %s after helm install", time.Since(t0).Round(100*time.Millisecond))
	programs, podsRSS := n.Memory()
	var total int64
	for _, b := range programs {
		total += b
	}
	t.Logf("memory: node programs %d MiB, Pods %d MiB (one store: Medusa + PostgreSQL + Redis)", total>>20, podsRSS>>20)

	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "store-market", Name: "market-medusa"}, &svc); err != nil {
		t.Fatal(err)
	}
	// Ready is the probe's answer; on a loaded machine the next request through the
	// Service can outlast a request's timeout (CI-like runs saw /health time out right
	// after Ready), so each answer is asked for until it comes.
	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(svc.Spec.Ports[0].Port))+path, nil)
		if key != "" {
			req.Header.Set("x-publishable-api-key", key)
		}
		return answer(n.HTTPClient(), req)
	}
	wait(t, "/health through the Service", 2*time.Minute, func() (bool, string) {
		code, body := get("/health", "")
		return code == http.StatusOK && strings.Contains(body, "OK"), fmt.Sprintf("%d %q", code, body)
	})

	// The store API with the publishable key the set-up created and reported in
	// its termination message.
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("store-market"), client.MatchingLabels{"app.kubernetes.io/component": "medusa"}); err != nil {
		t.Fatal(err)
	}
	var key string
	for _, p := range pods.Items {
		for _, s := range p.Status.InitContainerStatuses {
			if s.Name == "setup" && s.State.Terminated != nil {
				key = strings.TrimSpace(strings.TrimPrefix(s.State.Terminated.Message, "publishable-api-key:"))
			}
		}
	}
	if !strings.HasPrefix(key, "pk_") {
		t.Fatalf("setup's termination message gives no publishable key: %q", key)
	}
	var body string
	wait(t, "/store/products through the Service", 2*time.Minute, func() (bool, string) {
		var code int
		code, body = get("/store/products", key)
		return code == http.StatusOK && strings.Contains(body, `"products"`), fmt.Sprintf("%d %.500s", code, body)
	})
	t.Logf("/store/products with the set-up's publishable key: %.200s", body)

	// The same through the store's Ingress host and the node's ingress controller.
	wait(t, "/store/products through the ingress", 2*time.Minute, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.IngressAddr()+"/store/products", nil)
		req.Host = "market.stores.localhost"
		req.Header.Set("x-publishable-api-key", key)
		code, body := answer(n.HTTPClient(), req)
		return code == 200 && strings.Contains(body, `"products"`), fmt.Sprintf("%d %.200s", code, body)
	})
	t.Logf("/store/products through the ingress at %s (Host market.stores.localhost)", n.IngressAddr())
}
