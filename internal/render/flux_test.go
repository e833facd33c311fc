package render

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/kustomize"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/k8sschema"
	"github.com/storefleet/storefleet/internal/store"
)

// TestFluxBuild builds a rendered cluster folder the way kustomize-controller does: stores/local has no
// kustomization.yaml, so Flux's generator writes one taking in every store folder below the shards, then
// builds it. Every object rendered must come out, and nothing else.
func TestFluxBuild(t *testing.T) {
	root := t.TempDir()
	opts := LocalOptions()
	want := map[string]bool{}
	write := func(files []File) {
		for _, f := range files {
			p := filepath.Join(root, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
			if filepath.Base(p) == KustomizationFile {
				continue
			}
			for _, doc := range strings.Split(string(f.Content), "\n---\n") {
				var o struct {
					Kind     string
					Metadata struct{ Name, Namespace string }
				}
				if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
					t.Fatal(err)
				}
				want[o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name] = true
			}
		}
	}
	n := 0
	for i, e := range []store.Engine{store.WooCommerce, store.Medusa, store.WooCommerce, store.Medusa, store.WooCommerce, store.Medusa} {
		for _, p := range store.PlanNames {
			s := shop(e, p)
			s.Name = fmt.Sprintf("shop-%d-%s", i, p)
			files, err := Store(s, opts)
			if err != nil {
				t.Fatal(err)
			}
			write(files)
			n++
		}
	}
	ret := shop(store.WooCommerce, store.Basic)
	ret.Name = "retained-shop"
	files, err := Retained(ret, opts)
	if err != nil {
		t.Fatal(err)
	}
	write(files)
	pur := shop(store.Medusa, store.Basic)
	pur.Name = "purged-shop"
	if files, err = PurgeStep1(pur, opts); err != nil {
		t.Fatal(err)
	}
	write(files)
	shards, _ := filepath.Glob(filepath.Join(root, "stores", "local", "*"))
	if len(shards) < 2 {
		t.Fatalf("test stores landed in %d shard(s); the build must cross shards", len(shards))
	}

	// Each shard is built as its Kustomization stores-<shard> builds it: the
	// ExternalArtifact holds stores/local/<shard>/ with path ./ and no
	// kustomization.yaml at its root, so kustomize-controller generates one.
	got := map[string]bool{}
	for _, shardDir := range shards {
		shard := filepath.Base(shardDir)
		ks := kustomizev1.Kustomization{
			TypeMeta: metav1TypeMeta(),
			Spec:     kustomizev1.KustomizationSpec{Path: "./", Prune: true},
		}
		ks.Name, ks.Namespace = store.ShardObjectName(shard), "flux-system"
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ks)
		if err != nil {
			t.Fatal(err)
		}
		gen := kustomize.NewGenerator(shardDir, unstructured.Unstructured{Object: u})
		action, err := gen.WriteFile(shardDir)
		if err != nil {
			t.Fatalf("generator: %v", err)
		}
		if action != kustomize.CreatedAction {
			t.Fatalf("generator action %q: a shard folder must have no kustomization.yaml of its own", action)
		}
		rm, err := kustomize.SecureBuild(shardDir, shardDir, false)
		if err != nil {
			t.Fatalf("build of shard %s: %v", shard, err)
		}
		for _, r := range rm.Resources() {
			k := r.GetKind() + "/" + r.GetNamespace() + "/" + r.GetName()
			if got[k] {
				t.Errorf("duplicate %s", k)
			}
			got[k] = true
		}
		out, err := rm.AsYaml()
		if err != nil {
			t.Fatal(err)
		}
		if err := k8sschema.Validate(out); err != nil {
			t.Fatalf("objects built from shard %s: %v", shard, err)
		}
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 || len(got) == 0 {
		t.Fatalf("build of %d objects: missing %v, unexpected %v", len(got), missing, extra)
	}
	// Every live store contributes one HelmRelease; the retained and purged ones none.
	hrs := 0
	for k := range got {
		if strings.HasPrefix(k, "HelmRelease/") {
			hrs++
		}
	}
	if hrs != n {
		t.Fatalf("%d HelmReleases built, want %d", hrs, n)
	}
}

func metav1TypeMeta() metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind}
}
