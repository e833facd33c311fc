package charts

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/store"
)

// Everything a store's chart runs fits its plan's ResourceQuota (render writes the quota from
// the same plan table): pod count, the sum of the pods' effective requests and limits (an
// init container counts when it is bigger than the app containers together), claims and
// storage. The Deployments use Recreate, so no surge pod needs room.
func TestStoreChartsFitPlanQuota(t *testing.T) {
	for _, e := range storeEngines {
		for _, p := range plans {
			t.Run(e+"/"+p, func(t *testing.T) {
				t.Parallel()
				objs := template(t, e, TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(e, p)}})
				checkQuota(t, objs, store.Plans[store.PlanName(p)].Quota)
			})
		}
	}
}

func checkQuota(t *testing.T, objs []*unstructured.Unstructured, q store.Quota) {
	t.Helper()
	used := corev1.ResourceList{}
	add := func(name corev1.ResourceName, v resource.Quantity, times int64) {
		sum := used[name]
		for i := int64(0); i < times; i++ {
			sum.Add(v)
		}
		used[name] = sum
	}
	pods := int64(0)
	for _, pt := range podTemplates(objs) {
		replicas := int64(1)
		if r, ok, _ := unstructured.NestedFieldNoCopy(pt.owner.Object, "spec", "replicas"); ok {
			replicas = int64(r.(float64))
		}
		pods += replicas
		_, spec := decodePod(t, pt)
		for _, kind := range []string{"requests", "limits"} {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				var sum, maxInit resource.Quantity
				for _, c := range spec.Containers {
					sum.Add(pick(c.Resources, kind)[r])
				}
				for _, c := range spec.InitContainers {
					if v := pick(c.Resources, kind)[r]; v.Cmp(maxInit) > 0 {
						maxInit = v
					}
				}
				if maxInit.Cmp(sum) > 0 {
					sum = maxInit
				}
				add(corev1.ResourceName(kind+"."+string(r)), sum, replicas)
			}
		}
	}
	claims := int64(0)
	for _, pvc := range byKind(objs, "PersistentVolumeClaim") {
		claims++
		s, _, _ := unstructured.NestedString(pvc.Object, "spec", "resources", "requests", "storage")
		add(corev1.ResourceRequestsStorage, resource.MustParse(s), 1)
	}
	hard := map[corev1.ResourceName]string{
		corev1.ResourceRequestsCPU: q.Requests.CPU, corev1.ResourceRequestsMemory: q.Requests.Memory,
		corev1.ResourceLimitsCPU: q.Limits.CPU, corev1.ResourceLimitsMemory: q.Limits.Memory,
		corev1.ResourceRequestsStorage: q.Storage,
	}
	for name, h := range hard {
		u := used[name]
		if u.Cmp(resource.MustParse(h)) > 0 {
			t.Errorf("%s: chart needs %s, plan quota is %s", name, u.String(), h)
		}
		t.Logf("%s: %s of %s", name, u.String(), h)
	}
	if pods > int64(q.Pods) {
		t.Errorf("pods: %d, quota %d", pods, q.Pods)
	}
	if claims > int64(q.PVCs) {
		t.Errorf("persistentvolumeclaims: %d, quota %d", claims, q.PVCs)
	}
	if pods == 0 || claims == 0 {
		t.Error(fmt.Sprint("nothing counted: ", pods, " pods, ", claims, " claims"))
	}
}

func pick(r corev1.ResourceRequirements, kind string) corev1.ResourceList {
	if kind == "requests" {
		return r.Requests
	}
	return r.Limits
}
