package render

import (
	"fmt"
	"syscall"
	"testing"
	"time"

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
	c0 := cpuTime()
	for b.Loop() {
		if _, err := Store(stores[i%len(stores)], opts); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "stores/s")
	// The machine is shared: wall time includes waiting for a core. CPU time (this process, GC included)
	// is what rendering costs.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(i), "cpu-ns/op")
	b.ReportMetric(float64(i)/cpu.Seconds(), "stores/cpu-s")
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBaselineNamespace marshals one plain Namespace with sigs.k8s.io/yaml: the unit a store render is
// compared against (a store is 9 objects plus a kustomization.yaml).
func BenchmarkBaselineNamespace(b *testing.B) {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "store-shop", Labels: map[string]string{"a": "b"}},
	}
	b.ReportAllocs()
	n := 0
	c0 := cpuTime()
	for b.Loop() {
		if _, err := yaml.Marshal(ns); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(n), "cpu-ns/op")
}

// BenchmarkRenderPlainSigsYAML is the plain typed path render started from: the same objects, each through
// sigs.k8s.io/yaml.Marshal (JSON, then the YAML parser, then the YAML encoder). Render's speed-up is the
// ratio of the two in one run.
func BenchmarkRenderPlainSigsYAML(b *testing.B) {
	stores, opts := benchStores(), LocalOptions()
	b.ReportAllocs()
	i := 0
	c0 := cpuTime()
	for b.Loop() {
		_, objs, err := objects(stores[i%len(stores)], opts, store.StateActive)
		if err != nil {
			b.Fatal(err)
		}
		for _, list := range objs {
			var file []byte
			for _, o := range list {
				y, err := yaml.Marshal(o)
				if err != nil {
					b.Fatal(err)
				}
				file = append(file, y...)
			}
		}
		i++
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "stores/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(i), "cpu-ns/op")
	b.ReportMetric(float64(i)/cpu.Seconds(), "stores/cpu-s")
}
