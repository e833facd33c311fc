package render

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kustypes "sigs.k8s.io/kustomize/api/types"

	"github.com/storefleet/storefleet/internal/store"
)

// File is one rendered file, Path relative to the fleet repository root.
type File = store.File

// File names inside a store folder (docs/design.md, "Fleet repository layout").
const (
	KustomizationFile = "kustomization.yaml"
	NamespaceFile     = "namespace.yaml"
	RBACFile          = "rbac.yaml"
	PolicyFile        = "policy.yaml"
	HelmReleaseFile   = "helmrelease.yaml"
)

// Names of objects render creates in every store namespace.
const (
	ServiceAccountName = "storefleet-store"
	RoleBindingName    = "storefleet-store"
	QuotaName          = "store"
	LimitRangeName     = "store"
)

// Labels and annotations.
const (
	LabelTenant = "toolkit.fluxcd.io/tenant"
	// LabelStoreTenant carries the store's owning tenant (Store.Tenant) on its
	// Namespace and HelmRelease, so that an operator can select one tenant's stores
	// (kubectl get ns -l storefleet.io/tenant=x) and Parse reads the tenant back. The
	// Flux label above names the store itself, as Flux's tenancy knows it; the two
	// are not the same thing.
	LabelStoreTenant = "storefleet.io/tenant"
	LabelPlan        = "storefleet.io/plan"
	AnnotationPrune  = "kustomize.toolkit.fluxcd.io/prune"
	PruneDisabled    = "disabled"
	PruneEnabled     = "enabled"
)

// engineSpec is everything render knows per engine, in one table.
type engineSpec struct {
	// chart is the chart's name in the chart repository (charts/<engine>).
	chart string
	// psa is the Pod Security Admission level the namespace enforces. The charts engineer chooses the
	// security contexts; this must be the strictest level the chart's pods meet. The official WordPress image
	// runs Apache as root on port 80, so woocommerce can only meet "baseline"; medusa (node, unprivileged
	// port, non-root) is meant to meet "restricted".
	psa string
	// stateful engines keep data across upgrades: a failed upgrade is retried, never rolled back or
	// uninstalled.
	stateful bool
}

var engines = map[store.Engine]engineSpec{
	store.WooCommerce: {chart: "woocommerce", psa: "baseline", stateful: true},
	store.Medusa:      {chart: "medusa", psa: "restricted", stateful: true},
}

// PSALevel returns the Pod Security Admission level enforced in namespaces of engine e.
func PSALevel(e store.Engine) string { return engines[e].psa }

// prepare applies defaults and validates, so every entry point renders only complete, valid stores.
func prepare(s store.Store, opts Options) (store.Store, engineSpec, error) {
	if err := opts.Validate(); err != nil {
		return s, engineSpec{}, err
	}
	s = s.WithDefaults(opts.BaseDomain)
	if err := s.Validate(); err != nil {
		return s, engineSpec{}, err
	}
	e, ok := engines[s.Engine]
	if !ok {
		return s, e, store.Errorf(store.EINTERNAL, "render: no engine table entry for %q", s.Engine)
	}
	if s.Engine == store.Medusa && (opts.MedusaImage.Repository == "" || opts.MedusaImage.Tag == "") {
		return s, e, store.Errorf(store.EINVALID, "cluster %s has no medusa image configured", s.Cluster)
	}
	return s, e, nil
}

// Store renders the full state of a live store: every file of its folder, kustomization.yaml included,
// sorted by path.
func Store(s store.Store, opts Options) ([]File, error) { return render(s, opts, store.StateActive) }

// Retained renders a deleted store whose data is kept (first phase of deletion): the HelmRelease is gone, so
// helm-controller uninstalls the release (its PVCs carry helm.sh/resource-policy: keep and survive), while
// the Namespace stays prune-disabled, the ServiceAccount and RoleBinding stay so the uninstall can run, and
// the quota and policies stay around the data.
func Retained(s store.Store, opts Options) ([]File, error) {
	return render(s, opts, store.StateRetained)
}

