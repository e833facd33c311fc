package render

import (
	"fmt"
	"strconv"
)

// FluxShardLabel is the label Flux's sharded controllers select their objects by
// (--watch-label-selector): a kustomize-controller or helm-controller started with
// `sharding.fluxcd.io/key in (shard1)` reconciles only objects carrying
// shard1, and the main ones, restricted to `!sharding.fluxcd.io/key`, only the
// objects without it.
const FluxShardLabel = "sharding.fluxcd.io/key"

// MaxFluxShards bounds FluxShards: each controller shard is a kustomize-controller
// and a helm-controller of their own (clusters/README.md), far fewer than this in
// any cluster; more is a typo.
const MaxFluxShards = 64

// FluxShards is how many sets of kustomize-controller and helm-controller a
// cluster runs. 0 and 1 mean one set that reconciles everything: nothing is
// labelled, the manifests are those of a cluster without sharding.
//
// With K > 1 a store's controller shard is its fleet shard's number modulo K, so
// that the shard's Kustomization (stores-<shard>) and every store HelmRelease it
// applies land on the same set of controllers, and a store never moves between
// controllers while K stays. Controller shard 0 is the main controllers' (no
// label): what the cluster configuration itself holds (the fleet GitRepository,
// infrastructure, the shared chart sources) stays there too. Controller shard i > 0
// is labelled "shard<i>", the names Flux's sharding guide uses.
//
// source-controller is not sharded: the shared chart sources (one HelmChart or
// OCIRepository per engine and version, used by stores of every controller
// shard) carry no label, and a sharded helm-controller reads them through its
// unfiltered cache (it filters only HelmReleases).
type FluxShards int

// Validate reports a count a cluster cannot mean.
func (k FluxShards) Validate() error {
	if k < 0 || k > MaxFluxShards {
		return fmt.Errorf("flux shards: %d is not between 0 and %d", int(k), MaxFluxShards)
	}
	return nil
}

// Key is the value of FluxShardLabel for the objects of fleet shard shard (its
// hexadecimal name, store.Shard), or "" when they carry no label: K ≤ 1, or
// controller shard 0. A shard name that is not hexadecimal has no key (""): the
// callers validate shard names first.
func (k FluxShards) Key(shard string) string {
	if k <= 1 {
		return ""
	}
	n, err := strconv.ParseUint(shard, 16, 64)
	if err != nil {
		return ""
	}
	if i := n % uint64(k); i != 0 {
		return "shard" + strconv.FormatUint(i, 10)
	}
	return ""
}

// Keys lists the labels of controller shards 1 … K-1, in order: what a cluster's
// extra controllers select (clusters/README.md).
func (k FluxShards) Keys() []string {
	var out []string
	for i := 1; i < int(k); i++ {
		out = append(out, "shard"+strconv.Itoa(i))
	}
	return out
}

// labelFluxShard adds the controller shard's label to l when the shard has one.
func labelFluxShard(l map[string]string, k FluxShards, shard string) {
	if key := k.Key(shard); key != "" {
		l[FluxShardLabel] = key
	}
}

// MainControllersSelector is the --watch-label-selector of the main
// kustomize-controller and helm-controller once a cluster has extra controller
// shards: everything without a key (clusters/production/flux-shards/main-controllers-patch.yaml).
const MainControllersSelector = "!" + FluxShardLabel

// ShardControllersSelector is the --watch-label-selector of the extra controllers
// of controller shard key ("shard1", ...; clusters/production/flux-shards/).
func ShardControllersSelector(key string) string {
	return FluxShardLabel + " in (" + key + ")"
}
