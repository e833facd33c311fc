package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/storefleet/storefleet/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ApplyShardIdentity gives a second Flux namespace (a test's gitops-api started with
// --flux-namespace ns) the identity its shard Kustomizations impersonate: the
// cluster's shard-identity.yaml with ServiceAccount render.ShardServiceAccount in ns,
// and its cluster-scoped RBAC and admission policy under names of their own
// (storefleet-shard-<ns>), so both namespaces' shards are as confined. Without it a
// shard there is refused everything: its ServiceAccount has no rights.
func (e *Env) ApplyShardIdentity(ctx context.Context, ns string) error {
	b, err := os.ReadFile(filepath.Join(e.opts.ClusterDir, "shard-identity.yaml"))
	if err != nil {
		return fmt.Errorf("shard identity: %w", err)
	}
	objs, err := DecodeYAML(b)
	if err != nil {
		return fmt.Errorf("shard identity: %w", err)
	}
	suffix := "-" + ns
	user := func(n string) string { return "system:serviceaccount:" + n + ":" + render.ShardServiceAccount }
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount":
			o.SetNamespace(ns)
		case "ClusterRole":
			o.SetName(o.GetName() + suffix)
		case "ClusterRoleBinding":
			o.SetName(o.GetName() + suffix)
			ref, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			_ = unstructured.SetNestedField(o.Object, ref+suffix, "roleRef", "name")
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = ns
			}
			_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		case "ValidatingAdmissionPolicy":
			o.SetName(o.GetName() + suffix)
			conds, _, _ := unstructured.NestedSlice(o.Object, "spec", "matchConditions")
			for _, c := range conds {
				m := c.(map[string]any)
				expr, _ := m["expression"].(string)
				if !strings.Contains(expr, user(fluxNamespace)) {
					return fmt.Errorf("shard identity: matchCondition %q does not name %s", expr, user(fluxNamespace))
				}
				m["expression"] = strings.ReplaceAll(expr, user(fluxNamespace), user(ns))
			}
			_ = unstructured.SetNestedSlice(o.Object, conds, "spec", "matchConditions")
		case "ValidatingAdmissionPolicyBinding":
			o.SetName(o.GetName() + suffix)
			p, _, _ := unstructured.NestedString(o.Object, "spec", "policyName")
			_ = unstructured.SetNestedField(o.Object, p+suffix, "spec", "policyName")
		default:
			return fmt.Errorf("shard identity: unexpected %s %s", o.GetKind(), o.GetName())
		}
	}
	return e.applyAs(ctx, objs, "storefleet-testenv")
}