// PurgeStep1 renders the first commit of a purge: only the Namespace, now with pruning enabled. Once Flux
// has applied it, removing the folder (step 2: the writer deletes the store's folder) makes kustomize-controller
// delete the namespace and everything in it, data included. The other objects are dropped here already;
// Flux prunes them since they never carried the prune-disabled annotation.
func PurgeStep1(s store.Store, opts Options) ([]File, error) {
	return render(s, opts, store.StatePurging)
}

func render(s store.Store, opts Options, st store.State) ([]File, error) {
	r, files, err := objects(s, opts, st)
	if err != nil {
		return nil, err
	}
	return r.folder(files)
}

// objects builds the typed objects of each file of a store's folder.
func objects(s store.Store, opts Options, st store.State) (*renderer, map[string][]any, error) {
	s, e, err := prepare(s, opts)
	if err != nil {
		return nil, nil, err
	}
	r := &renderer{s: s, e: e, opts: opts, st: st, ns: s.Namespace(), dir: store.DirIn(s.Cluster, s.Name, opts.shards())}
	switch st {
	case store.StatePurging:
		return r, map[string][]any{NamespaceFile: {r.namespace(PruneEnabled)}}, nil
	case store.StateRetained:
		return r, map[string][]any{
			NamespaceFile: {r.namespace(PruneDisabled)},
			RBACFile:      r.rbac(),
			PolicyFile:    r.policy(),
		}, nil
	}
	hr, err := r.helmRelease()
	if err != nil {
		return nil, nil, err
	}
	return r, map[string][]any{
		NamespaceFile:   {r.namespace(PruneDisabled)},
		RBACFile:        r.rbac(),
		PolicyFile:      r.policy(),
		HelmReleaseFile: hr,
	}, nil
}

type renderer struct {
	s    store.Store
	e    engineSpec
	opts Options
	st   store.State
	ns   string
	// cacheKey is what, besides the file, keys the templates of encodeCached.
	cacheKey string
	dir      string
}

// folder marshals each file's objects and adds the kustomization.yaml listing them. Files come out sorted
// by path.
func (r *renderer) folder(files map[string][]any) ([]File, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	k := kustypes.Kustomization{
		TypeMeta:  kustypes.TypeMeta{APIVersion: kustypes.KustomizationVersion, Kind: kustypes.KustomizationKind},
		Resources: names,
	}
	out := make([]File, 0, len(names)+1)
	kb, err := kustomizationFile(names, func() ([]byte, error) { return encode(&k) })
	if err != nil {
		return nil, err
	}
	out = append(out, File{Path: path.Join(r.dir, KustomizationFile), Content: kb})
	for _, n := range names {
		b, err := r.encodeCached(n, files[n])
		if err != nil {
			return nil, err
		}
		out = append(out, File{Path: path.Join(r.dir, n), Content: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (r *renderer) labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       string(r.s.Engine),
		"app.kubernetes.io/instance":   r.s.Name,
		"app.kubernetes.io/part-of":    "storefleet",
		"app.kubernetes.io/managed-by": "storefleet",
		LabelTenant:                    r.s.Name,
	}
}

// tenantLabel adds the tenant label when the store has a tenant: a store read back
// from files written before tenants has none, and renders exactly as it did then.
func (r *renderer) tenantLabel(l map[string]string) {
	if r.s.Tenant != "" {
		l[LabelStoreTenant] = r.s.Tenant
	}
}

func (r *renderer) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: r.ns, Labels: r.labels()}
}

func (r *renderer) namespace(prune string) *corev1.Namespace {
	l := r.labels()
	l["pod-security.kubernetes.io/enforce"] = r.e.psa
	l["pod-security.kubernetes.io/enforce-version"] = "latest"
	l["pod-security.kubernetes.io/warn"] = r.e.psa
	l["pod-security.kubernetes.io/warn-version"] = "latest"
	l[LabelPlan] = string(r.s.Plan)
	r.tenantLabel(l)
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        r.ns,
			Labels:      l,
			Annotations: map[string]string{AnnotationPrune: prune},
		},
	}
}

