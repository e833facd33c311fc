package clustertest

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// The shared chart sources are applied as storefleet-chart-sources
// (clusters/local/chart-sources.yaml): it may write the HelmCharts and
// OCIRepositories render.SharedChartSource renders, and nothing else — no other
// kind, no other namespace, no source that is not labelled as Storefleet's. The
// store shards' identity may write none of them. Everything is tried as a strict
// server-side dry run, as the identity itself.
func TestChartSourceIdentities(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	as := func(sa string) client.Client {
		cfg := rest.CopyConfig(env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:flux-system:" + sa}
		c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sources, shard := as("storefleet-chart-sources"), as(render.ShardServiceAccount)

	oci := render.LocalOptions()
	oci.Chart = render.ChartSource{Kind: render.SourceOCIRepository, URL: "oci://registry.example.com/charts", Namespace: "flux-system"}
	var rendered []*unstructured.Unstructured
	for _, opts := range []render.Options{render.LocalOptions(), oci} {
		f, err := render.SharedChartSource(sample("probe", store.WooCommerce, store.Basic), opts)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := testenv.DecodeYAML(f.Content)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %d objects, %v", f.Path, len(objs), err)
		}
		rendered = append(rendered, objs[0])
	}
	create := func(c client.Client, o *unstructured.Unstructured) error {
		return c.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict"))
	}
	for _, o := range rendered {
		if err := create(sources, o); err != nil {
			t.Errorf("storefleet-chart-sources may not create the rendered %s: %v", o.GetKind(), err)
		}
		if err := create(shard, o); !apierrors.IsForbidden(err) {
			t.Errorf("the shard identity creating the shared %s: want Forbidden, got %v", o.GetKind(), err)
		}
	}

	unlabelled := rendered[0].DeepCopy()
	unlabelled.SetLabels(nil)
	elsewhere := rendered[0].DeepCopy()
	elsewhere.SetNamespace("default")
	configMap := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "probe", "namespace": "flux-system",
			"labels": map[string]any{"app.kubernetes.io/managed-by": "storefleet"}}}}
	for what, tc := range map[string]struct {
		o    *unstructured.Unstructured
		want string
	}{
		"a HelmChart not labelled as Storefleet's": {unlabelled, "labelled app.kubernetes.io/managed-by=storefleet"},
		"a HelmChart outside flux-system":          {elsewhere, "cannot create"},
		"a ConfigMap in flux-system":               {configMap, "cannot create"},
	} {
		err := create(sources, tc.o)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("storefleet-chart-sources creating %s: want Forbidden (%q), got %v", what, tc.want, err)
		}
	}
}
