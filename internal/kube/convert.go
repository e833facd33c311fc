package kube

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// The transforms keep only the fields status reads, so that 10,000 HelmReleases
// (whose values alone can be kilobytes each) cost little memory. They run before
// an object enters an informer's cache.

func pick(dst, src map[string]any, path ...string) {
	v, ok, _ := unstructured.NestedFieldNoCopy(src, path...)
	if ok && v != nil {
		_ = unstructured.SetNestedField(dst, v, path...)
	}
}

func meta(u *unstructured.Unstructured) map[string]any {
	out := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}
	for _, f := range []string{"name", "namespace", "resourceVersion", "uid", "generation", "deletionTimestamp"} {
		pick(out, u.Object, "metadata", f)
	}
	return out
}

func trimMeta(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	return &unstructured.Unstructured{Object: meta(u)}, nil
}

func trimConditions(dst, src map[string]any) {
	conds, ok, _ := unstructured.NestedSlice(src, "status", "conditions")
	if !ok {
		return
	}
	out := make([]any, 0, len(conds))
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		t := map[string]any{"type": m["type"], "status": m["status"], "reason": m["reason"], "message": m["message"]}
		// Which generation the condition judged: a shard's failure is known to be about its
		// current spec by it alone (ToShardApply).
		if g, ok := m["observedGeneration"]; ok {
			t["observedGeneration"] = g
		}
		// When Ready last changed, for the watcher's lag (Watcher.lag); the
		// other conditions' times are not needed.
		if m["type"] == "Ready" {
			if lt, ok := m["lastTransitionTime"]; ok {
				t["lastTransitionTime"] = lt
			}
		}
		out = append(out, t)
	}
	_ = unstructured.SetNestedSlice(dst, out, "status", "conditions")
}

// trimShard keeps, of a shard's ExternalArtifact or Kustomization, its shard label
// and the status fields SetShardSource and SetShardApply report.
func trimShard(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	out := meta(u)
	pick(out, u.Object, "metadata", "labels", store.ShardLabel)
	pick(out, u.Object, "status", "artifact", "revision")
	pick(out, u.Object, "status", "lastAppliedRevision")
	pick(out, u.Object, "status", "observedGeneration")
	trimConditions(out, u.Object)
	return &unstructured.Unstructured{Object: out}, nil
}

func trimRelease(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	out := meta(u)
	pick(out, u.Object, "spec", "chart", "spec", "version")
	pick(out, u.Object, "metadata", "annotations", store.AnnotationVersion)
	pick(out, u.Object, "spec", "install", "remediation", "retries")
	pick(out, u.Object, "spec", "upgrade", "remediation", "retries")
	for _, f := range []string{"observedGeneration", "installFailures", "upgradeFailures", "failures",
		"lastAttemptedReleaseAction", "lastAttemptedGeneration"} {
		pick(out, u.Object, "status", f)
	}
	trimConditions(out, u.Object)
	if hist, ok, _ := unstructured.NestedSlice(u.Object, "status", "history"); ok {
		short := make([]any, 0, len(hist))
		for _, h := range hist {
			if m, ok := h.(map[string]any); ok {
				short = append(short, map[string]any{"status": m["status"], "chartVersion": m["chartVersion"]})
			}
		}
		_ = unstructured.SetNestedSlice(out, short, "status", "history")
	}
	return &unstructured.Unstructured{Object: out}, nil
}

func (w *Watcher) trimEvent(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	out := meta(u)
	if _, store := w.storeOf(u.GetNamespace()); !store {
		// Events elsewhere are kept as bare keys: the informer must still track them.
		return &unstructured.Unstructured{Object: out}, nil
	}
	for _, p := range [][]string{{"involvedObject", "kind"}, {"involvedObject", "name"}, {"type"}, {"reason"},
		{"message"}, {"count"}, {"lastTimestamp"}, {"eventTime"}, {"firstTimestamp"}} {
		pick(out, u.Object, p...)
	}
	return &unstructured.Unstructured{Object: out}, nil
}

func condition(u *unstructured.Unstructured, typ string) *status.Condition {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != typ {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return &status.Condition{Status: s, Reason: r, Message: msg}
	}
	return nil
}

func readyCondition(u *unstructured.Unstructured) *status.Condition { return condition(u, "Ready") }

// conditionGeneration is the observedGeneration of condition typ (-1 when absent).
func conditionGeneration(u *unstructured.Unstructured, typ string) int64 {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			if g, ok := m["observedGeneration"].(int64); ok {
				return g
			}
		}
	}
	return -1
}

