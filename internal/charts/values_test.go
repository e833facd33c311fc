package charts

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// baseValues is a values file every chart accepts: the basic plan's render output for the
// store charts, values-prod.yaml for the platform chart.
func baseValues(t *testing.T, chart string) map[string]any {
	if chart == "storefleet" {
		return readValues(t, chartDir("storefleet")+"/values-prod.yaml")
	}
	return readValues(t, fixture(chart, "basic"))
}

// set puts value at a dotted path, creating maps on the way.
func set(v map[string]any, path string, value any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := v[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			v[k] = next
		}
		v = next
	}
	v[keys[len(keys)-1]] = value
}

func del(v map[string]any, path string) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		v, _ = v[k].(map[string]any)
	}
	delete(v, keys[len(keys)-1])
}

func templateErr(t *testing.T, chart string, values map[string]any) error {
	t.Helper()
	_, err := needHelm(t).Template(context.Background(), chartDir(chart),
		TemplateOptions{Release: "shop", Namespace: "store-shop", ValuesFiles: []string{writeValues(t, values)}})
	return err
}

// An unknown key anywhere fails: a values key render writes that a chart does not know
// must break the build, not be silently ignored. Keys of the other engine count as unknown.
func TestUnknownValuesKeyFails(t *testing.T) {
	cases := map[string][]string{
		"woocommerce": {"bogus", "store.bogus", "store.regionName", "resources.cache", "resources.app.bogus",
			"resources.app.requests.gpu", "storage.bogus", "ingress.bogus", "image", "images.mysql.bogus", "woocommerce.bogus", "httpRoute.bogus"},
		"medusa": {"bogus", "store.bogus", "store.language", "resources.app.bogus", "resources.cache.limits.gpu",
			"storage.bogus", "ingress.bogus", "image.bogus", "images.redis.bogus", "redis.persistence.bogus", "medusa.bogus"},
		"storefleet": {"bogus", "image.bogus", "fleet.bogus", "fleet.credentialsSecret.bogus", "auth.bogus", "stores.bogus",
			"ingress.bogus", "autoscaling.bogus", "podDisruptionBudget.bogus", "resources.requests.gpu", "artifacts.bogus", "flux.bogus", "shards.bogus",
			"clusters.bogus", "artifacts.expose.bogus"},
	}
	for chart, paths := range cases {
		for _, path := range paths {
			t.Run(chart+"/"+path, func(t *testing.T) {
				t.Parallel()
				v := baseValues(t, chart)
				set(v, path, "x")
				err := templateErr(t, chart, v)
				last := path[strings.LastIndex(path, ".")+1:]
				if err == nil {
					t.Fatalf("values key %s was accepted", path)
				}
				if !strings.Contains(err.Error(), "additional properties '"+last+"' not allowed") {
					t.Fatalf("values key %s failed, but not as an unknown key:\n%v", path, err)
				}
			})
		}
	}
}

// Values render could get wrong are refused by the schema, naming the field.
func TestInvalidValuesFail(t *testing.T) {
	cases := []struct {
		chart, path string
		value       any
	}{
		{"woocommerce", "store.name", "Shop"},
		{"woocommerce", "store.name", "a"},
		{"woocommerce", "store.currency", "eur"},
		{"woocommerce", "store.country", "DEU"},
		{"woocommerce", "store.domain", "Shop.example.com"},
		{"woocommerce", "store.adminEmail", "owner"},
		{"woocommerce", "plan", "gold"},
		{"woocommerce", "replicas", 0},
		{"woocommerce", "storage.database", "lots"},
		{"woocommerce", "resources.app.limits.memory", "1 GB"},
		{"woocommerce", "images.wordpress.tag", "latest"},
		{"medusa", "image.tag", "latest"},
		{"medusa", "store.regionName", ""},
		{"storefleet", "image.tag", "latest"},
		{"storefleet", "fleet.url", "git@github.com:x/y"},
	}
	for _, c := range cases {
		t.Run(c.chart+"/"+c.path, func(t *testing.T) {
			t.Parallel()
			v := baseValues(t, c.chart)
			set(v, c.path, c.value)
			err := templateErr(t, c.chart, v)
			if err == nil {
				t.Fatalf("%s=%v was accepted", c.path, c.value)
			}
			if want := "/" + strings.ReplaceAll(c.path, ".", "/"); !strings.Contains(err.Error(), want) {
				t.Fatalf("%s=%v failed without naming %s:\n%v", c.path, c.value, want, err)
			}
		})
	}
}

// The medusa image has no default: the bare chart does not template, and says what to do.
func TestMedusaImageRequired(t *testing.T) {
	_, err := needHelm(t).Template(context.Background(), chartDir("medusa"), TemplateOptions{Release: "shop", Namespace: "store-shop"})
	if err == nil {
		t.Fatal("medusa templated without image.repository/image.tag")
	}
	if !strings.Contains(err.Error(), "missing properties 'repository', 'tag'") {
		t.Fatalf("want the schema to name image.repository and image.tag, got:\n%v", err)
	}
	for _, key := range []string{"repository", "tag"} {
		v := baseValues(t, "medusa")
		del(v, "image."+key)
		if err := templateErr(t, "medusa", v); err == nil || !strings.Contains(err.Error(), "missing property '"+key+"'") {
			t.Errorf("values without image.%s: want the schema to name it, got %v", key, err)
		}
	}
	objs := template(t, "medusa", TemplateOptions{Release: "shop", ValuesFiles: []string{fixture("medusa", "basic")}})
	d := find(objs, "Deployment", "shop-medusa")
	if d == nil {
		t.Fatal("Deployment shop-medusa missing")
	}
	spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	for _, c := range containers(spec) {
		if n := c["name"]; n == "medusa" || n == "migrate" || n == "setup" {
			if c["image"] != "registry.example.com/storefleet/medusa:2.21.2" {
				t.Errorf("container %v: image %v, want values image.repository:image.tag", n, c["image"])
			}
		}
	}
}

