package render

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

func benchStores() []store.Store {
	out := make([]store.Store, 0, 240)
	for i := 0; i < 240; i++ {
		s := shop(store.Engines[i%2], store.PlanNames[i%3])
		s.Name = fmt.Sprintf("shop-%d", i)
		out = append(out, s)
	}
	return out
}

// BenchmarkRender renders whole live stores (validation, defaults, every file of the folder). Figures go to
// docs/benchmarks.md, as a ratio to BenchmarkBaselineNamespace from the same run.
func BenchmarkRender(b *testing.B) {
	stores, opts := benchStores(), LocalOptions()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Store(stores[i%len(stores)], opts); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "stores/s")
}

// BenchmarkBaselineNamespace marshals one plain Namespace with sigs.k8s.io/yaml: the unit a store render is
// compared against (a store is 9 objects plus a kustomization.yaml).
func BenchmarkBaselineNamespace(b *testing.B) {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "store-shop", Labels: map[string]string{"a": "b"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := yaml.Marshal(ns); err != nil {
			b.Fatal(err)
		}
	}
}
