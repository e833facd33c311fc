package charts

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLintStrict(t *testing.T) {
	h := needHelm(t)
	type run struct {
		chart  string
		values []string
	}
	runs := []run{{chart: "woocommerce"}, {chart: "storefleet"},
		{chart: "storefleet", values: []string{chartDir("storefleet") + "/values-local.yaml"}},
		{chart: "storefleet", values: []string{chartDir("storefleet") + "/values-prod.yaml"}},
	}
	for _, e := range storeEngines {
		for _, p := range plans {
			runs = append(runs, run{chart: e, values: []string{fixture(e, p)}})
		}
	}
	for _, r := range runs {
		name := r.chart
		for _, v := range r.values {
			name += "/" + strings.TrimSuffix(v[strings.LastIndex(v, "/")+1:], ".yaml")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if out, err := h.Lint(context.Background(), chartDir(r.chart), r.values...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// The components of each store chart (docs/design.md names) and the values.resources key
// each main container takes its requests and limits from.
var storeLayout = map[string]struct {
	deployments, statefulSets []string
	containerResources        map[string]string
}{
	"woocommerce": {
		deployments:        []string{"wordpress"},
		statefulSets:       []string{"mysql"},
		containerResources: map[string]string{"wordpress": "app", "mysql": "database"},
	},
	"medusa": {
		deployments:        []string{"medusa"},
		statefulSets:       []string{"postgresql", "redis"},
		containerResources: map[string]string{"medusa": "app", "postgresql": "database", "redis": "cache"},
	},
}

func TestStoreChartsPerPlan(t *testing.T) {
	for _, e := range storeEngines {
		for _, p := range plans {
			t.Run(e+"/"+p, func(t *testing.T) {
				t.Parallel()
				values := readValues(t, fixture(e, p))
				objs := template(t, e, TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(e, p)}})
				checkStore(t, e, "shop", values, objs)
			})
		}
	}
}

// The longest store name validation accepts (docs/design.md: 40) must give names that fit
// every limit: DNS labels for Services, 52 for StatefulSets (controller-revision-hash
// label), 63 for label values.
func TestStoreChartsLongestName(t *testing.T) {
	name := strings.Repeat("abcdefghij", 4)
	if len(name) != 40 {
		t.Fatal("test name is not 40 characters")
	}
	for _, e := range storeEngines {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			values := readValues(t, fixture(e, "premium"))
			values["store"].(map[string]any)["name"] = name
			values["store"].(map[string]any)["domain"] = name + ".stores.localhost"
			objs := template(t, e, TemplateOptions{Release: name, ValuesFiles: []string{writeValues(t, values)}})
			checkStore(t, e, name, values, objs)
			checkNameLimits(t, objs)
		})
	}
	t.Run("41 characters are refused", func(t *testing.T) {
		values := readValues(t, fixture("woocommerce", "basic"))
		values["store"].(map[string]any)["name"] = name + "k"
		_, err := needHelm(t).Template(context.Background(), chartDir("woocommerce"),
			TemplateOptions{Release: "shop", Namespace: "store-shop", ValuesFiles: []string{writeValues(t, values)}})
		if err == nil || !strings.Contains(err.Error(), "/store/name") {
			t.Fatalf("a 41-character store name was not refused by the schema: %v", err)
		}
	})
}

func checkNameLimits(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		n := o.GetName()
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 || len(n) > 63 {
			t.Errorf("%s %s: name longer than 63 or invalid: %v", o.GetKind(), n, errs)
		}
		switch o.GetKind() {
		case "Service":
			if errs := validation.IsDNS1035Label(n); len(errs) > 0 {
				t.Errorf("Service %s: %v", n, errs)
			}
		case "StatefulSet":
			// controller-revision-hash = <name>-<10 characters> must be a label value.
			if len(n) > 52 {
				t.Errorf("StatefulSet %s: %d characters, at most 52", n, len(n))
			}
		}
		for k, v := range o.GetLabels() {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%s %s: label %s=%q: %v", o.GetKind(), n, k, v, errs)
			}
		}
	}
}

type podTemplate struct {
	owner  *unstructured.Unstructured
	labels map[string]any
	spec   map[string]any
}

func podTemplates(objs []*unstructured.Unstructured) []podTemplate {
	var out []podTemplate
	for _, o := range objs {
		path := []string{"spec", "template"}
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		case "CronJob":
			path = []string{"spec", "jobTemplate", "spec", "template"}
		default:
			continue
		}
		tpl, _, _ := unstructured.NestedMap(o.Object, path...)
		labels, _, _ := unstructured.NestedMap(tpl, "metadata", "labels")
		spec, _, _ := unstructured.NestedMap(tpl, "spec")
		out = append(out, podTemplate{owner: o, labels: labels, spec: spec})
	}
	return out
}