// ToShardSource reads a (trimmed) shard ExternalArtifact: its artifact's revision
// and its Ready condition.
func ToShardSource(u *unstructured.Unstructured) (revision string, ready *status.Condition) {
	revision, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
	return revision, readyCondition(u)
}

// ToShardApply reads a (trimmed) shard Kustomization: the revision it last applied
// and its Ready condition. A Ready condition written for an older generation says
// nothing about the current spec, so until kustomize-controller has observed the
// current generation Ready is Unknown/Progressing. But kustomize-controller moves
// status.observedGeneration only on success: a shard whose apply has always failed
// (the API server refused an object, a bad manifest) would stay Progressing for ever
// and its stores would never show why. Its Ready=False condition carries the
// generation it judged, and when that is the current one, it is the answer.
func ToShardApply(u *unstructured.Unstructured) (lastApplied string, ready *status.Condition) {
	lastApplied, _, _ = unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if gen := u.GetGeneration(); observed != gen {
		if c := readyCondition(u); c != nil && c.Status == "False" && conditionGeneration(u, "Ready") == gen {
			return lastApplied, c
		}
		return lastApplied, &status.Condition{Status: "Unknown", Reason: "Progressing",
			Message: fmt.Sprintf("kustomize-controller has not observed generation %d yet (observed %d)", gen, observed)}
	}
	return lastApplied, readyCondition(u)
}

// ToRelease reads a (trimmed) HelmRelease.
func ToRelease(u *unstructured.Unstructured) *status.Release {
	r := &status.Release{Generation: u.GetGeneration(), Deleting: u.GetDeletionTimestamp() != nil}
	r.ObservedGeneration, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	// A release referencing its engine × version's shared chart source names the
	// version in an annotation; one written before carries it in spec.chart.
	r.ChartVersion = u.GetAnnotations()[store.AnnotationVersion]
	if r.ChartVersion == "" {
		r.ChartVersion, _, _ = unstructured.NestedString(u.Object, "spec", "chart", "spec", "version")
	}
	r.InstallRetries, _, _ = unstructured.NestedInt64(u.Object, "spec", "install", "remediation", "retries")
	r.UpgradeRetries, _, _ = unstructured.NestedInt64(u.Object, "spec", "upgrade", "remediation", "retries")
	r.InstallFailures, _, _ = unstructured.NestedInt64(u.Object, "status", "installFailures")
	r.UpgradeFailures, _, _ = unstructured.NestedInt64(u.Object, "status", "upgradeFailures")
	r.LastAction, _, _ = unstructured.NestedString(u.Object, "status", "lastAttemptedReleaseAction")
	r.LastAttemptedGeneration, _, _ = unstructured.NestedInt64(u.Object, "status", "lastAttemptedGeneration")
	hist, _, _ := unstructured.NestedSlice(u.Object, "status", "history")
	for i, h := range hist {
		m, _ := h.(map[string]any)
		st, _ := m["status"].(string)
		if i == 0 {
			r.LatestChartVersion, _ = m["chartVersion"].(string)
		}
		if st == "deployed" || st == "superseded" {
			r.Installed = true
		}
	}
	r.Ready = condition(u, "Ready")
	r.Stalled = condition(u, "Stalled")
	r.Released = condition(u, "Released")
	r.Drifted = condition(u, "Drifted")
	return r
}

// ToKubeEvent reads a (trimmed) Event.
func ToKubeEvent(storeName string, u *unstructured.Unstructured) status.KubeEvent {
	ev := status.KubeEvent{Store: storeName, Namespace: u.GetNamespace()}
	kind, _, _ := unstructured.NestedString(u.Object, "involvedObject", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "involvedObject", "name")
	ev.Object = kind + "/" + name
	ev.Type, _, _ = unstructured.NestedString(u.Object, "type")
	ev.Reason, _, _ = unstructured.NestedString(u.Object, "reason")
	ev.Message, _, _ = unstructured.NestedString(u.Object, "message")
	if c, ok, _ := unstructured.NestedInt64(u.Object, "count"); ok {
		ev.Count = int32(c)
	}
	for _, f := range []string{"lastTimestamp", "eventTime", "firstTimestamp"} {
		s, _, _ := unstructured.NestedString(u.Object, f)
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
			ev.Time = t
			break
		}
	}
	return ev
}
