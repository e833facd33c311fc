package serve

import (
	"flag"
	"fmt"
	"net/url"
	"slices"
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
	// artifactURL is where this cluster's Flux fetches its shard artifacts
	// (--cluster-artifact-url); empty = --artifact-url, or the listener's address.
	artifactURL string
}

const (
	clusterKubeconfigEnv  = "STOREFLEET_CLUSTER_KUBECONFIGS"
	clusterArtifactURLEnv = "STOREFLEET_CLUSTER_ARTIFACT_URLS"
)

// listFlag is a repeatable NAME=VALUE flag and its comma-separated variable; a
// flag given on the command line replaces the variable's whole list.
type listFlag struct {
	fromFlag, fromEnv []string
}

func (l *listFlag) define(fs *flag.FlagSet, name, envName, usage string, env func(string) string) {
	for _, item := range strings.Split(env(envName), ",") {
		if item = strings.TrimSpace(item); item != "" {
			l.fromEnv = append(l.fromEnv, item)
		}
	}
	fs.Func(name, usage+" ["+envName+", comma-separated]", func(v string) error {
		l.fromFlag = append(l.fromFlag, v)
		return nil
	})
}

// items are the list in force and where it came from, for usage errors.
func (l listFlag) items(fs *flag.FlagSet, name, envName string) ([]string, string) {
	items, from := l.fromEnv, envName
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			items, from = l.fromFlag, "--"+name
		}
	})
	return items, from
}

// clusterFlagSet defines the flags of the clusters served beside the default one
// (--kubeconfig or --in-cluster, named --cluster).
func clusterFlagSet(fs *flag.FlagSet, k *kubeFlags, env func(string) string) {
	k.extra.define(fs, "cluster-kubeconfig", clusterKubeconfigEnv, "NAME=PATH: one more cluster this API serves, whose Flux applies stores/NAME/ (its own watcher, shard publisher, Lease and ExternalArtifacts); repeat it for each. New stores may name it in \"cluster\"; the default cluster is --cluster, reached by --kubeconfig or --in-cluster, or by one of these", env)
	k.artifactURLs.define(fs, "cluster-artifact-url", clusterArtifactURLEnv, "NAME=URL: the base URL served cluster NAME's kustomize-controller fetches its shard artifacts from, when it reaches --artifacts-listen by another address than --artifact-url (a cluster in another network: a LoadBalancer or Ingress in front of it); repeat it for each such cluster", env)
}

// served lists the clusters this API serves, the default one (named def) first when
// --kubeconfig or --in-cluster reach it, and every problem with them, each naming
// the flag or variable. A command-line --cluster-kubeconfig replaces the variable's
// list. None served is no problem: the API then runs without a cluster.
func (k kubeFlags) served(fs *flag.FlagSet, def string) ([]servedCluster, []error) {
	items, from := k.extra.items(fs, "cluster-kubeconfig", clusterKubeconfigEnv)
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
	errs = append(errs, k.artifactURLsOf(fs, out)...)
	return out, errs
}

// artifactURLsOf sets each served cluster's own artifact URL
// (--cluster-artifact-url), and reports every problem with them, each naming the
// flag or variable.
func (k kubeFlags) artifactURLsOf(fs *flag.FlagSet, cs []servedCluster) []error {
	items, from := k.artifactURLs.items(fs, "cluster-artifact-url", clusterArtifactURLEnv)
	var errs []error
	given := map[string]string{} // cluster → the item that gave its URL
	for _, item := range items {
		name, u, ok := strings.Cut(item, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		if !ok || name == "" || u == "" {
			errs = append(errs, fmt.Errorf("%s %q must be NAME=URL (a served cluster and the base URL its Flux fetches artifacts from)", from, item))
			continue
		}
		i := slices.IndexFunc(cs, func(c servedCluster) bool { return c.name == name })
		if i < 0 {
			served := "none (no --kubeconfig, --in-cluster or --cluster-kubeconfig)"
			if len(cs) > 0 {
				served = strings.Join(names(cs), ", ")
			}
			errs = append(errs, fmt.Errorf("%s %q: cluster %s is not served; served: %s", from, item, name, served))
			continue
		}
		if prev, dup := given[name]; dup {
			errs = append(errs, fmt.Errorf("%s %q: cluster %s already has its artifact URL, from %s; each cluster has one", from, item, name, prev))
			continue
		}
		if msg := artifactURLProblem(u); msg != "" {
			errs = append(errs, fmt.Errorf("%s %q: %s", from, item, msg))
			continue
		}
		given[name] = from + " " + item
		cs[i].artifactURL = u
	}
	return errs
}

// artifactURLProblem is what is wrong with u as the base URL of the shard artifacts
// ("" when nothing): kustomize-controller fetches them over HTTP(S), by a host.
func artifactURLProblem(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "must be an http:// or https:// URL"
	}
	if p.User != nil || p.RawQuery != "" || p.Fragment != "" {
		return "must carry no user, query or fragment: it is the base of every artifact's URL, which Flux fetches as is"
	}
	return ""
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
