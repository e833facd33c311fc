package render

import (
	"strconv"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/storefleet/storefleet/internal/store"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestShardKustomization(t *testing.T) {
	l := DefaultShardLayout()
	l.DecryptionSecret = "sops-age"
	body, err := ShardKustomizationYAML(l, "0a7")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "creationTimestamp") || strings.Contains(string(body), "status:") {
		t.Errorf("manifest carries server fields:\n%s", body)
	}
	var k kustomizev1.Kustomization
	if err := yaml.UnmarshalStrict(body, &k); err != nil {
		t.Fatal(err)
	}
	if k.Name != "stores-0a7" || k.Namespace != "flux-system" || k.Labels[store.ShardLabel] != "0a7" ||
		k.Spec.SourceRef.Kind != "ExternalArtifact" || k.Spec.SourceRef.Name != k.Name ||
		!k.Spec.Prune || k.Spec.Wait || k.Spec.Path != "./" || k.Spec.Interval.Duration != time.Hour {
		t.Fatalf("%+v", k)
	}
	if k.Spec.ServiceAccountName != ShardServiceAccount || k.Spec.KubeConfig != nil {
		t.Errorf("serviceAccountName %q, kubeConfig %+v: a shard applies as %s in this cluster, never as kustomize-controller itself",
			k.Spec.ServiceAccountName, k.Spec.KubeConfig, ShardServiceAccount)
	}
	if len(k.Finalizers) != 1 || k.Finalizers[0] != kustomizev1.KustomizationFinalizer {
		t.Errorf("finalizers %v: kustomize-controller's own, set up front, spare a requeue", k.Finalizers)
	}
	if k.Spec.Decryption == nil || k.Spec.Decryption.SecretRef.Name != "sops-age" {
		t.Errorf("decryption %+v", k.Spec.Decryption)
	}
	if len(k.Spec.DependsOn) != 1 || k.Spec.DependsOn[0].Name != "infrastructure" || k.Spec.DependsOn[0].ReadyExpr != DependencyAppliedOnce {
		t.Errorf("dependsOn %+v", k.Spec.DependsOn)
	}
	again, _ := ShardKustomizationYAML(l, "0a7")
	if string(again) != string(body) {
		t.Error("same layout and shard, different bytes")
	}
}

func TestShardKustomizationRefuses(t *testing.T) {
	for _, shard := range []string{"", "0a", "0a7f", "0A7", "0g7", "../"} {
		if _, err := ShardKustomization(DefaultShardLayout(), shard); err == nil {
			t.Errorf("shard %q accepted", shard)
		}
	}
	bad := DefaultShardLayout()
	bad.Interval = metav1.Duration{}
	bad.Namespace = ""
	bad.DependsOn = []string{""}
	_, err := ShardKustomization(bad, "000")
	for _, want := range []string{"namespace", "interval", "dependsOn"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// Every store name maps to a valid shard, and the shards spread names evenly enough
// that a commit's unit of apply stays a few stores.
func TestShardSpread(t *testing.T) {
	const stores = 10000
	count := map[string]int{}
	for i := range stores {
		name := "store-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)
		s := store.Shard(name)
		if !store.ValidShard(s) {
			t.Fatalf("store.Shard(%q) = %q", name, s)
		}
		count[s]++
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	// 10,000 names in 4,096 shards: ~2.4 on average; a shard of 12 would be a
	// broken hash, not bad luck.
	if len(count) < 3500 || most > 12 {
		t.Errorf("%d shards used, the largest holds %d stores", len(count), most)
	}
}
