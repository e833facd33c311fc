package render

import (
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	meta "github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ShardLabel marks the per-shard Flux objects (Kustomization and ExternalArtifact
// stores-<shard>); its value is the shard.
const ShardLabel = "storefleet.io/shard"

// ShardObjectName is the name of a shard's Kustomization and of the ExternalArtifact it
// applies, both in flux-system.
func ShardObjectName(shard string) string { return "stores-" + shard }

// Shards lists every shard folder name, in order: "00" … "ff".
func Shards() []string {
	out := make([]string, 256)
	for i := range out {
		out[i] = fmt.Sprintf("%02x", i)
	}
	return out
}

// DependencyAppliedOnce is the readiness a shard asks of its dependencies: applied
// at least once. Flux's default (Ready now) would hold every shard back while the
// dependency reconciles, which it does on every new fleet commit: with 1,000 stores
// that put a store's request → ready from 3.6 s to 7.7 s (p50), see docs/benchmarks.md.
const DependencyAppliedOnce = "has(dep.status.lastAppliedRevision) && dep.status.lastAppliedRevision != ''"

// ShardLayout is what differs between clusters in the shard Kustomizations.
type ShardLayout struct {
	Interval, RetryInterval, Timeout metav1.Duration
	// DependsOn names Kustomizations (flux-system) every shard waits for until they
	// have been applied once (DependencyAppliedOnce).
	DependsOn []string
	// DecryptionSecret, when set, decrypts SOPS-encrypted files with the age key in
	// that Secret (flux-system).
	DecryptionSecret string
}

// ShardKustomizations renders one Flux Kustomization per shard (docs/design.md, "How
// Flux applies the stores"): each applies its ExternalArtifact stores-<shard>, a
// tarball of stores/<cluster>/<shard>/, so a commit re-applies only the shards it
// touched. prune removes what left Git (store Namespaces opt out, so data stays);
// wait is off because a store's readiness is its own HelmRelease's, and one slow
// store must not hold back the other stores of its shard.
func ShardKustomizations(l ShardLayout) ([]byte, error) {
	objs := make([]any, 0, 256)
	for _, shard := range Shards() {
		k := &kustomizev1.Kustomization{
			TypeMeta: metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
			ObjectMeta: metav1.ObjectMeta{
				Name: ShardObjectName(shard), Namespace: "flux-system",
				Labels: map[string]string{ShardLabel: shard},
			},
			Spec: kustomizev1.KustomizationSpec{
				Interval:      l.Interval,
				RetryInterval: &l.RetryInterval,
				Timeout:       &l.Timeout,
				Prune:         true,
				Wait:          false,
				SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.ExternalArtifactKind, Name: ShardObjectName(shard)},
				Path:          "./",
			},
		}
		for _, d := range l.DependsOn {
			k.Spec.DependsOn = append(k.Spec.DependsOn, kustomizev1.DependencyReference{Name: d, ReadyExpr: DependencyAppliedOnce})
		}
		if l.DecryptionSecret != "" {
			k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: l.DecryptionSecret}}
		}
		objs = append(objs, k)
	}
	return encode(objs...)
}
