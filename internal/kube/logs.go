package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/storefleet/storefleet/internal/store"
)

// ComponentLabel is the chart label that names a Pod's component (wordpress,
// mysql, medusa, …; store.Components).
const ComponentLabel = "app.kubernetes.io/component"

// maxLogLine is the longest piece of a log line sent as one line: a longer line
// is cut into pieces of this size, each with its prefix, so that one container
// writing without newlines cannot make the reader hold more.
const maxLogLine = 64 << 10

// PodLogs reads stores' Pod logs through the API server (store.Logs): the kubelet
// serves them, the API server proxies, so gitops-api needs only get on pods/log.
type PodLogs struct {
	cs  kubernetes.Interface
	log *slog.Logger
}

var _ store.Logs = (*PodLogs)(nil)

// NewPodLogs returns a store.Logs over rc. Log streams are long requests: rc's
// timeout, if any, is not applied to them (the caller's context bounds them).
func NewPodLogs(rc *rest.Config, log *slog.Logger) (*PodLogs, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc = rest.CopyConfig(rc)
	rc.Timeout = 0
	rc.UserAgent = "storefleet-gitops-api"
	rc.WarningHandler = warningLog{log}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &PodLogs{cs: cs, log: log}, nil
}

// logSource is one container whose log is read.
type logSource struct {
	pod, container string
	// previous reads the last run of a container that waits to restart (a crash
	// loop): the current one has written nothing yet.
	previous bool
}

// StoreLogs reads the logs of every container of the store's running Pods (of one
// component when o.Component is set), each line prefixed "<pod>/<container> ".
func (l *PodLogs) StoreLogs(ctx context.Context, s store.Store, o store.LogOptions) (io.ReadCloser, error) {
	sel := labels.Set{store.StoreLabel: s.Name}
	if o.Component != "" {
		sel[ComponentLabel] = o.Component
	}
	ns := s.Namespace()
	pods, err := l.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, noPods(o.Component)
		}
		l.log.Warn("logs: listing the store's pods failed", "namespace", ns, "err", err)
		return nil, &store.Error{Code: store.EUNAVAILABLE, Message: "the cluster did not list the store's pods; retry later"}
	}
	srcs := sources(pods.Items)
	if len(srcs) == 0 {
		return nil, noPods(o.Component)
	}
	sctx, cancel := context.WithCancel(ctx)
	type opened struct {
		logSource
		rc io.ReadCloser
	}
	var streams []opened
	for _, src := range srcs {
		po := &corev1.PodLogOptions{Container: src.container, Follow: o.Follow && !src.previous, Previous: src.previous}
		if o.TailLines > 0 {
			po.TailLines = &o.TailLines
		}
		if o.Since > 0 {
			secs := int64((o.Since + time.Second - 1) / time.Second) // the API takes whole seconds: round up
			po.SinceSeconds = &secs
		}
		rc, err := l.cs.CoreV1().Pods(ns).GetLogs(src.pod, po).Stream(sctx)
		if err != nil {
			// A container that ended or was replaced between the list and now has
			// nothing to stream; the others still do.
			l.log.Debug("logs: a container's log could not be opened", "namespace", ns, "pod", src.pod, "container", src.container, "err", err)
			continue
		}
		streams = append(streams, opened{src, rc})
	}
	if len(streams) == 0 {
		cancel()
		return nil, noPods(o.Component)
	}
	pr, pw := io.Pipe()
	m := &merged{pr: pr, cancel: cancel}
	var mu sync.Mutex // one line at a time into the pipe
	for _, st := range streams {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer st.rc.Close()
			copyLines(pw, &mu, st.pod+"/"+st.container+" ", st.rc)
		}()
	}
	go func() {
		m.wg.Wait()
		cancel()
		_ = pw.Close()
	}()
	return m, nil
}

func noPods(component string) error {
	if component != "" {
		return fmt.Errorf("component %s: %w", component, store.ErrNoRunningPods)
	}
	return store.ErrNoRunningPods
}

// sources are the containers to read, in a fixed order (Pod, then the Pod's
// container order): every container of a running Pod that runs or has run.
func sources(pods []corev1.Pod) []logSource {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var out []logSource
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		st := map[string]corev1.ContainerStatus{}
		for _, cs := range p.Status.ContainerStatuses {
			st[cs.Name] = cs
		}
		for _, c := range p.Spec.Containers {
			cs, ok := st[c.Name]
			switch {
			case !ok:
			case cs.State.Running != nil || cs.State.Terminated != nil:
				out = append(out, logSource{pod: p.Name, container: c.Name})
			case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
				out = append(out, logSource{pod: p.Name, container: c.Name, previous: true})
			}
		}
	}
	return out
}

// copyLines writes every line of r to w with prefix, under mu. It returns when r
// ends or w is closed (the reader went away).
func copyLines(w io.Writer, mu *sync.Mutex, prefix string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	buf := make([]byte, 0, len(prefix)+maxLogLine+1)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			buf = append(append(buf[:0], prefix...), line...)
			if buf[len(buf)-1] != '\n' {
				buf = append(buf, '\n')
			}
			mu.Lock()
			_, werr := w.Write(buf)
			mu.Unlock()
			if werr != nil {
				return
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		default:
			return
		}
	}
}

// merged is the stream StoreLogs returns: Close ends every container's read and
// returns once their goroutines have.
type merged struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func (m *merged) Read(p []byte) (int, error) { return m.pr.Read(p) }

func (m *merged) Close() error {
	m.once.Do(func() {
		m.cancel()
		_ = m.pr.Close()
		m.wg.Wait()
	})
	return nil
}
