package serve

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/storefleet/storefleet/internal/render"
)

// fluxShardsFlagSet registers --flux-shards, the cluster's number of Flux
// controller shards (render.FluxShards). One setting feeds both places that label:
// the shard layout the publisher creates shard Kustomizations with, which holds it
// (k.shards.FluxShards), and the render options (config.renderOptions reads it from
// there), so a store's HelmRelease and its shard Kustomization cannot disagree. It
// is registered after kubeFlagSet, which sets the layout's defaults.
func fluxShardsFlagSet(fs *flag.FlagSet, k *kubeFlags, env func(string) string) {
	const name, envName = "flux-shards", "STOREFLEET_FLUX_SHARDS"
	if v := env(envName); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			k.envErrs[name] = fmt.Errorf("%s: %q is not a whole number", envName, v)
		}
		k.shards.FluxShards = render.FluxShards(n)
	}
	fs.Func(name, fmt.Sprintf("number of Flux controller shards (sets of kustomize-controller and helm-controller, clusters/README.md); with more than 1 each store's shard Kustomization and HelmRelease are labelled %s=shard<i>, i = the store's shard mod this, 0 = unlabelled (the main controllers); 0 or 1 = no sharding, no label (default %d, at most %d) [%s]",
		render.FluxShardLabel, int(k.shards.FluxShards), render.MaxFluxShards, envName), func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		k.shards.FluxShards = render.FluxShards(n)
		return nil
	})
}
