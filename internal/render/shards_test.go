package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The shard Kustomizations of each cluster in clusters/<name>/stores.yaml are this
// function's output; the test fails when they drift apart (go test ./internal/render
// -update rewrites the files).
var clusterShardLayouts = map[string]ShardLayout{
	"local": {
		Interval: metav1.Duration{Duration: 10 * time.Minute}, RetryInterval: metav1.Duration{Duration: 30 * time.Second},
		Timeout: metav1.Duration{Duration: 2 * time.Minute}, DependsOn: []string{"infrastructure"},
	},
	"production": {
		Interval: metav1.Duration{Duration: time.Hour}, RetryInterval: metav1.Duration{Duration: 2 * time.Minute},
		Timeout: metav1.Duration{Duration: 5 * time.Minute}, DependsOn: []string{"infrastructure"},
		DecryptionSecret: "sops-age",
	},
}

const shardFileHeader = `# Every store of this cluster, applied shard by shard (docs/design.md, "How Flux
# applies the stores"): Kustomization stores-<shard> applies ExternalArtifact
# stores-<shard>, which gitops-api's shard publisher builds from the fleet tree
# stores/<cluster>/<shard>/ and republishes only when that tree changed, so a
# commit re-applies one shard (~40 stores at 10,000), not the whole fleet.
# kustomize-controller needs --feature-gates=ExternalArtifact=true.
#
# prune: a store whose files leave Git is removed from the cluster; its Namespace
# (and so its volumes) carries kustomize.toolkit.fluxcd.io/prune: disabled and
# stays until purged. wait: false: a store's readiness is its HelmRelease's.
#
# Generated: go test ./internal/render -run TestClusterShardFiles -update
`

func TestClusterShardFiles(t *testing.T) {
	for cluster, l := range clusterShardLayouts {
		body, err := ShardKustomizations(l)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte(shardFileHeader), body...)
		file := filepath.Join("..", "..", "clusters", cluster, "stores.yaml")
		if *update {
			if err := os.WriteFile(file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from ShardKustomizations (go test ./internal/render -run TestClusterShardFiles -update)", file)
		}
	}
}

func TestShardKustomizations(t *testing.T) {
	body, err := ShardKustomizations(clusterShardLayouts["production"])
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(body), "---\n")
	if len(docs) != 256 {
		t.Fatalf("%d documents, want 256", len(docs))
	}
	seen := map[string]bool{}
	for i, d := range docs {
		var k kustomizev1.Kustomization
		if err := yaml.UnmarshalStrict([]byte(d), &k); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		shard := k.Labels[ShardLabel]
		if len(shard) != 2 || seen[shard] || k.Name != "stores-"+shard || k.Spec.SourceRef.Name != k.Name ||
			k.Spec.SourceRef.Kind != "ExternalArtifact" || !k.Spec.Prune || k.Spec.Wait || k.Spec.Path != "./" {
			t.Fatalf("document %d: %+v", i, k)
		}
		if k.Spec.Decryption == nil || k.Spec.Decryption.SecretRef.Name != "sops-age" || len(k.Spec.DependsOn) != 1 {
			t.Fatalf("document %d: decryption %+v dependsOn %+v", i, k.Spec.Decryption, k.Spec.DependsOn)
		}
		seen[shard] = true
	}
	// Every store lands in a shard that has a Kustomization.
	for _, name := range []string{"shop", "a", "store-with-a-long-name-0123456789"} {
		if !seen[Shard(name)] {
			t.Errorf("store %s: shard %s has no Kustomization", name, Shard(name))
		}
	}
}
