package charts

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// Every pod template passes the Pod Security level its chart declares (the level the
// renderer enforces on the namespace), checked with Kubernetes' own admission library.
// Exceptions to "restricted" are exactly the documented ones.
func TestPodSecurity(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		chart string
		objs  func(t *testing.T) []*unstructured.Unstructured
		// wantLevel is what Chart.yaml must declare; notRestricted lists the containers
		// allowed to fail "restricted" (each documented in the chart README).
		wantLevel     string
		notRestricted []string
	}{
		{"woocommerce", nil, "baseline", []string{"wordpress"}},
		{"medusa", nil, "restricted", nil},
		{"storefleet", func(t *testing.T) []*unstructured.Unstructured {
			return template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet",
				ValuesFiles: []string{chartDir("storefleet") + "/values-prod.yaml"}})
		}, "restricted", nil},
	}
	for _, c := range cases {
		t.Run(c.chart, func(t *testing.T) {
			level, err := PodSecurityLevel(chartDir(c.chart))
			if err != nil {
				t.Fatal(err)
			}
			if level != c.wantLevel {
				t.Fatalf("Chart.yaml declares %s, want %s", level, c.wantLevel)
			}
			var runs [][]*unstructured.Unstructured
			if c.objs != nil {
				runs = append(runs, c.objs(t))
			} else {
				for _, p := range plans {
					runs = append(runs, template(t, c.chart, TemplateOptions{Release: "shop", ValuesFiles: []string{fixture(c.chart, p)}}))
				}
			}
			declared := psapi.LevelVersion{Level: psapi.Level(level), Version: psapi.LatestVersion()}
			restricted := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
			failing := map[string]bool{}
			for _, objs := range runs {
				pts := podTemplates(objs)
				if len(pts) == 0 {
					t.Fatal("no pod templates")
				}
				for _, pt := range pts {
					meta, spec := decodePod(t, pt)
					id := pt.owner.GetKind() + " " + pt.owner.GetName()
					if r := policy.AggregateCheckResults(eval.EvaluatePod(declared, meta, spec)); !r.Allowed {
						t.Errorf("%s violates Pod Security %s: %s", id, level, r.ForbiddenDetail())
					}
					// Which containers keep the pod from "restricted"? Evaluate each alone.
					for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
						for _, ctr := range cs {
							one := spec.DeepCopy()
							one.InitContainers = nil
							one.Containers = []corev1.Container{ctr}
							if r := policy.AggregateCheckResults(eval.EvaluatePod(restricted, meta, one)); !r.Allowed {
								failing[ctr.Name] = true
								t.Logf("%s container %s is not restricted: %s", id, ctr.Name, r.ForbiddenDetail())
							}
						}
					}
				}
			}
			var got []string
			for n := range failing {
				got = append(got, n)
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(c.notRestricted) {
				t.Errorf("containers failing restricted: %v, want exactly the documented exceptions %v", got, c.notRestricted)
			}
			if len(c.notRestricted) > 0 {
				readme := readFile(t, chartDir(c.chart)+"/README.md")
				for _, n := range c.notRestricted {
					if !strings.Contains(readme, "`"+n+"`") {
						t.Errorf("README.md does not document the Pod Security exception of container %s", n)
					}
				}
			}
		})
	}
}

func decodePod(t *testing.T, pt podTemplate) (*metav1.ObjectMeta, *corev1.PodSpec) {
	t.Helper()
	var spec corev1.PodSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(pt.spec, &spec, true); err != nil {
		t.Fatalf("%s %s: pod spec: %v", pt.owner.GetKind(), pt.owner.GetName(), err)
	}
	meta := &metav1.ObjectMeta{Labels: map[string]string{}}
	for k, v := range pt.labels {
		meta.Labels[k] = fmt.Sprint(v)
	}
	return meta, &spec
}
