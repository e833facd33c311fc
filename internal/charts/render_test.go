package charts

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// rendered is what render writes for one store: the HelmRelease's chart values and the
// objects of the store folder.
type rendered struct {
	values      map[string]any
	helmRelease *unstructured.Unstructured
	namespace   *unstructured.Unstructured
	// source is the shared chart source of the store's engine and version.
	source *unstructured.Unstructured
}

func renderStore(t *testing.T, e store.Engine, p store.PlanName, name string) rendered {
	t.Helper()
	s := store.Store{Name: name, Engine: e, Plan: p, Settings: store.Settings{
		Title: "Schöne Läden & Co — \"Shop\" #1: yes", AdminEmail: "owner@example.com", Currency: "EUR", Country: "DE",
	}}.WithDefaults("")
	if err := s.Validate(); err != nil {
		t.Fatalf("store %s: %v", name, err)
	}
	files, err := render.Store(s, render.LocalOptions())
	if err != nil {
		t.Fatal(err)
	}
	var r rendered
	shared, err := render.SharedChartSource(s, render.LocalOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, shared) {
		objs, err := DecodeObjects(f.Content)
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		for _, o := range objs {
			switch o.GetKind() {
			case "HelmRelease":
				r.helmRelease = o
				r.values, _, _ = unstructured.NestedMap(o.Object, "spec", "values")
			case "Namespace":
				r.namespace = o
			case "HelmChart":
				r.source = o
			}
		}
	}
	if r.helmRelease == nil || r.values == nil || r.namespace == nil {
		t.Fatalf("render wrote no HelmRelease with values or no Namespace for %s", name)
	}
	return r
}

// The cross-check between render and the charts: for each engine and plan (and the longest
// store name) the values render really writes are accepted by the chart's schema and give a
// chart that passes every store check; the HelmRelease points at this chart and version;
// the namespace enforces the Pod Security level the chart declares; and the fixtures carry
// the same keys as render's output.
func TestRenderOutputFitsCharts(t *testing.T) {
	names := []string{"shop", strings.Repeat("abcdefghij", 4)}
	for _, e := range store.Engines {
		level, err := PodSecurityLevel(chartDir(string(e)))
		if err != nil {
			t.Fatal(err)
		}
		chartVersion := chartYAMLVersion(t, string(e))
		for _, p := range store.PlanNames {
			for _, name := range names {
				t.Run(string(e)+"/"+string(p)+"/"+name[:4], func(t *testing.T) {
					t.Parallel()
					r := renderStore(t, e, p, name)
					if got := r.namespace.GetLabels()["pod-security.kubernetes.io/enforce"]; got != level {
						t.Errorf("namespace enforces Pod Security %q, chart %s declares %q", got, e, level)
					}
					rel, _, _ := unstructured.NestedString(r.helmRelease.Object, "spec", "releaseName")
					if rel != name {
						t.Errorf("HelmRelease releaseName %q, want the store name %q", rel, name)
					}
					// The HelmRelease points by chartRef at the shared source of its engine
					// and version, and that source asks for this chart at this version.
					ref, _, _ := unstructured.NestedStringMap(r.helmRelease.Object, "spec", "chartRef")
					if ref["kind"] != "HelmChart" || ref["name"] != r.source.GetName() || ref["namespace"] != r.source.GetNamespace() {
						t.Errorf("HelmRelease chartRef %v, want the shared HelmChart %s/%s", ref, r.source.GetNamespace(), r.source.GetName())
					}
					chart, _, _ := unstructured.NestedString(r.source.Object, "spec", "chart")
					version, _, _ := unstructured.NestedString(r.source.Object, "spec", "version")
					if chart != string(e) || version != chartVersion {
						t.Errorf("the shared chart source asks for chart %s %s, charts/%s is version %s", chart, version, e, chartVersion)
					}
					objs := template(t, string(e), TemplateOptions{Release: rel, Namespace: r.helmRelease.GetNamespace(),
						ValuesFiles: []string{writeValues(t, r.values)}})
					checkStore(t, string(e), rel, r.values, objs)
					checkNameLimits(t, objs)
					if name == "shop" {
						got := leafKeys("", readValues(t, fixture(string(e), string(p))))
						want := leafKeys("", r.values)
						if strings.Join(got, ",") != strings.Join(want, ",") {
							t.Errorf("fixture %s keys\n %v\nrender writes\n %v", fixture(string(e), string(p)), got, want)
						}
					}
				})
			}
		}
	}
}

func chartYAMLVersion(t *testing.T, chart string) string {
	t.Helper()
	var c struct {
		Version string `json:"version"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, chartDir(chart)+"/Chart.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	return c.Version
}
