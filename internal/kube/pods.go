package kube

import (
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// Pods are watched in every namespace by the store label the charts put on them.
var Pods = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// PodSink takes the worst container in trouble of each store's Pods. The Watcher
// watches Pods only when its Sink is one (*status.Tracker is).
type PodSink interface {
	SetPods(name string, c *status.Container)
}

// maxLastLine bounds the termination line a store's status shows: the kubelet
// keeps up to 4 KiB of it per container, a status message needs one line.
const maxLastLine = 256

// troubleField holds, in a trimmed Pod, its containers in trouble.
const troubleField = "storefleetTrouble"

// watchPods adds the Pods informer. The transform turns each Pod into its name and
// its containers in trouble (usually none), so the cache holds a few bytes per Pod
// and the Tracker one container per store.
func (w *Watcher) watchPods(ps PodSink) {
	tweak := func(o *metav1.ListOptions) { o.LabelSelector = store.StoreLabel }
	inf := dynamicinformer.NewFilteredDynamicInformer(w.dyn, Pods, "", 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, tweak).Informer()
	_ = inf.SetTransform(trimPod)
	_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		w.log.Debug("watch failed; the reflector retries", "resource", Pods.Resource, "err", err)
	})
	// The informer's index is updated before handlers run: each event recomputes
	// its namespace from what the cache holds now, deletions included.
	sync := func(o any) {
		u, ok := asUnstructured(o)
		if !ok {
			return
		}
		name, ok := w.storeOf(u.GetNamespace())
		if !ok {
			return
		}
		objs, err := inf.GetIndexer().ByIndex(cache.NamespaceIndex, u.GetNamespace())
		if err != nil {
			return
		}
		var cs []status.Container
		for _, o := range objs {
			if p, ok := o.(*unstructured.Unstructured); ok {
				cs = append(cs, troubleOf(p)...)
			}
		}
		if c, ok := status.Worst(cs); ok {
			ps.SetPods(name, &c)
			return
		}
		ps.SetPods(name, nil)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: sync, UpdateFunc: func(_, o any) { sync(o) }, DeleteFunc: sync,
	})
	w.informers = append(w.informers, inf)
}

// trimPod keeps a Pod's name and namespace and, under troubleField, its containers
// in trouble (status.Container.Trouble).
func trimPod(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	out := &unstructured.Unstructured{Object: meta(u)}
	var pod corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pod); err != nil {
		return out, nil // a Pod this client cannot read tells nothing
	}
	// A finished Pod (a Job's failed attempt, an evicted Pod) or one being deleted
	// (a rollout's old Pod) is not what the store runs now.
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil {
		return out, nil
	}
	var trouble []any
	for _, c := range PodContainers(&pod) {
		if c.Trouble() {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
			if err == nil {
				trouble = append(trouble, m)
			}
		}
	}
	if len(trouble) > 0 {
		out.Object[troubleField] = trouble
	}
	return out, nil
}

func troubleOf(u *unstructured.Unstructured) []status.Container {
	items, _, _ := unstructured.NestedSlice(u.Object, troubleField)
	out := make([]status.Container, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		var c status.Container
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c) == nil {
			out = append(out, c)
		}
	}
	return out
}

// PodContainers is every container of p, init containers first, as status sees
// them: the waiting reason, and the exit of the current or, while it waits to
// restart, the last run.
func PodContainers(p *corev1.Pod) []status.Container {
	out := make([]status.Container, 0, len(p.Status.InitContainerStatuses)+len(p.Status.ContainerStatuses))
	add := func(cs corev1.ContainerStatus, init bool) {
		c := status.Container{Pod: p.Name, Name: cs.Name, Init: init, Restarts: cs.RestartCount}
		if w := cs.State.Waiting; w != nil {
			c.Waiting, c.WaitingMessage = w.Reason, w.Message
		}
		t := cs.State.Terminated
		if t == nil && cs.State.Running == nil {
			t = cs.LastTerminationState.Terminated
		}
		if t != nil {
			c.Terminated, c.ExitCode, c.Reason, c.LastLine = true, t.ExitCode, t.Reason, lastLine(t.Message)
		}
		out = append(out, c)
	}
	for _, cs := range p.Status.InitContainerStatuses {
		add(cs, true)
	}
	for _, cs := range p.Status.ContainerStatuses {
		add(cs, false)
	}
	return out
}

// lastLine is the last non-blank line of a termination message, cut to
// maxLastLine bytes on a character boundary.
func lastLine(msg string) string {
	msg = strings.TrimRight(msg, " \t\r\n")
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	msg = strings.TrimSpace(msg)
	if len(msg) <= maxLastLine {
		return strings.ToValidUTF8(msg, "?")
	}
	cut := maxLastLine
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return strings.ToValidUTF8(msg[:cut], "?") + "…"
}
