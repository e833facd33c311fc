package charts

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The platform chart's RBAC is least privilege: read Flux objects, events and namespaces;
// patch only Flux sources and Kustomizations (to request a reconcile); nothing else.
func TestPlatformRBAC(t *testing.T) {
	readable := map[string]bool{
		"helm.toolkit.fluxcd.io/helmreleases":        true,
		"kustomize.toolkit.fluxcd.io/kustomizations": true,
		"source.toolkit.fluxcd.io/gitrepositories":   true,
		"source.toolkit.fluxcd.io/helmrepositories":  true,
		"source.toolkit.fluxcd.io/ocirepositories":   true,
		"/events":              true,
		"events.k8s.io/events": true,
		"/namespaces":          true,
	}
	patchable := map[string]bool{
		"kustomize.toolkit.fluxcd.io/kustomizations": true,
		"source.toolkit.fluxcd.io/gitrepositories":   true,
		"source.toolkit.fluxcd.io/helmrepositories":  true,
		"source.toolkit.fluxcd.io/ocirepositories":   true,
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

			granted := map[string]map[string]bool{} // group/resource -> verbs
			roles := append(byKind(objs, "ClusterRole"), byKind(objs, "Role")...)
			if len(roles) == 0 {
				t.Fatal("no ClusterRole or Role")
			}
			for _, r := range roles {
				if _, ok := r.Object["aggregationRule"]; ok {
					t.Errorf("%s %s: aggregation rules grant what other roles hold", r.GetKind(), r.GetName())
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
							if strings.Contains(res, "/") {
								t.Errorf("%s: subresource %s", id, res)
							}
							if !readable[key] {
								t.Errorf("%s: grants %s, which the API has no reason to touch", id, key)
							}
							for _, v := range verbs {
								switch v {
								case "get", "list", "watch":
								case "patch":
									if !patchable[key] {
										t.Errorf("%s: patch on %s (only Flux sources and Kustomizations)", id, key)
									}
								default:
									t.Errorf("%s: verb %q on %s (only get, list, watch, patch)", id, v, key)
								}
								if granted[key] == nil {
									granted[key] = map[string]bool{}
								}
								granted[key][v] = true
							}
						}
					}
				}
			}
			for key := range readable {
				for _, v := range []string{"get", "list", "watch"} {
					if !granted[key][v] {
						t.Errorf("%s not granted on %s (status needs it)", v, key)
					}
				}
			}
			for key := range patchable {
				if !granted[key]["patch"] {
					t.Errorf("patch not granted on %s (reconcile requests need it)", key)
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
				if ref, _, _ := unstructured.NestedString(b.Object, "roleRef", "name"); find(objs, "ClusterRole", ref) == nil && find(objs, "Role", ref) == nil {
					t.Errorf("%s %s binds role %q that the chart does not define (e.g. a built-in one)", b.GetKind(), b.GetName(), ref)
				}
			}
			checkAdmissionPolicy(t, objs, "system:serviceaccount:storefleet:"+sa)
		})
	}
}

// RBAC cannot narrow a patch; the ValidatingAdmissionPolicy must, for the API's user.
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
		if !strings.Contains(strings.Join(ops, ","), "UPDATE") {
			t.Errorf("resource rule %v does not match UPDATE (patches arrive as UPDATE)", r)
		}
	}
	for _, g := range []string{"source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"} {
		if !covered[g] {
			t.Errorf("policy does not match API group %s", g)
		}
	}
	validations, _, _ := unstructured.NestedSlice(p.Object, "spec", "validations")
	all := fmt.Sprint(validations)
	for _, want := range []string{"reconcile.fluxcd.io/requestedAt", "object.spec == oldObject.spec", `request.operation == "UPDATE"`} {
		if !strings.Contains(all, want) {
			t.Errorf("validations do not check %s", want)
		}
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
