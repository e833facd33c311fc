package clustertest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/testenv"
)

// clusters/production/flux-shards is what a cluster with two Flux controller shards applies:
// it builds with kustomize, the API server takes every object (strict server-side
// dry run), its controllers select exactly render's labels (the labels gitops-api
// writes with --flux-shards 2), and the main controllers' patch restricts them to
// what has none.
func TestClusterFluxShards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "clusters", "production", "flux-shards")
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.DecodeYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, key := range render.FluxShards(2).Keys() {
		for _, c := range []string{"kustomize-controller", "helm-controller"} {
			want[c+"-"+key] = "--watch-label-selector=" + render.ShardControllersSelector(key)
		}
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		if o.GetKind() != "Deployment" {
			continue
		}
		sel, ok := want[o.GetName()]
		if !ok {
			t.Errorf("unexpected Deployment %s", o.GetName())
			continue
		}
		delete(want, o.GetName())
		if o.GetNamespace() != "flux-system" {
			t.Errorf("Deployment %s in namespace %q, not flux-system", o.GetName(), o.GetNamespace())
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			t.Fatalf("Deployment %s: %d containers", o.GetName(), len(containers))
		}
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		if !slices.Contains(args, sel) {
			t.Errorf("Deployment %s args %q lack %q", o.GetName(), args, sel)
		}
		if strings.HasPrefix(o.GetName(), "kustomize-controller") && !slices.Contains(args, "--feature-gates=ExternalArtifact=true") {
			t.Errorf("Deployment %s lacks the ExternalArtifact feature gate the shard Kustomizations need", o.GetName())
		}
	}
	for name := range want {
		t.Errorf("clusters/production/flux-shards has no Deployment %s", name)
	}

	data, err := os.ReadFile(filepath.Join(dir, "main-controllers-patch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var patch []map[string]any
	if err := yaml.Unmarshal(data, &patch); err != nil {
		t.Fatal(err)
	}
	if len(patch) != 1 || patch[0]["op"] != "add" || patch[0]["path"] != "/spec/template/spec/containers/0/args/-" ||
		patch[0]["value"] != "--watch-label-selector="+render.MainControllersSelector {
		t.Errorf("main-controllers-patch.yaml is not one JSON patch adding --watch-label-selector=%s: %v", render.MainControllersSelector, patch)
	}
}
