package render

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/internal/store"
)

// A store's HelmRelease does not carry its chart (spec.chart would make helm-controller
// create one HelmChart per store, and source-controller fetch and package the same
// chart once per store): it references, with spec.chartRef, one chart source per
// engine and version in the Flux namespace, shared by every store of that engine and
// version. The source is a file of its own outside the store folders
// (store.ChartSourcesDir), committed with the first store that uses it.

// ChartSourceName is the name of the shared chart source of engine e at version v:
// <chart>-<version>. A version holding what an object name may not (upper case, "+"),
// or too long for a name of at most 63 characters (what a label value may hold, so
// the name can label what Flux builds from it), is lowered, "+" replaced and cut, with
// a hash of the exact version appended so that two versions never share a name.
func ChartSourceName(e store.Engine, v string) string {
	name := engines[e].chart + "-" + v
	if len(name) <= maxSourceName && name == strings.ToLower(name) && !strings.Contains(name, "+") {
		return name
	}
	sum := sha256.Sum256([]byte(v))
	suffix := "-" + hex.EncodeToString(sum[:4])
	name = strings.ReplaceAll(strings.ToLower(name), "+", "-")
	if len(name) > maxSourceName-len(suffix) {
		name = strings.TrimRight(name[:maxSourceName-len(suffix)], "-.")
	}
	return name + suffix
}

const maxSourceName = 63

// chartSourceKind is the kind of the shared chart sources under opts.
func chartSourceKind(opts Options) (string, error) {
	switch opts.Chart.Kind {
	case SourceHelmRepository:
		return sourcev1.HelmChartKind, nil
	case SourceOCIRepository:
		return sourcev1.OCIRepositoryKind, nil
	}
	return "", store.Errorf(store.EINTERNAL, "render: unknown chart source kind %q", opts.Chart.Kind)
}

// SharedChartSource renders the shared chart source of a live store's engine and version:
// a HelmChart of the cluster's HelmRepository, or an OCIRepository pinned to the
// version's tag. Its content depends only on the cluster, the engine and the version,
// so every store of them renders the same bytes.
func SharedChartSource(s store.Store, opts Options) (File, error) {
	s, e, err := prepare(s, opts)
	if err != nil {
		return File{}, err
	}
	name := ChartSourceName(s.Engine, s.Version)
	meta := metav1.ObjectMeta{
		Name: name, Namespace: opts.Chart.Namespace,
		Labels: map[string]string{
			"app.kubernetes.io/name":       string(s.Engine),
			"app.kubernetes.io/part-of":    "storefleet",
			"app.kubernetes.io/managed-by": "storefleet",
		},
		Annotations: map[string]string{store.AnnotationVersion: s.Version},
	}
	interval := metav1.Duration{Duration: opts.Interval}
	var obj any
	switch opts.Chart.Kind {
	case SourceHelmRepository:
		obj = &sourcev1.HelmChart{
			TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.HelmChartKind},
			ObjectMeta: meta,
			Spec: sourcev1.HelmChartSpec{
				Chart:   e.chart,
				Version: s.Version,
				// The HelmRepository is in the same namespace: a HelmChart refers to
				// its source there.
				SourceRef: sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.HelmRepositoryKind, Name: opts.Chart.Name},
				Interval:  interval,
				// The default: a new chart only when the version changes, which it
				// never does here (the version is in the name).
				ReconcileStrategy: sourcev1.ReconcileStrategyChartVersion,
			},
		}
	case SourceOCIRepository:
		obj = &sourcev1.OCIRepository{
			TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.OCIRepositoryKind},
			ObjectMeta: meta,
			Spec: sourcev1.OCIRepositorySpec{
				URL:       opts.Chart.URL + "/" + e.chart,
				Reference: &sourcev1.OCIRepositoryRef{Tag: s.Version},
				Interval:  interval,
				LayerSelector: &sourcev1.OCILayerSelector{
					MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", Operation: sourcev1.OCILayerCopy,
				},
			},
		}
	default:
		_, err := chartSourceKind(opts)
		return File{}, err
	}
	b, err := encode(obj)
	if err != nil {
		return File{}, err
	}
	return File{Path: path.Join(store.ChartSourcesDir(s.Cluster), name+".yaml"), Content: b}, nil
}
