package render

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Chart source kinds.
const (
	// SourceHelmRepository: the chart comes from a HelmRepository (an HTTP chart repository), through one
	// HelmChart per engine and version beside it (SharedChartSource). The local test environment serves one on
	// loopback.
	SourceHelmRepository = "HelmRepository"
	// SourceOCIRepository: one OCIRepository per engine and version, pinned to the version's tag, in
	// Namespace (SharedChartSource; the production setup: charts pushed to an OCI registry).
	SourceOCIRepository = "OCIRepository"
)

// ChartSource says where store charts come from. It is never a GitRepository: there the chart version is
// ignored (so a version upgrade would do nothing) and every fleet commit would re-package every store's
// chart.
type ChartSource struct {
	Kind string
	// Name of the HelmRepository (SourceHelmRepository).
	Name string
	// Namespace holds the HelmRepository and, with either kind, the shared chart sources (the Flux namespace).
	Namespace string
	// URL is the OCI repository prefix (SourceOCIRepository); the engine's chart is URL + "/" + engine,
	// e.g. oci://ghcr.io/storefleet/charts/woocommerce, tagged with the store's version.
	URL string
}

// Image is a container image for the engines without an official one (medusa).
type Image struct {
	Repository string
	Tag        string
}

// Options are what differs between clusters. Stores do not choose them.
type Options struct {
	// BaseDomain is the parent of default store domains (<name>.<BaseDomain>).
	BaseDomain string
	Chart      ChartSource
	// DisableWait turns off Helm's waiting for resources and jobs on install and upgrade. Only for
	// clusters without a kubelet (the test environment without its node: Pods never become ready there and
	// every install would time out); real clusters, and the test environment with a node, leave it false so
	// a release is ready only when its shop serves and a failed rollout is a failed release.
	DisableWait bool
	// Interval is how often helm-controller reconciles each release; Timeout bounds one Helm action.
	Interval time.Duration
	Timeout  time.Duration
	// WaitTimeouts replace Timeout per engine and plan where Helm waits: a first Medusa install runs its
	// migrations and set-up before it serves, and a bigger plan rolls out more replicas. An engine or plan
	// not listed gets Timeout.
	WaitTimeouts map[store.Engine]map[store.PlanName]time.Duration
	// RetryInterval is how long helm-controller waits before retrying a failed upgrade.
	RetryInterval time.Duration

	// Ingress settings handed to the chart (empty = cluster default / none).
	IngressClassName string
	ClusterIssuer    string
	TLSSecretName    string
	// IngressNamespace is the namespace of the ingress controller (or gateway); the NetworkPolicy admits
	// traffic from it by its kubernetes.io/metadata.name label.
	IngressNamespace string
	// DNSNamespace is where the cluster DNS runs (egress on port 53 is allowed to it).
	DNSNamespace string
	// PrivateCIDRs are excluded from the store's internet egress besides the cloud metadata address:
	// the cluster's pod and service CIDRs (so other stores are unreachable by IP) and the node networks.
	PrivateCIDRs []string

	// MedusaImage is the medusa image (there is no official one; each cluster names its build).
	MedusaImage Image
	// ServiceImages replace the charts' default images of an engine's services, by the chart's
	// images.<key> (woocommerce: wordpress, mysql; medusa: postgresql, redis). Empty = the official images
	// the charts name. The test environment's node sets them to the images it builds from Debian packages.
	ServiceImages map[store.Engine]map[string]Image

	// FluxShards is the cluster's number of Flux controller shards: with more than
	// one, each store's HelmRelease carries its controller shard's label (FluxShards.Key
	// of the store's fleet shard), the one its shard Kustomization carries
	// (ShardLayout.FluxShards, set from the same setting).
	FluxShards FluxShards
	// Shards is the fleet's shard count (store.ShardsFile): it places the store's
	// folder (store.DirIn) and picks the shard whose Flux controller shard the
	// HelmRelease is labelled with. It is the fleet repository's, read from the head
	// a change is written onto, so a long-running caller sets it per render
	// (Renderer.InFleet) rather than once. 0 means store.DefaultShards, the count of
	// a fleet without the file.
	Shards int
}

// shards is the fleet's shard count the options render for.
func (o Options) shards() int {
	if o.Shards == 0 {
		return store.DefaultShards
	}
	return o.Shards
}

