package charts

import (
	"fmt"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The platform chart's RBAC is least privilege, and exactly this: read Flux objects, events,
// namespaces and Pods (and get Pod logs) cluster-wide; in the Flux namespace only, for the
// shard publisher, create ExternalArtifacts and write their status, create, patch
// (server-side apply) and update Kustomizations, and patch the fleet GitRepository alone,
// by name (a fetch request when the shared chart sources changed); in its own namespace,
// create, get and update the Lease of the replicas' election. Nothing else: no delete, no
// update of ExternalArtifacts, no other patch of a source, no other namespace.
func TestPlatformRBAC(t *testing.T) {
	read := []string{"get", "list", "watch"}
	want := map[string]map[string][]string{ // namespace ("" = cluster) -> group/resource -> verbs
		"": {
			"helm.toolkit.fluxcd.io/helmreleases":        read,
			"kustomize.toolkit.fluxcd.io/kustomizations": read,
			"source.toolkit.fluxcd.io/gitrepositories":   read,
			"source.toolkit.fluxcd.io/helmrepositories":  read,
			"source.toolkit.fluxcd.io/ocirepositories":   read,
			"/events":              read,
			"events.k8s.io/events": read,
			"/namespaces":          read,
			// Store Pods: a crash-looping container's reason on the store's status, and
			// the logs endpoint. Cluster-wide because the watch selects by the store label
			// across every store namespace.
			"/pods":     read,
			"/pods/log": {"get"},
		},
		"flux-system": {
			"source.toolkit.fluxcd.io/externalartifacts":        {"get", "list", "watch", "create"},
			"source.toolkit.fluxcd.io/externalartifacts/status": {"get", "update", "patch"},
			"kustomize.toolkit.fluxcd.io/kustomizations":        {"create", "patch", "update"},
			// The fetch request for the shared chart sources: only by name (named, below).
			"source.toolkit.fluxcd.io/gitrepositories": {"patch"},
		},
		// Leader election among the replicas, in the release namespace.
		"storefleet": {
			"coordination.k8s.io/leases": {"create", "get", "update"},
		},
	}
	// Grants limited to these objects by resourceNames (namespace -> group/resource).
	named := map[string]map[string][]string{
		"flux-system": {"source.toolkit.fluxcd.io/gitrepositories": {"fleet"}},
	}
	for _, vf := range []string{"", "values-local.yaml", "values-prod.yaml"} {
		t.Run("values="+vf, func(t *testing.T) {
			o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
			if vf != "" {
				o.ValuesFiles = []string{chartDir("storefleet") + "/" + vf}
			}
			objs := template(t, "storefleet", o)
			sa := "storefleet-gitops-api"
			if find(objs, "ServiceAccount", sa) == nil {
				t.Fatalf("ServiceAccount %s missing", sa)
			}
			d := find(objs, "Deployment", sa)
			if d == nil {
				t.Fatalf("Deployment %s missing", sa)
			}
			if got, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName"); got != sa {
				t.Errorf("Deployment runs as ServiceAccount %q, want %s", got, sa)
			}

			granted := map[string]map[string]map[string]bool{} // namespace -> group/resource -> verbs
			roles := append(byKind(objs, "ClusterRole"), byKind(objs, "Role")...)
			if len(roles) == 0 {
				t.Fatal("no ClusterRole or Role")
			}
			for _, r := range roles {
				if _, ok := r.Object["aggregationRule"]; ok {
					t.Errorf("%s %s: aggregation rules grant what other roles hold", r.GetKind(), r.GetName())
				}
				ns := r.GetNamespace()
				if r.GetKind() == "Role" && ns == "" {
					t.Errorf("Role %s has no namespace: it would land in the release namespace", r.GetName())
				}
				rules, _, _ := unstructured.NestedSlice(r.Object, "rules")
				for _, raw := range rules {
					rule := raw.(map[string]any)
					groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
					resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
					verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
					names, _, _ := unstructured.NestedStringSlice(rule, "resourceNames")
					urls, _, _ := unstructured.NestedStringSlice(rule, "nonResourceURLs")
					id := fmt.Sprintf("%s %s rule %v", r.GetKind(), r.GetName(), rule)
					if len(urls) > 0 {
						t.Errorf("%s: non-resource URLs", id)
					}
					for _, s := range append(append(append(groups, resources...), verbs...), names...) {
						if strings.Contains(s, "*") {
							t.Errorf("%s: wildcard %q", id, s)
						}
					}
					for _, g := range groups {
						for _, res := range resources {
							key := g + "/" + res
							if want[ns][key] == nil {
								t.Errorf("%s: grants %s in %q, which the API has no reason to touch there", id, key, ns)
							}
							if only, ok := named[ns][key]; ok && fmt.Sprint(names) != fmt.Sprint(only) {
								t.Errorf("%s: grants %s in %q on %v, want only %v", id, key, ns, names, only)
							}
							for _, v := range verbs {
								if granted[ns] == nil {
									granted[ns] = map[string]map[string]bool{}
								}
								if granted[ns][key] == nil {
									granted[ns][key] = map[string]bool{}
								}
								granted[ns][key][v] = true
							}
						}
					}
				}
			}
			for ns, resources := range want {
				for key, verbs := range resources {
					wantVerbs := map[string]bool{}
					for _, v := range verbs {
						wantVerbs[v] = true
						if !granted[ns][key][v] {
							t.Errorf("%s not granted on %s in %q (the API needs it)", v, key, ns)
						}
					}
					for v := range granted[ns][key] {
						if !wantVerbs[v] {
							t.Errorf("%s granted on %s in %q: more than the API needs (%v)", v, key, ns, verbs)
						}
					}
				}
			}
			// Bound to the API's ServiceAccount only.
			for _, b := range append(byKind(objs, "ClusterRoleBinding"), byKind(objs, "RoleBinding")...) {
				subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
				for _, s := range subjects {
					m := s.(map[string]any)
					if m["kind"] != "ServiceAccount" || m["name"] != sa || m["namespace"] != "storefleet" {
						t.Errorf("%s %s: subject %v, want only ServiceAccount storefleet/%s", b.GetKind(), b.GetName(), m, sa)
					}
				}
				ref, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
				refKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
				role := find(objs, refKind, ref)
				if role == nil || (refKind != "ClusterRole" && refKind != "Role") {
					t.Errorf("%s %s binds %s %q that the chart does not define (e.g. a built-in one)", b.GetKind(), b.GetName(), refKind, ref)
				} else if refKind == "Role" && role.GetNamespace() != b.GetNamespace() {
					t.Errorf("RoleBinding %s in %q binds Role %s of namespace %q", b.GetName(), b.GetNamespace(), ref, role.GetNamespace())
				}
			}
			checkAdmissionPolicy(t, objs, "system:serviceaccount:storefleet:"+sa)
		})
	}
}

