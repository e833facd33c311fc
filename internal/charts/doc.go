// Package charts owns the charts' contract with the product: that every chart in
// charts/ lints strictly with the pinned Helm v4 (the line helm-controller embeds),
// templates for each plan with exactly the values render writes (docs/design.md), refuses
// unknown values keys, names its objects so the derived-name limits of docs/design.md
// hold for the longest store name, keeps store data (standalone PVCs and the generated
// credentials Secret carry helm.sh/resource-policy: keep), uses no Helm hooks, meets the
// Pod Security level its Chart.yaml declares for the store namespace, and that the
// platform chart's RBAC stays least-privilege.
//
// The non-test code is what other packages' tests need to drive Helm the same way: find
// the pinned binary (hack/tools/install.sh), lint, template into objects, read a chart's
// declared Pod Security level.
package charts