func containers(spec map[string]any, kinds ...string) []map[string]any {
	if len(kinds) == 0 {
		kinds = []string{"initContainers", "containers"}
	}
	var out []map[string]any
	for _, k := range kinds {
		list, _, _ := unstructured.NestedSlice(spec, k)
		for _, c := range list {
			out = append(out, c.(map[string]any))
		}
	}
	return out
}

var imageRef = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:([A-Za-z0-9_][A-Za-z0-9_.-]*)(@sha256:[a-f0-9]{64})?$`)

func checkStore(t *testing.T, engine, release string, values map[string]any, objs []*unstructured.Unstructured) {
	t.Helper()
	layout := storeLayout[engine]
	// Names and labels.
	for _, o := range objs {
		id := o.GetKind() + " " + o.GetName()
		if !strings.HasPrefix(o.GetName(), release+"-") {
			t.Errorf("%s: not named %s-<component> (docs/design.md)", id, release)
		}
		if o.GetNamespace() != "" {
			t.Errorf("%s: hard-codes namespace %q (the release namespace applies)", id, o.GetNamespace())
		}
		l := o.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
			"app.kubernetes.io/version", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if l[k] == "" {
				t.Errorf("%s: label %s missing", id, k)
			}
		}
		if l["app.kubernetes.io/name"] != engine || l["app.kubernetes.io/instance"] != release {
			t.Errorf("%s: name/instance labels %q/%q, want %q/%q", id, l["app.kubernetes.io/name"], l["app.kubernetes.io/instance"], engine, release)
		}
		for k := range o.GetAnnotations() {
			if strings.HasPrefix(k, "helm.sh/hook") {
				t.Errorf("%s: Helm hook annotation %s: hooks block installs (use init containers or plain Jobs)", id, k)
			}
		}
	}

	// Data is kept: standalone PVCs and the credentials Secret with resource-policy keep.
	pvcs := map[string]bool{}
	for _, comp := range []string{"database", "uploads"} {
		name := release + "-" + comp
		pvc := find(objs, "PersistentVolumeClaim", name)
		if pvc == nil {
			t.Errorf("PersistentVolumeClaim %s missing", name)
			continue
		}
		if pvc.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("PersistentVolumeClaim %s: no helm.sh/resource-policy: keep", name)
		}
		got, _, _ := unstructured.NestedString(pvc.Object, "spec", "resources", "requests", "storage")
		want := fmt.Sprint(field(values, "storage."+comp))
		if !sameQuantity(got, want) {
			t.Errorf("PersistentVolumeClaim %s: storage %q, want storage.%s %q", name, got, comp, want)
		}
	}
	for _, pvc := range byKind(objs, "PersistentVolumeClaim") {
		pvcs[pvc.GetName()] = true
		if pvc.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("PersistentVolumeClaim %s: no helm.sh/resource-policy: keep", pvc.GetName())
		}
	}
	secretName := release + "-credentials"
	secret := find(objs, "Secret", secretName)
	if secret == nil {
		t.Fatalf("Secret %s (generated credentials) missing", secretName)
	}
	if secret.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("Secret %s: no helm.sh/resource-policy: keep", secretName)
	}
	secretData, _, _ := unstructured.NestedStringMap(secret.Object, "data")

	// Workloads.
	for _, comp := range layout.deployments {
		d := find(objs, "Deployment", release+"-"+comp)
		if d == nil {
			t.Errorf("Deployment %s-%s missing", release, comp)
			continue
		}
		// Both sides come from YAML as float64: compare their printed forms.
		if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != fmt.Sprint(values["replicas"]) {
			t.Errorf("Deployment %s: replicas %v, want values.replicas %v", d.GetName(), n, values["replicas"])
		}
		// The uploads claim is ReadWriteOnce (render never sets storage.accessMode): pods
		// must be replaced, not surged, and replicas must share the claim's node.
		if st, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type"); st != "Recreate" {
			t.Errorf("Deployment %s: strategy %q with a ReadWriteOnce uploads claim, want Recreate", d.GetName(), st)
		}
		terms, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "affinity", "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
		if fmt.Sprint(values["replicas"]) != "1" {
			if len(terms) != 1 || field(terms[0].(map[string]any), "topologyKey") != "kubernetes.io/hostname" {
				t.Errorf("Deployment %s: %v replicas on a ReadWriteOnce claim without required pod affinity to one node: %v", d.GetName(), values["replicas"], terms)
			}
		} else if len(terms) != 0 {
			t.Errorf("Deployment %s: pod affinity with one replica", d.GetName())
		}
	}
	if got := len(byKind(objs, "Deployment")); got != len(layout.deployments) {
		t.Errorf("%d Deployments, want %d", got, len(layout.deployments))
	}
	services := map[string]*unstructured.Unstructured{}
	for _, s := range byKind(objs, "Service") {
		services[s.GetName()] = s
	}
	for _, comp := range layout.statefulSets {
		name := release + "-" + comp
		s := find(objs, "StatefulSet", name)
		if s == nil {
			t.Errorf("StatefulSet %s missing", name)
			continue
		}
		if _, found, _ := unstructured.NestedSlice(s.Object, "spec", "volumeClaimTemplates"); found {
			t.Errorf("StatefulSet %s: volumeClaimTemplates cannot grow between plans; use a standalone PVC", name)
		}
		svcName, _, _ := unstructured.NestedString(s.Object, "spec", "serviceName")
		svc := services[svcName]
		if svc == nil {
			t.Errorf("StatefulSet %s: governing Service %q missing", name, svcName)
		} else if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != "None" {
			t.Errorf("Service %s: not headless", svcName)
		}
	}
	if got := len(byKind(objs, "StatefulSet")); got != len(layout.statefulSets) {
		t.Errorf("%d StatefulSets, want %d", got, len(layout.statefulSets))
	}

	configMaps := map[string]bool{}
	for _, c := range byKind(objs, "ConfigMap") {
		configMaps[c.GetName()] = true
	}
	seenMain := map[string]bool{}
	for _, pt := range podTemplates(objs) {
		id := pt.owner.GetKind() + " " + pt.owner.GetName()
		for k, v := range map[string]string{"app.kubernetes.io/name": engine, "app.kubernetes.io/instance": release} {
			if pt.labels[k] != v {
				t.Errorf("%s: pod label %s=%v, want %q", id, k, pt.labels[k], v)
			}
		}
		for _, c := range containers(pt.spec) {
			cid := fmt.Sprintf("%s container %v", id, c["name"])
			img, _ := c["image"].(string)
			if m := imageRef.FindStringSubmatch(img); m == nil || m[3] == "latest" {
				t.Errorf("%s: image %q is not pinned to an explicit tag", cid, img)
			}
			for _, kind := range []string{"requests", "limits"} {
				for _, r := range []string{"cpu", "memory"} {
					if v, _, _ := unstructured.NestedFieldNoCopy(c, "resources", kind, r); v == nil {
						t.Errorf("%s: no resources.%s.%s (the namespace's ResourceQuota needs every container sized)", cid, kind, r)
					}
				}
			}
			for _, e := range sliceOfMaps(c["env"]) {
				if ref, ok, _ := unstructured.NestedMap(e, "valueFrom", "secretKeyRef"); ok {
					if ref["name"] != secretName {
						t.Errorf("%s: env %v reads Secret %v, not the chart's %s", cid, e["name"], ref["name"], secretName)
					} else if _, ok := secretData[ref["key"].(string)]; !ok {
						t.Errorf("%s: env %v reads key %v that Secret %s does not have", cid, e["name"], ref["key"], secretName)
					}
				}
			}
		}
		for _, c := range containers(pt.spec, "containers") {
			name := c["name"].(string)
			key, ok := layout.containerResources[name]
			if !ok {
				t.Errorf("%s: unexpected main container %s", id, name)
				continue
			}
			seenMain[name] = true
			want, _ := field(values, "resources."+key).(map[string]any)
			got, _ := c["resources"].(map[string]any)
			if !sameResources(got, want) {
				t.Errorf("%s container %s: resources %v, want values.resources.%s %v", id, name, got, key, want)
			}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				if c[probe] == nil {
					t.Errorf("%s container %s: no %s", id, name, probe)
				}
			}
		}
		for _, v := range sliceOfMaps(pt.spec["volumes"]) {
			if claim, ok, _ := unstructured.NestedString(v, "persistentVolumeClaim", "claimName"); ok && !pvcs[claim] {
				t.Errorf("%s: volume %v uses PVC %s that the chart does not create", id, v["name"], claim)
			}
			if cm, ok, _ := unstructured.NestedString(v, "configMap", "name"); ok && !configMaps[cm] {
				t.Errorf("%s: volume %v uses ConfigMap %s that the chart does not create", id, v["name"], cm)
			}
			if _, ok := v["volumeClaimTemplate"]; ok {
				t.Errorf("%s: ephemeral volume claim templates lose data", id)
			}
		}
		for _, s := range services {
			sel, _, _ := unstructured.NestedStringMap(s.Object, "spec", "selector")
			if len(sel) == 0 {
				t.Errorf("Service %s: no selector", s.GetName())
			}
		}
	}
	for name := range layout.containerResources {
		if !seenMain[name] {
			t.Errorf("no workload runs container %s", name)
		}
	}
	// Every Service selects a pod template of the chart.
	for _, s := range services {
		sel, _, _ := unstructured.NestedStringMap(s.Object, "spec", "selector")
		matched := false
		for _, pt := range podTemplates(objs) {
			ok := true
			for k, v := range sel {
				if pt.labels[k] != v {
					ok = false
				}
			}
			matched = matched || ok
		}
		if !matched {
			t.Errorf("Service %s selects no pod of the chart (selector %v)", s.GetName(), sel)
		}
	}

	// The Ingress serves the store's domain from a Service of the chart.
	ings := byKind(objs, "Ingress")
	if len(ings) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(ings))
	}
	rules, _, _ := unstructured.NestedSlice(ings[0].Object, "spec", "rules")
	if len(rules) != 1 || field(rules[0].(map[string]any), "host") != field(values, "store.domain") {
		t.Errorf("Ingress %s: rules %v, want one for host %v", ings[0].GetName(), rules, field(values, "store.domain"))
	} else {
		paths, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "http", "paths")
		for _, p := range paths {
			svc, _, _ := unstructured.NestedString(p.(map[string]any), "backend", "service", "name")
			if services[svc] == nil {
				t.Errorf("Ingress %s: backend Service %q is not in the chart", ings[0].GetName(), svc)
			}
		}
	}
}

func sliceOfMaps(v any) []map[string]any {
	list, _ := v.([]any)
	var out []map[string]any
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func sameQuantity(a, b string) bool {
	qa, err1 := resource.ParseQuantity(a)
	qb, err2 := resource.ParseQuantity(b)
	return err1 == nil && err2 == nil && qa.Cmp(qb) == 0
}

// sameResources compares {requests, limits} maps quantity by quantity.
func sameResources(got, want map[string]any) bool {
	if len(want) == 0 {
		return false
	}
	for _, kind := range []string{"requests", "limits"} {
		g, _ := got[kind].(map[string]any)
		w, _ := want[kind].(map[string]any)
		if len(g) != len(w) {
			return false
		}
		for r, wv := range w {
			if !sameQuantity(fmt.Sprint(g[r]), fmt.Sprint(wv)) {
				return false
			}
		}
	}
	return true
}

// The fixtures stand in for the renderer's output: they carry exactly the keys of
// docs/design.md ("Chart values that render writes") for each engine, no more, no less.
func TestFixturesCarryDesignKeys(t *testing.T) {
	rl := func(prefix string) []string {
		return []string{prefix + ".requests.cpu", prefix + ".requests.memory", prefix + ".limits.cpu", prefix + ".limits.memory"}
	}
	common := []string{"store.name", "store.domain", "store.title", "store.adminEmail", "store.currency", "store.country",
		"plan", "replicas", "storage.uploads", "storage.database", "ingress.className", "ingress.clusterIssuer", "ingress.tlsSecretName"}
	common = append(append(common, rl("resources.app")...), rl("resources.database")...)
	want := map[string][]string{
		"woocommerce": append([]string{"store.language"}, common...),
		"medusa":      append(append([]string{"store.regionName", "image.repository", "image.tag"}, rl("resources.cache")...), common...),
	}
	for _, e := range storeEngines {
		for _, p := range plans {
			got := leafKeys("", readValues(t, fixture(e, p)))
			w := append([]string(nil), want[e]...)
			sort.Strings(w)
			if strings.Join(got, ",") != strings.Join(w, ",") {
				t.Errorf("%s: keys\n %v\nwant (docs/design.md)\n %v", fixture(e, p), got, w)
			}
		}
	}
}

func leafKeys(prefix string, v map[string]any) []string {
	var out []string
	for k, x := range v {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if m, ok := x.(map[string]any); ok {
			out = append(out, leafKeys(p, m)...)
		} else {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
