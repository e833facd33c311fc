package charts

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Every cluster applies its shards with the same identity: one file, copied into each
// cluster folder (kustomize refuses files outside a folder), kept identical.
func TestShardIdentitySame(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(repoRoot, "clusters", "*", "kustomization.yaml"))
	if err != nil || len(dirs) < 2 {
		t.Fatalf("cluster folders: %v %v", dirs, err)
	}
	var first []byte
	for _, k := range dirs {
		dir := filepath.Dir(k)
		list, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(list, []byte("- shard-identity.yaml")) {
			t.Errorf("%s does not list shard-identity.yaml: its shards would apply as an identity that does not exist", k)
		}
		b, err := os.ReadFile(filepath.Join(dir, "shard-identity.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Errorf("%s/shard-identity.yaml differs from %s's", dir, filepath.Dir(dirs[0]))
		}
	}
}

// plural is the resource of a store kind (the kinds render writes are all regular).
func plural(kind string) string {
	k := strings.ToLower(kind)
	if strings.HasSuffix(k, "y") {
		return strings.TrimSuffix(k, "y") + "ies"
	}
	return k + "s"
}

// The shard identity's RBAC grants exactly the kinds a store's folder holds (every
// golden output of render: both engines, every plan, retained, purging, OCI charts),
// each with what kustomize-controller needs to apply and prune it, plus bind on the
// ClusterRole the store's RoleBinding names, and nothing else: no Secrets, no
// workloads, no cluster-scoped kind but Namespaces, no escalate or impersonate.
func TestShardIdentityGrantsStoreKinds(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join(repoRoot, "internal", "render", "testdata", "*.golden"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("render goldens: %v %v", goldens, err)
	}
	need := map[string]bool{} // group/resource
	boundRoles := map[string]bool{}
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		// A golden is the files one after the other, each under a "# <path>" line.
		b = bytes.ReplaceAll(b, []byte("\n# stores/"), []byte("\n---\n# stores/"))
		objs, err := DecodeObjects(b)
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			if gvk.Group == "kustomize.config.k8s.io" {
				continue // read by kustomize-controller, not applied
			}
			need[gvk.Group+"/"+plural(gvk.Kind)] = true
			if gvk.Kind == "RoleBinding" {
				name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
				boundRoles[name] = true
			}
		}
	}
	// Folders written before the shared chart sources hold the store's own
	// OCIRepository (OCI chart source): until each is rendered again, which drops it,
	// its shard must still apply it and then prune it. render's old output is kept in
	// testdata/pre-tenant.
	need["source.toolkit.fluxcd.io/ocirepositories"] = true
	if len(need) < 8 {
		t.Fatalf("only %d kinds in render's goldens: %v", len(need), need)
	}

	b, err := os.ReadFile(filepath.Join(repoRoot, "clusters", "local", "shard-identity.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	var role, binding, sa *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			role = o
		case "ClusterRoleBinding":
			binding = o
		case "ServiceAccount":
			sa = o
		}
	}
	if role == nil || binding == nil || sa == nil {
		t.Fatal("shard-identity.yaml lacks the ServiceAccount, ClusterRole or ClusterRoleBinding")
	}
	if sa.GetName() != render.ShardServiceAccount || sa.GetNamespace() != render.DefaultShardLayout().Namespace {
		t.Errorf("ServiceAccount %s/%s, want %s/%s (render.ShardServiceAccount in the shards' namespace)",
			sa.GetNamespace(), sa.GetName(), render.DefaultShardLayout().Namespace, render.ShardServiceAccount)
	}
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	if len(subjects) != 1 || subjects[0].(map[string]any)["name"] != render.ShardServiceAccount {
		t.Errorf("ClusterRoleBinding subjects %v, want only %s", subjects, render.ShardServiceAccount)
	}

	applyVerbs := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	granted := map[string][]string{}
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		m := r.(map[string]any)
		var groups, resources, verbs, names []string
		for k, dst := range map[string]*[]string{"apiGroups": &groups, "resources": &resources, "verbs": &verbs, "resourceNames": &names} {
			for _, v := range asSlice(m[k]) {
				*dst = append(*dst, v.(string))
			}
		}
		sort.Strings(verbs)
		for _, g := range groups {
			for _, res := range resources {
				key := g + "/" + res
				if g == "*" || res == "*" || slices.Contains(verbs, "*") {
					t.Errorf("rule %v: a wildcard", m)
				}
				if key == "rbac.authorization.k8s.io/clusterroles" {
					if !slices.Equal(verbs, []string{"bind"}) || len(names) == 0 {
						t.Errorf("clusterroles: %v on %v, want only bind, by name", verbs, names)
					}
					for _, n := range names {
						if !boundRoles[n] {
							t.Errorf("bind on ClusterRole %s, which no store's RoleBinding names (%v)", n, boundRoles)
						}
					}
					for n := range boundRoles {
						if !slices.Contains(names, n) {
							t.Errorf("stores bind ClusterRole %s, the shard identity may not", n)
						}
					}
					continue
				}
				if len(names) > 0 {
					t.Errorf("rule %v: resourceNames on a store kind (stores have many names)", m)
				}
				granted[key] = append(granted[key], verbs...)
			}
		}
	}
	for key := range need {
		if got := granted[key]; !containsAll(got, applyVerbs) {
			t.Errorf("a store folder holds %s, the shard identity is granted %v, want %v", key, got, applyVerbs)
		}
	}
	for key, verbs := range granted {
		if !need[key] {
			t.Errorf("the shard identity is granted %v on %s, which no store folder holds", verbs, key)
		}
		for _, v := range verbs {
			if !slices.Contains(applyVerbs, v) {
				t.Errorf("%s: verb %s beyond apply and prune", key, v)
			}
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
