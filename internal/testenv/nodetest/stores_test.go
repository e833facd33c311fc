package nodetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/testenv"
)

// BenchmarkNodeMemory installs STOREFLEET_NODE_STORES (default 10) WooCommerce
// stores (Helm, the Debian images) on one node and reports the node's memory once
// all serve: the figure docs/benchmarks.md asks for. One run whatever b.N is: a
// node with N stores is the unit measured.
func BenchmarkNodeMemory(b *testing.B) {
	count := 10
	if v := os.Getenv("STOREFLEET_NODE_STORES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("STOREFLEET_NODE_STORES=%q: want a positive number of stores", v)
		}
		count = n
	}
	if b.N > 1 {
		b.Skip("measured once, at b.N = 1")
	}
	var t testing.TB = b
	e, refs := startNode(t, "mariadb", "wordpress")
	n := e.Node
	ctx := context.Background()
	c := e.Client
	wpRepo, wpTag := splitRef(refs["wordpress"])
	dbRepo, dbTag := splitRef(refs["mariadb"])
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range count {
		name := fmt.Sprintf("shop%02d", i)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "store-" + name}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		vf := filepath.Join(t.TempDir(), "values.yaml")
		values := fmt.Sprintf("store: {name: %s, domain: %s.stores.localhost, title: %s}\nstorage: {uploads: 1Gi, database: 1Gi}\ningress: {enabled: false}\nimages:\n  wordpress: {repository: %s, tag: %s}\n  mysql: {repository: %s, tag: %s}\n  pullPolicy: Never\n",
			name, name, name, wpRepo, wpTag, dbRepo, dbTag)
		if err := os.WriteFile(vf, []byte(values), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(e.Tools.Helm, "install", name, filepath.Join(root, "charts/woocommerce"), "-f", vf,
			"--kubeconfig", e.Kubeconfig, "-n", ns.Name)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm install %s: %v\n%s", name, err, out)
		}
	}
	wait(t, "every store serving", 30*time.Minute, func() (bool, string) {
		var ds appsv1.DeploymentList
		if err := c.List(ctx, &ds, client.MatchingLabels{"app.kubernetes.io/component": "wordpress"}); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, d := range ds.Items {
			if d.Status.ReadyReplicas == 1 {
				ready++
			}
		}
		return ready == count, fmt.Sprintf("%d/%d serving", ready, count)
	})
	t.Logf("%d stores serving %s after the first helm install", count, time.Since(t0).Round(time.Second))
	programs, pods := n.Memory()
	var total int64
	var parts []string
	for name, b := range programs {
		total += b
		parts = append(parts, fmt.Sprintf("%s %d", name, b>>20))
	}
	t.Logf("memory with %d stores: node programs %d MiB (%s), Pods %d MiB (%d MiB per store)",
		count, total>>20, strings.Join(parts, ", "), pods>>20, pods>>20/int64(count))
	b.ReportMetric(float64(total>>20), "node-MiB")
	b.ReportMetric(float64(pods>>20)/float64(count), "pod-MiB/store")
	b.ReportMetric(time.Since(t0).Seconds(), "s-to-serving")
}
