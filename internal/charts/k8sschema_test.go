package charts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/storefleet/storefleet/internal/k8sschema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Kinds that need CRDs k8sschema does not load (Gateway API, Prometheus Operator). They are
// rendered only when the cluster serves them; their schema check is the cluster's.
var notSchemaChecked = map[string]bool{
	"gateway.networking.k8s.io/v1 HTTPRoute":  true,
	"monitoring.coreos.com/v1 ServiceMonitor": true,
}

// Every object every chart renders, in every configuration the tests use, is valid against
// the Kubernetes v1.36 OpenAPI schemas (unknown fields, types, required fields, enums).
func TestTemplatesMatchKubernetesSchemas(t *testing.T) {
	v, err := k8sschema.Default()
	if err != nil {
		t.Fatalf("k8sschema: loading the Kubernetes OpenAPI schemas: %v", err)
	}
	type run struct {
		name, chart string
		o           TemplateOptions
		values      map[string]any // written to a file and appended to o.ValuesFiles
	}
	var runs []run
	for _, e := range storeEngines {
		for _, p := range plans {
			runs = append(runs, run{name: e + "/" + p, chart: e, o: TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(e, p)}}})
		}
		long := "abcdefghijabcdefghijabcdefghijabcdefghij"
		runs = append(runs,
			run{name: e + "/longest-name", chart: e, o: TemplateOptions{Release: long, ValuesFiles: []string{fixture(e, "premium")}},
				values: map[string]any{"store": map[string]any{"name": long, "domain": long + ".stores.localhost"}}},
			run{name: e + "/tls-issuer+httproute+rwx", chart: e,
				o: TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(e, "standard")}, APIVersions: []string{"gateway.networking.k8s.io/v1/HTTPRoute"}},
				values: map[string]any{
					"ingress":   map[string]any{"clusterIssuer": "letsencrypt", "className": "contour"},
					"storage":   map[string]any{"accessMode": "ReadWriteMany", "className": "fast"},
					"httpRoute": map[string]any{"enabled": true, "parentRefs": []any{map[string]any{"name": "public", "namespace": "gw", "sectionName": "https"}}},
				}},
			run{name: e + "/tls-secret", chart: e, o: TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(e, "basic")}},
				values: map[string]any{"ingress": map[string]any{"tlsSecretName": "wildcard"}}},
		)
	}
	runs = append(runs,
		run{name: "woocommerce/defaults", chart: "woocommerce", o: TemplateOptions{Release: "shop"}},
		run{name: "medusa/redis-persistence", chart: "medusa", o: TemplateOptions{Release: "shop", ValuesFiles: []string{fixture("medusa", "premium")}},
			values: map[string]any{"redis": map[string]any{"persistence": map[string]any{"enabled": true}}}},
		run{name: "storefleet/defaults", chart: "storefleet", o: TemplateOptions{Release: "storefleet", Namespace: "storefleet"}},
		run{name: "storefleet/local", chart: "storefleet", o: TemplateOptions{Release: "storefleet", Namespace: "storefleet",
			ValuesFiles: []string{chartDir("storefleet") + "/values-local.yaml"}}},
		run{name: "storefleet/prod+servicemonitor", chart: "storefleet", o: TemplateOptions{Release: "storefleet", Namespace: "storefleet",
			ValuesFiles: []string{chartDir("storefleet") + "/values-prod.yaml"}, APIVersions: []string{"monitoring.coreos.com/v1/ServiceMonitor"}},
			values: map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
	)
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			o := r.o
			if o.Namespace == "" {
				o.Namespace = "store-" + o.Release
			}
			if r.values != nil {
				o.ValuesFiles = append(append([]string(nil), o.ValuesFiles...), writeValues(t, r.values))
			}
			manifest, err := needHelm(t).Render(context.Background(), chartDir(r.chart), o)
			if err != nil {
				t.Fatal(err)
			}
			checked, skipped := splitKnown(t, v, manifest)
			if len(checked) == 0 {
				t.Fatal("nothing to validate")
			}
			if err := v.Validate(checked); err != nil {
				var se *k8sschema.Error
				if errors.As(err, &se) {
					for _, p := range se.Problems {
						t.Errorf("%s", p)
					}
					return
				}
				t.Fatal(err)
			}
			for _, s := range skipped {
				t.Logf("not schema-checked (CRD not loaded by k8sschema): %s", s)
			}
		})
	}
}

// splitKnown separates the documents k8sschema has schemas for (kept as Helm's raw bytes, so
// the strict YAML checks see exactly what Helm printed) from the CRD-gated kinds of
// notSchemaChecked; any other unknown kind is an error.
func splitKnown(t *testing.T, v *k8sschema.Validator, manifest []byte) ([]byte, []string) {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var known bytes.Buffer
	var skipped []string
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return known.Bytes(), skipped
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if tm.Kind == "" {
			continue // empty document
		}
		id := tm.APIVersion + " " + tm.Kind
		if !v.Knows(tm.APIVersion, tm.Kind) {
			if !notSchemaChecked[id] {
				t.Errorf("%s %s: no schema for this kind", id, tm.Metadata.Name)
			}
			skipped = append(skipped, id+" "+tm.Metadata.Name)
			continue
		}
		known.WriteString("---\n")
		known.Write(doc)
	}
}