func (r *renderer) rbac() []any {
	return []any{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: r.meta(ServiceAccountName),
		},
		// helm-controller impersonates the ServiceAccount; "admin" bound in the namespace lets the chart
		// manage everything namespaced there and nothing elsewhere.
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: r.meta(RoleBindingName),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: ServiceAccountName, Namespace: r.ns}},
		},
	}
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func (r *renderer) policy() []any {
	p := store.Plans[r.s.Plan]
	quota := &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: r.meta(QuotaName),
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceRequestsCPU:            q(p.Quota.Requests.CPU),
			corev1.ResourceRequestsMemory:         q(p.Quota.Requests.Memory),
			corev1.ResourceLimitsCPU:              q(p.Quota.Limits.CPU),
			corev1.ResourceLimitsMemory:           q(p.Quota.Limits.Memory),
			corev1.ResourcePods:                   *resource.NewQuantity(int64(p.Quota.Pods), resource.DecimalSI),
			corev1.ResourcePersistentVolumeClaims: *resource.NewQuantity(int64(p.Quota.PVCs), resource.DecimalSI),
			corev1.ResourceRequestsStorage:        q(p.Quota.Storage),
		}},
	}
	limits := &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: r.meta(LimitRangeName),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer,
			Default: corev1.ResourceList{
				corev1.ResourceCPU: q(p.Limits.Default.CPU), corev1.ResourceMemory: q(p.Limits.Default.Memory),
			},
			DefaultRequest: corev1.ResourceList{
				corev1.ResourceCPU: q(p.Limits.DefaultRequest.CPU), corev1.ResourceMemory: q(p.Limits.DefaultRequest.Memory),
			},
		}}},
	}
	return append([]any{quota, limits}, r.networkPolicies()...)
}

// networkPolicies: deny everything, then allow ingress from the namespace itself and the ingress controller,
// and egress to the namespace itself, cluster DNS and the internet minus the metadata address and the
// cluster's private ranges (so no other store's pods or services are reachable).
func (r *renderer) networkPolicies() []any {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	dns := intstr.FromInt32(53)
	nsSel := func(ns string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	}
	except := append([]string{MetadataCIDR}, r.opts.PrivateCIDRs...)
	sort.Strings(except)
	np := func(name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: r.meta(name),
			Spec:       spec,
		}
	}
	return []any{
		np("allow-egress", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
				{
					To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel(r.opts.DNSNamespace)}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
				},
				{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: except}}}},
			},
		}),
		np("allow-ingress", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel(r.opts.IngressNamespace)}}},
			},
		}),
		np("default-deny", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		}),
	}
}

// ChartValues are exactly the chart values of docs/design.md ("Chart values that render writes"). Fields
// tagged omitempty appear for one engine only. Exported so that reading a store back from its HelmRelease
// (internal/fleet) decodes the very type render writes.
type ChartValues struct {
	Store     StoreValues    `json:"store"`
	Plan      string         `json:"plan"`
	Replicas  int            `json:"replicas"`
	Resources resourceValues `json:"resources"`
	Storage   store.Storage  `json:"storage"`
	Ingress   ingressValues  `json:"ingress"`
	Image     *imageValues   `json:"image,omitempty"`
	// Images are the services' images where the cluster names its own (Options.ServiceImages).
	Images map[string]imageValues `json:"images,omitempty"`
}

// StoreValues is the store part of ChartValues.
type StoreValues struct {
	Name       string `json:"name"`
	Domain     string `json:"domain"`
	Title      string `json:"title"`
	AdminEmail string `json:"adminEmail"`
	Currency   string `json:"currency"`
	Country    string `json:"country"`
	Language   string `json:"language,omitempty"`
	RegionName string `json:"regionName,omitempty"`
}

type resourceValues struct {
	App      store.Resources  `json:"app"`
	Database store.Resources  `json:"database"`
	Cache    *store.Resources `json:"cache,omitempty"`
}

type ingressValues struct {
	ClassName     string `json:"className"`
	ClusterIssuer string `json:"clusterIssuer"`
	TLSSecretName string `json:"tlsSecretName"`
}

type imageValues struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
}