// DefaultWaitTimeouts are the Helm action timeouts of a waiting cluster. Measured on the test node (2
// shared cores): WordPress serves 25-45 s after helm install, Medusa 56-72 s (migrations, set-up); these
// leave room for a busy cluster pulling images and for premium's extra replicas.
func DefaultWaitTimeouts() map[store.Engine]map[store.PlanName]time.Duration {
	return map[store.Engine]map[store.PlanName]time.Duration{
		store.WooCommerce: {store.Basic: 5 * time.Minute, store.Standard: 6 * time.Minute, store.Premium: 8 * time.Minute},
		store.Medusa:      {store.Basic: 10 * time.Minute, store.Standard: 12 * time.Minute, store.Premium: 15 * time.Minute},
	}
}

// ActionTimeout bounds one Helm action (install, upgrade) of a store of engine e on plan p.
func (o Options) ActionTimeout(e store.Engine, p store.PlanName) time.Duration {
	if d := o.WaitTimeouts[e][p]; !o.DisableWait && d > 0 {
		return d
	}
	return o.Timeout
}

// MetadataCIDR is the cloud metadata address; store egress never reaches it.
const MetadataCIDR = "169.254.169.254/32"

// LocalOptions are the options of the "local" cluster (the test environment and `gitops-api render`).
func LocalOptions() Options {
	return Options{
		BaseDomain:       store.DefaultBaseDomain,
		Chart:            ChartSource{Kind: SourceHelmRepository, Name: "storefleet", Namespace: "flux-system"},
		DisableWait:      true,
		Interval:         10 * time.Minute,
		Timeout:          10 * time.Minute,
		WaitTimeouts:     DefaultWaitTimeouts(),
		RetryInterval:    5 * time.Minute,
		IngressNamespace: "ingress-nginx",
		DNSNamespace:     "kube-system",
		// Every private and shared range: whatever pod/service CIDRs a local cluster picks, they are in here.
		PrivateCIDRs: []string{"10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"},
		MedusaImage:  Image{Repository: "registry.localhost/storefleet/medusa", Tag: "2.8.0"},
	}
}

// Validate checks the options themselves (they come from cluster configuration, not from users); render
// refuses to run with broken options rather than write manifests Flux would reject.
func (o Options) Validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch o.Chart.Kind {
	case SourceHelmRepository:
		if o.Chart.Name == "" || o.Chart.Namespace == "" {
			bad("chart source: HelmRepository needs a name and a namespace")
		}
	case SourceOCIRepository:
		if o.Chart.Namespace == "" {
			bad("chart source: OCIRepository needs a namespace")
		}
		if !strings.HasPrefix(o.Chart.URL, "oci://") || strings.HasSuffix(o.Chart.URL, "/") {
			bad("chart source: OCIRepository URL %q must begin with oci:// and not end with /", o.Chart.URL)
		}
	default:
		bad("chart source: kind %q is neither %s nor %s", o.Chart.Kind, SourceHelmRepository, SourceOCIRepository)
	}
	for name, d := range map[string]time.Duration{"interval": o.Interval, "timeout": o.Timeout, "retry interval": o.RetryInterval} {
		if d <= 0 {
			bad("%s must be positive", name)
		}
	}
	for e, imgs := range o.ServiceImages {
		for key, img := range imgs {
			if img.Repository == "" || img.Tag == "" {
				bad("service image %s of %s needs a repository and a tag", key, e)
			}
		}
	}
	for e, plans := range o.WaitTimeouts {
		for p, d := range plans {
			if d <= 0 {
				bad("wait timeout of %s on %s must be positive", e, p)
			}
		}
	}
	if o.Shards != 0 {
		if err := store.ValidShards(o.Shards); err != nil {
			bad("%v", err)
		}
	}
	if err := o.FluxShards.Validate(); err != nil {
		bad("%v", err)
	}
	if o.IngressNamespace == "" || o.DNSNamespace == "" {
		bad("ingress and DNS namespaces are required for the NetworkPolicies")
	}
	for _, c := range o.PrivateCIDRs {
		if _, n, err := net.ParseCIDR(c); err != nil || n.IP.To4() == nil || n.String() != c {
			bad("private CIDR %q is not a canonical IPv4 CIDR", c)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return store.Errorf(store.EINTERNAL, "render options: %s", strings.Join(problems, "; "))
}
