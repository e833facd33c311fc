package serve

import (
	"flag"
	"fmt"
	"strings"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/store"
)

// servedCluster is one cluster whose Flux applies the fleet's stores/<name>/: how
// gitops-api reaches it.
type servedCluster struct {
	name string
	// kubeconfig is empty for the cluster gitops-api runs in (inCluster).
	kubeconfig string
	inCluster  bool
}

// clusterKubeconfigs is --cluster-kubeconfig and its variable: the clusters served
// beside the default one (--kubeconfig or --in-cluster, named --cluster).
type clusterKubeconfigs struct {
	fromFlag, fromEnv []string
}

const clusterKubeconfigEnv = "STOREFLEET_CLUSTER_KUBECONFIGS"

func clusterFlagSet(fs *flag.FlagSet, k *kubeFlags, env func(string) string) {
	for _, item := range strings.Split(env(clusterKubeconfigEnv), ",") {
		if item = strings.TrimSpace(item); item != "" {
			k.extra.fromEnv = append(k.extra.fromEnv, item)
		}
	}
	fs.Func("cluster-kubeconfig", "NAME=PATH: one more cluster this API serves, whose Flux applies stores/NAME/ (its own watcher, shard publisher, Lease and ExternalArtifacts); repeat it for each. New stores may name it in \"cluster\"; the default cluster is --cluster, reached by --kubeconfig or --in-cluster, or by one of these ["+clusterKubeconfigEnv+", comma-separated]",
		func(v string) error {
			k.extra.fromFlag = append(k.extra.fromFlag, v)
			return nil
		})
}

// served lists the clusters this API serves, the default one (named def) first when
// --kubeconfig or --in-cluster reach it, and every problem with them, each naming
// the flag or variable. A command-line --cluster-kubeconfig replaces the variable's
// list. None served is no problem: the API then runs without a cluster.
func (k kubeFlags) served(fs *flag.FlagSet, def string) ([]servedCluster, []error) {
	items, from := k.extra.fromEnv, clusterKubeconfigEnv
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "cluster-kubeconfig" {
			items, from = k.extra.fromFlag, "--cluster-kubeconfig"
		}
	})
	var out []servedCluster
	var errs []error
	by := map[string]string{} // name → where it was given
	paths := map[string]string{}
	if k.configured() {
		c := servedCluster{name: def, kubeconfig: k.kubeconfig, inCluster: k.inCluster}
		if c.inCluster {
			c.kubeconfig = ""
		}
		by[def] = "--cluster " + def + " (reached by --kubeconfig or --in-cluster)"
		if c.kubeconfig != "" {
			paths[c.kubeconfig] = def
		}
		out = append(out, c)
	}
	for _, item := range items {
		name, p, ok := strings.Cut(item, "=")
		name, p = strings.TrimSpace(name), strings.TrimSpace(p)
		if !ok || name == "" || p == "" {
			errs = append(errs, fmt.Errorf("%s %q must be NAME=PATH (a cluster name and its kubeconfig)", from, item))
			continue
		}
		if msg := clusterNameProblem(name); msg != "" {
			errs = append(errs, fmt.Errorf("%s %q: %s", from, item, msg))
			continue
		}
		if where, dup := by[name]; dup {
			errs = append(errs, fmt.Errorf("%s %q: cluster %s is already served, by %s; each cluster is named once", from, item, name, where))
			continue
		}
		if other, dup := paths[p]; dup {
			errs = append(errs, fmt.Errorf("%s %q: kubeconfig %s already reaches cluster %s; two names for one cluster would have two publishers write its ExternalArtifacts", from, item, p, other))
			continue
		}
		if _, err := kube.RestConfig(p); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", from, item, err))
			continue
		}
		by[name], paths[p] = from+" "+item, name
		out = append(out, servedCluster{name: name, kubeconfig: p})
	}
	if len(out) > 0 && by[def] == "" && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("--cluster %q, the cluster of new stores, is not served: give --kubeconfig (or --in-cluster) for it, or name it in --cluster-kubeconfig %s=PATH; served: %s",
			def, def, strings.Join(names(out), ", ")))
	}
	return out, errs
}

// clusterNameProblem is what a store's validation says of name as its cluster, so
// that a cluster served here is always one a store may name ("" when none).
func clusterNameProblem(name string) string {
	probe := store.Store{
		Name: "probe", Engine: store.WooCommerce, Plan: store.Basic, Cluster: name,
		Settings: store.Settings{AdminEmail: "probe@example.com"},
	}.WithDefaults(store.DefaultBaseDomain)
	for _, fe := range store.FieldErrors(probe.Validate()) {
		if fe.Field == "cluster" {
			return "not a cluster name: " + fe.Message
		}
	}
	return ""
}

func names(cs []servedCluster) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}