// HTTPRoute and ServiceMonitor need CRDs: rendered only when the cluster serves the API.
func TestCapabilityGatedObjects(t *testing.T) {
	route := []any{map[string]any{"name": "public", "namespace": "gateway-system"}}
	for _, e := range storeEngines {
		t.Run(e, func(t *testing.T) {
			v := baseValues(t, e)
			set(v, "httpRoute.enabled", true)
			set(v, "httpRoute.parentRefs", route)
			f := writeValues(t, v)
			if objs := template(t, e, TemplateOptions{Release: "shop", ValuesFiles: []string{f}}); len(byKind(objs, "HTTPRoute")) != 0 {
				t.Error("HTTPRoute rendered although the cluster has no gateway.networking.k8s.io/v1")
			}
			objs := template(t, e, TemplateOptions{Release: "shop", ValuesFiles: []string{f},
				APIVersions: []string{"gateway.networking.k8s.io/v1/HTTPRoute"}})
			routes := byKind(objs, "HTTPRoute")
			if len(routes) != 1 {
				t.Fatalf("%d HTTPRoutes with the Gateway API present, want 1", len(routes))
			}
			hosts, _, _ := unstructured.NestedStringSlice(routes[0].Object, "spec", "hostnames")
			if len(hosts) != 1 || hosts[0] != field(v, "store.domain") {
				t.Errorf("HTTPRoute hostnames %v, want [%v]", hosts, field(v, "store.domain"))
			}
			backends, _, _ := unstructured.NestedSlice(routes[0].Object, "spec", "rules")
			if len(backends) == 0 {
				t.Error("HTTPRoute has no rules")
			}
		})
	}
	t.Run("storefleet", func(t *testing.T) {
		v := baseValues(t, "storefleet")
		set(v, "serviceMonitor.enabled", true)
		f := writeValues(t, v)
		if objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet", ValuesFiles: []string{f}}); len(byKind(objs, "ServiceMonitor")) != 0 {
			t.Error("ServiceMonitor rendered without monitoring.coreos.com/v1")
		}
		objs := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet", ValuesFiles: []string{f},
			APIVersions: []string{"monitoring.coreos.com/v1/ServiceMonitor"}})
		if len(byKind(objs, "ServiceMonitor")) != 1 {
			t.Error("ServiceMonitor missing although monitoring.coreos.com/v1 is served")
		}
	})
}

// TLS comes from a cert-manager ClusterIssuer or an existing Secret; neither means plain HTTP.
func TestStoreIngressTLS(t *testing.T) {
	for _, e := range storeEngines {
		for _, c := range []struct {
			issuer, secret, wantSecret string
		}{
			{"", "", ""},
			{"letsencrypt", "", "shop-tls"},
			{"", "wildcard-tls", "wildcard-tls"},
		} {
			t.Run(e+"/"+c.issuer+c.secret, func(t *testing.T) {
				t.Parallel()
				v := baseValues(t, e)
				set(v, "ingress.clusterIssuer", c.issuer)
				set(v, "ingress.tlsSecretName", c.secret)
				set(v, "ingress.className", "contour")
				objs := template(t, e, TemplateOptions{Release: "shop", ValuesFiles: []string{writeValues(t, v)}})
				ing := byKind(objs, "Ingress")[0]
				if got := ing.GetAnnotations()["cert-manager.io/cluster-issuer"]; got != c.issuer {
					t.Errorf("cluster-issuer annotation %q, want %q", got, c.issuer)
				}
				if cls, _, _ := unstructured.NestedString(ing.Object, "spec", "ingressClassName"); cls != "contour" {
					t.Errorf("ingressClassName %q, want contour", cls)
				}
				tls, _, _ := unstructured.NestedSlice(ing.Object, "spec", "tls")
				if c.wantSecret == "" {
					if len(tls) != 0 {
						t.Errorf("tls %v without issuer or secret", tls)
					}
					return
				}
				if len(tls) != 1 || field(tls[0].(map[string]any), "secretName") != c.wantSecret {
					t.Fatalf("tls %v, want secret %s", tls, c.wantSecret)
				}
				hosts, _, _ := unstructured.NestedStringSlice(tls[0].(map[string]any), "hosts")
				if len(hosts) != 1 || hosts[0] != field(v, "store.domain") {
					t.Errorf("tls hosts %v", hosts)
				}
			})
		}
	}
}

// Credentials are generated by the chart (so never in values or Git): two renders without
// a cluster to look the Secret up in give different secrets.
func TestCredentialsGeneratedNotFromValues(t *testing.T) {
	for _, e := range storeEngines {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			get := func() map[string]string {
				objs := template(t, e, TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(e, "basic")}})
				s := find(objs, "Secret", "shop-credentials")
				if s == nil {
					t.Fatal("Secret shop-credentials missing")
				}
				d, _, _ := unstructured.NestedStringMap(s.Object, "data")
				return d
			}
			a, b := get(), get()
			for k, v := range a {
				if k == "admin-user" {
					continue
				}
				if len(v) < 40 {
					t.Errorf("key %s: %d base64 characters, want a long random secret", k, len(v))
				}
				if b[k] == v {
					t.Errorf("key %s is the same in two renders: not generated", k)
				}
			}
		})
	}
}
