package serve

import (
	"context"
	"flag"
	"log/slog"
	"strconv"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/status"
)

// kubeFlags say which cluster status watches.
type kubeFlags struct {
	kubeconfig, fluxNamespace, source, kustomization, receiverURL string
	inCluster                                                     bool
}

func (k kubeFlags) configured() bool { return k.kubeconfig != "" || k.inCluster }

func kubeFlagSet(fs *flag.FlagSet, k *kubeFlags, env func(string) string) {
	str := func(p *string, name, envName, def, help string) {
		if v := env(envName); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, help+" ["+envName+"]")
	}
	str(&k.kubeconfig, "kubeconfig", "STOREFLEET_KUBECONFIG", "", "kubeconfig of the cluster whose Flux applies the fleet: stores then report their real phase (sourceFetched … ready) and /api/v1/stores/{name}/events streams it; empty (and no --in-cluster) = no cluster, stores show committed")
	inCluster, _ := strconv.ParseBool(env("STOREFLEET_IN_CLUSTER"))
	fs.BoolVar(&k.inCluster, "in-cluster", inCluster, "watch the cluster gitops-api runs in, with its ServiceAccount [STOREFLEET_IN_CLUSTER]")
	str(&k.fluxNamespace, "flux-namespace", "STOREFLEET_FLUX_NAMESPACE", "flux-system", "namespace of the fleet GitRepository and Kustomization")
	str(&k.source, "fleet-source", "STOREFLEET_FLEET_SOURCE", "fleet", "name of the Flux GitRepository that fetches the fleet repository")
	str(&k.kustomization, "fleet-kustomization", "STOREFLEET_FLEET_KUSTOMIZATION", "stores", "name of the Flux Kustomization that applies the stores")
	str(&k.receiverURL, "receiver-url", "STOREFLEET_RECEIVER_URL", "", "notification-controller Receiver webhook URL to call after each push; empty = annotate the GitRepository and Kustomization as `flux reconcile` does")
}

// attachStatus connects the API to the cluster when one is configured: a Tracker
// fed by the kube Watcher, stores loaded from the fleet, and the status-aware
// service. Without a cluster the service and options are returned unchanged.
func attachStatus(ctx context.Context, k kubeFlags, svc *fleet.Service, repo *gitrepo.Repo, log *slog.Logger) (api.Service, api.Options, func(), error) {
	opts := api.Options{Log: log}
	if !k.configured() {
		return svc, opts, func() {}, nil
	}
	kubeconfig := k.kubeconfig
	if k.inCluster {
		kubeconfig = ""
	}
	tr := status.New(status.Options{Ancestry: repo, Log: log})
	w, err := kube.New(kube.Config{
		Kubeconfig: kubeconfig, FluxNamespace: k.fluxNamespace, Source: k.source,
		Kustomization: k.kustomization, ReceiverURL: k.receiverURL, Log: log,
	}, tr)
	if err != nil {
		return nil, opts, nil, err
	}
	tr.UseRequester(w)
	ss := status.Service{Stores: svc, T: tr}
	head, _ := repo.Head()
	n, err := ss.Load(ctx, head)
	if err != nil {
		return nil, opts, nil, err
	}
	log.Info("status: watching the cluster", "stores", n, "source", k.fluxNamespace+"/"+k.source, "kustomization", k.fluxNamespace+"/"+k.kustomization)
	w.Start()
	// Event streams end when the server shuts down, so graceful shutdown does not
	// wait on them.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			tr.Close()
		case <-stopped:
		}
	}()
	opts.Status, opts.Cluster = tr, w.Check
	return ss, opts, func() { close(stopped); w.Stop(); tr.Close() }, nil
}