func (r *renderer) values() ChartValues {
	p := store.Plans[r.s.Plan]
	v := ChartValues{
		Store: StoreValues{
			Name: r.s.Name, Domain: r.s.Domain, Title: r.s.Settings.Title, AdminEmail: r.s.Settings.AdminEmail,
			Currency: r.s.Settings.Currency, Country: r.s.Settings.Country,
		},
		Plan:      string(r.s.Plan),
		Replicas:  p.Replicas,
		Resources: resourceValues{App: p.App, Database: p.Database},
		Storage:   p.Storage,
		Ingress: ingressValues{
			ClassName: r.opts.IngressClassName, ClusterIssuer: r.opts.ClusterIssuer, TLSSecretName: r.opts.TLSSecretName,
		},
	}
	switch r.s.Engine {
	case store.WooCommerce:
		v.Store.Language = r.s.Settings.Language
	case store.Medusa:
		v.Store.RegionName = r.s.Settings.RegionName
		cache := p.Cache
		v.Resources.Cache = &cache
		v.Image = &imageValues{Repository: r.opts.MedusaImage.Repository, Tag: r.opts.MedusaImage.Tag}
	}
	for key, img := range r.opts.ServiceImages[r.s.Engine] {
		if v.Images == nil {
			v.Images = map[string]imageValues{}
		}
		v.Images[key] = imageValues{Repository: img.Repository, Tag: img.Tag}
	}
	return v
}

func (r *renderer) helmRelease() ([]any, error) {
	raw, err := json.Marshal(r.values())
	if err != nil {
		return nil, fmt.Errorf("render: chart values: %w", err)
	}
	yes := true
	rollback := helmv2.RollbackRemediationStrategy
	hr := &helmv2.HelmRelease{
		TypeMeta:   metav1.TypeMeta{APIVersion: helmv2.GroupVersion.String(), Kind: helmv2.HelmReleaseKind},
		ObjectMeta: r.meta(r.s.Name),
		Spec: helmv2.HelmReleaseSpec{
			ReleaseName:        r.s.Name,
			ServiceAccountName: ServiceAccountName,
			Interval:           metav1.Duration{Duration: r.opts.Interval},
			Timeout:            &metav1.Duration{Duration: r.opts.ActionTimeout(r.s.Engine, r.s.Plan)},
			Install: &helmv2.Install{
				// A failed first install holds no data yet: uninstall and try again.
				Remediation:        &helmv2.InstallRemediation{Retries: 3},
				DisableWait:        r.opts.DisableWait,
				DisableWaitForJobs: r.opts.DisableWait,
			},
			Upgrade: &helmv2.Upgrade{
				// Never uninstall on a failed upgrade; with a rollback strategy only as the explicit remedy
				// should the strategy ever be switched back to RemediateOnFailure.
				Remediation: &helmv2.UpgradeRemediation{
					Retries: 3, RemediateLastFailure: &yes, Strategy: &rollback,
				},
				DisableWait:        r.opts.DisableWait,
				DisableWaitForJobs: r.opts.DisableWait,
			},
			DriftDetection: &helmv2.DriftDetection{Mode: helmv2.DriftDetectionEnabled},
			Values:         &apiextensionsv1.JSON{Raw: raw},
		},
	}
	r.tenantLabel(hr.Labels)
	labelFluxShard(hr.Labels, r.opts.FluxShards, store.ShardIn(r.s.Name, r.opts.shards()))
	hr.Annotations = map[string]string{store.AnnotationVersion: r.s.Version}
	if r.e.stateful {
		// Stateful engines migrate their database during an upgrade; rolling back the release afterwards
		// would run the old code against the migrated data. Retry the upgrade instead.
		hr.Spec.Upgrade.Strategy = &helmv2.UpgradeStrategy{
			Name:          string(helmv2.ActionStrategyRetryOnFailure),
			RetryInterval: &metav1.Duration{Duration: r.opts.RetryInterval},
		}
	}
	kind, err := chartSourceKind(r.opts)
	if err != nil {
		return nil, err
	}
	hr.Spec.ChartRef = &helmv2.CrossNamespaceSourceReference{
		Kind: kind, Name: ChartSourceName(r.s.Engine, r.s.Version), Namespace: r.opts.Chart.Namespace,
	}
	return []any{hr}, nil
}