// RBAC cannot narrow a patch or a create; the ValidatingAdmissionPolicy must, for the API's
// user. (TestPlatformPolicyOnCluster proves on a real API server that it does.)
func checkAdmissionPolicy(t *testing.T, objs []*unstructured.Unstructured, user string) {
	t.Helper()
	policies := byKind(objs, "ValidatingAdmissionPolicy")
	if len(policies) != 1 {
		t.Fatalf("%d ValidatingAdmissionPolicies, want 1", len(policies))
	}
	p := policies[0]
	if fp, _, _ := unstructured.NestedString(p.Object, "spec", "failurePolicy"); fp != "Fail" {
		t.Errorf("failurePolicy %q, want Fail", fp)
	}
	conds, _, _ := unstructured.NestedSlice(p.Object, "spec", "matchConditions")
	if len(conds) != 1 || !strings.Contains(fmt.Sprint(conds[0].(map[string]any)["expression"]), `"`+user+`"`) {
		t.Errorf("matchConditions %v do not select the API's user %s", conds, user)
	}
	rules, _, _ := unstructured.NestedSlice(p.Object, "spec", "matchConstraints", "resourceRules")
	covered := map[string]bool{}
	for _, r := range rules {
		groups, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "apiGroups")
		ops, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "operations")
		for _, g := range groups {
			covered[g] = true
		}
		// Patches arrive as UPDATE; CREATE and DELETE must be judged to be denied.
		for _, op := range []string{"CREATE", "UPDATE", "DELETE"} {
			if !strings.Contains(strings.Join(ops, ","), op) {
				t.Errorf("resource rule %v does not match %s", r, op)
			}
		}
	}
	for _, g := range []string{"source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"} {
		if !covered[g] {
			t.Errorf("policy does not match API group %s", g)
		}
	}
	validations, _, _ := unstructured.NestedSlice(p.Object, "spec", "validations")
	variables, _, _ := unstructured.NestedSlice(p.Object, "spec", "variables")
	all := fmt.Sprint(variables, validations)
	for _, want := range []string{"reconcile.fluxcd.io/requestedAt", "object.spec == oldObject.spec", `request.operation == "UPDATE"`,
		`request.operation == "CREATE"`, `"^stores-[0-9a-f]{3}$"`, `"storefleet.io/shard"`, `"externalartifacts"`, `subresource == "status"`,
		`"kustomizations"`, `object.spec.sourceRef.kind == "ExternalArtifact"`, `object.spec.sourceRef.name == object.metadata.name`,
		"object.spec.sourceRef.namespace", `object.spec.path == "./"`, "!has(object.spec.kubeConfig)", `object.spec.serviceAccountName == "storefleet-shard"`} {
		if !strings.Contains(all, want) {
			t.Errorf("validations do not check %s", want)
		}
	}
	if strings.Contains(all, "[0-9a-f]{2}") {
		t.Errorf("validations still accept two-hex shard names (a shard is %d hex characters)", store.ShardDigits)
	}
	bindings := byKind(objs, "ValidatingAdmissionPolicyBinding")
	if len(bindings) != 1 {
		t.Fatalf("%d ValidatingAdmissionPolicyBindings, want 1", len(bindings))
	}
	if name, _, _ := unstructured.NestedString(bindings[0].Object, "spec", "policyName"); name != p.GetName() {
		t.Errorf("binding names policy %q, want %q", name, p.GetName())
	}
	if acts, _, _ := unstructured.NestedStringSlice(bindings[0].Object, "spec", "validationActions"); fmt.Sprint(acts) != "[Deny]" {
		t.Errorf("binding validationActions %v, want [Deny]", acts)
	}
}
