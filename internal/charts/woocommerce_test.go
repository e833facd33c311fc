package charts

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Apache's prefork worker count follows the plan's app memory limit (the image's default
// of 150 workers would be OOM-killed in the smaller plans), and the config replaces the image's.
func TestWooCommerceApacheWorkersFitMemory(t *testing.T) {
	workersRE := regexp.MustCompile(`MaxRequestWorkers\s+(\d+)`)
	prev := 0
	for _, p := range plans {
		values := readValues(t, fixture("woocommerce", p))
		objs := template(t, "woocommerce", TemplateOptions{Release: "shop", ValuesFiles: []string{fixture("woocommerce", p)}})
		cm := find(objs, "ConfigMap", "shop-setup")
		if cm == nil {
			t.Fatal("ConfigMap shop-setup missing")
		}
		conf, _, _ := unstructured.NestedString(cm.Object, "data", "mpm_prefork.conf")
		m := workersRE.FindStringSubmatch(conf)
		if m == nil {
			t.Fatalf("%s: no MaxRequestWorkers in mpm_prefork.conf:\n%s", p, conf)
		}
		workers, _ := strconv.Atoi(m[1])
		limit := resource.MustParse(fmt.Sprint(field(values, "resources.app.limits.memory")))
		need := resource.MustParse(fmt.Sprintf("%dMi", workers*80+64))
		if workers < 2 || need.Cmp(limit) > 0 {
			t.Errorf("%s: %d workers need ~%s, app memory limit is %s", p, workers, need.String(), limit.String())
		}
		if workers < prev {
			t.Errorf("%s: fewer workers (%d) than the smaller plan (%d)", p, workers, prev)
		}
		prev = workers
		d := find(objs, "Deployment", "shop-wordpress")
		spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
		mounted := false
		for _, c := range containers(spec, "containers") {
			for _, vm := range sliceOfMaps(c["volumeMounts"]) {
				if vm["mountPath"] == "/etc/apache2/mods-available/mpm_prefork.conf" && vm["subPath"] == "mpm_prefork.conf" {
					mounted = true
				}
			}
		}
		if !mounted {
			t.Errorf("%s: mpm_prefork.conf not mounted over the image's", p)
		}
	}
}
