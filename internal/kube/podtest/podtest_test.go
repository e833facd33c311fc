package podtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

var (
	env *testenv.Env
	// noNode is why this machine cannot run the node; every test skips with it.
	noNode error
)

func TestMain(m *testing.M) {
	if noNode = testenv.NodeHostReady(); noNode != nil {
		os.Exit(m.Run())
	}
	os.Exit(testenv.Main(m, testenv.Options{Node: true}, &env))
}

func needNode(t *testing.T) {
	t.Helper()
	if noNode != nil {
		t.Skip("no worker node on this machine:", noNode)
	}
}

func busybox(t *testing.T) string {
	t.Helper()
	for _, im := range env.Node.Images {
		if im.Name == "busybox" {
			return im.Ref
		}
	}
	t.Fatalf("no busybox image on the node: %+v", env.Node.Images)
	return ""
}

// container runs script in busybox's shell.
func container(t *testing.T, name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: busybox(t), ImagePullPolicy: corev1.PullNever,
		Command: []string{"/bin/sh", "-c", script}}
}

// storePod creates a Pod of store st's component in the store's namespace, with
// the labels the charts give theirs.
func storePod(t *testing.T, st, component, name string, policy corev1.RestartPolicy, cs ...corev1.Container) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: store.NamespacePrefix + st, Labels: map[string]string{
			store.StoreLabel: st, kube.ComponentLabel: component}},
		Spec: corev1.PodSpec{Containers: cs, RestartPolicy: policy, TerminationGracePeriodSeconds: new(int64)},
	}
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func namespace(t *testing.T, st string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: store.NamespacePrefix + st}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls check until it holds; the limit is a deadline for a shared
// machine, not a measurement.
func waitFor(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func logs(t *testing.T) *kube.PodLogs {
	t.Helper()
	l, err := kube.NewPodLogs(env.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// read opens the logs and reads them to the end.
func read(t *testing.T, l *kube.PodLogs, st string, o store.LogOptions) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := l.StoreLogs(ctx, store.Store{Name: st}, o)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

// lines written by the web Pod's two containers and the db Pod.
const (
	scriptA  = `for i in 1 2 3 4 5; do echo "a $i"; done; exec sleep 3600`
	scriptB  = `for i in 1 2 3; do echo "b $i"; done; exec sleep 3600`
	scriptDB = `echo "db old"; sleep 8; echo "db new"; exec sleep 3600`
)

func TestStoreLogs(t *testing.T) {
	needNode(t)
	const st = "logshop"
	namespace(t, st)
	storePod(t, st, "web", "logshop-web", corev1.RestartPolicyAlways, container(t, "a", scriptA), container(t, "b", scriptB))
	storePod(t, st, "db", "logshop-db", corev1.RestartPolicyAlways, container(t, "db", scriptDB))
	l := logs(t)
	var sawNew time.Time
	waitFor(t, "every line written", func() (bool, string) {
		out, err := read(t, l, st, store.LogOptions{})
		if err != nil {
			return false, err.Error()
		}
		if strings.Contains(out, "logshop-db/db db new\n") && strings.Contains(out, "logshop-web/b b 3\n") && strings.Contains(out, "logshop-web/a a 5\n") {
			sawNew = time.Now()
			return true, ""
		}
		return false, out
	})

	t.Run("since", func(t *testing.T) {
		// "db old" was written 8 s before "db new": a window that reaches back to
		// just before "db new" was seen holds it and not "db old".
		since := time.Since(sawNew) + 2*time.Second
		if since >= 7*time.Second {
			t.Fatalf("the machine took %s between reading the line and asking again; the window would reach the older line", since)
		}
		out, err := read(t, l, st, store.LogOptions{Component: "db", Since: since})
		if err != nil {
			t.Fatal(err)
		}
		if out != "logshop-db/db db new\n" {
			t.Errorf("since %s: %q, want only the new line", since, out)
		}
		all, err := read(t, l, st, store.LogOptions{Component: "db", Since: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if all != "logshop-db/db db old\nlogshop-db/db db new\n" {
			t.Errorf("since 1h: %q", all)
		}
	})

	t.Run("several containers and pods", func(t *testing.T) {
		out, err := read(t, l, st, store.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Each container's lines in order, each with its Pod and container; the
		// containers interleave as they are read.
		for _, prefix := range []string{"logshop-web/a ", "logshop-web/b ", "logshop-db/db "} {
			var got []string
			for _, ln := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if strings.HasPrefix(ln, prefix) {
					got = append(got, strings.TrimPrefix(ln, prefix))
				}
			}
			want := map[string]string{"logshop-web/a ": "a 1|a 2|a 3|a 4|a 5", "logshop-web/b ": "b 1|b 2|b 3",
				"logshop-db/db ": "db old|db new"}[prefix]
			if strings.Join(got, "|") != want {
				t.Errorf("%s: %q, want %q (all: %q)", prefix, got, want, out)
			}
		}
		if n := strings.Count(out, "\n"); n != 10 {
			t.Errorf("%d lines, want 10: %q", n, out)
		}
	})

	t.Run("tail of one component", func(t *testing.T) {
		out, err := read(t, l, st, store.LogOptions{Component: "web", TailLines: 2})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := []string{"logshop-web/a a 4", "logshop-web/a a 5", "logshop-web/b b 2", "logshop-web/b b 3"}
		got := append([]string(nil), lines...)
		// The two containers' tails interleave in any order.
		slices.Sort(got)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("tail 2 of web: %q, want %q", lines, want)
		}
	})

	t.Run("no running pods", func(t *testing.T) {
		_, err := read(t, l, st, store.LogOptions{Component: "cache"})
		if !errors.Is(err, store.ErrNoRunningPods) {
			t.Errorf("a component without pods: %v", err)
		}
		_, err = read(t, l, "nosuchshop", store.LogOptions{})
		if !errors.Is(err, store.ErrNoRunningPods) || store.ErrorCode(err) != store.ECONFLICT {
			t.Errorf("a store without a namespace: %v", err)
		}
	})
}

// Follow streams new lines as the container writes them and ends when the Pod
// ends; a reader that leaves ends every read behind the stream.
func TestStoreLogsFollow(t *testing.T) {
	needNode(t)
	const st = "followshop"
	namespace(t, st)
	// The container writes for six seconds and exits; the Pod does not restart.
	storePod(t, st, "web", "followshop-web", corev1.RestartPolicyNever,
		container(t, "tick", `for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 1; done; echo bye`))
	l := logs(t)
	waitFor(t, "the pod running", func() (bool, string) {
		var p corev1.Pod
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: store.NamespacePrefix + st, Name: "followshop-web"}, &p); err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	// The client's connection (and its goroutines) exists before the count.
	if _, err := read(t, l, "nosuchshop", store.LogOptions{}); !errors.Is(err, store.ErrNoRunningPods) {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := l.StoreLogs(ctx, store.Store{Name: st}, store.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	// The stream was opened while the container ran and ended by itself with its
	// last line: it followed the container to its end.
	if !strings.HasSuffix(out, "followshop-web/tick tick 6\nfollowshop-web/tick bye\n") || !strings.HasPrefix(out, "followshop-web/tick tick 1\n") {
		t.Errorf("followed: %q", out)
	}

	// A reader that leaves: a following stream of a container that writes for an
	// hour, closed after its first line.
	storePod(t, st, "web", "followshop-long", corev1.RestartPolicyAlways,
		container(t, "long", `i=0; while true; do i=$((i+1)); echo "long $i"; sleep 1; done`))
	waitFor(t, "the long pod's first line", func() (bool, string) {
		out, err := read(t, l, st, store.LogOptions{TailLines: 1})
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(out, "followshop-long/long long"), out
	})
	rc, err = l.StoreLogs(ctx, store.Store{Name: st}, store.LogOptions{Follow: true, TailLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	if n, err := rc.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "followshop-long/long long ") {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	done := make(chan struct{})
	go func() { rc.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close did not return: a read behind the stream is stuck")
	}
	waitFor(t, "the stream's goroutines gone", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines, %d before the streams", n, before)
	})
}

// A store whose container crash-loops is failed with the container's reason and
// its last line, through the real Pod watch and the Tracker (the Flux side fed by
// hand: the store is installing); its logs are the crashed run's.
func TestCrashLoopFailsTheStore(t *testing.T) {
	needNode(t)
	const st = "crashshop"
	namespace(t, st)
	tr := status.New(status.Options{})
	defer tr.Close()
	w, err := kube.New(kube.Config{Rest: env.Config}, tr)
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	defer w.Stop()
	tr.Published("abc", "main@sha1:c1")
	tr.Committed(st, status.Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "abc", Revision: "main@sha1:c1"})
	tr.SetShardSource("abc", "main@sha1:c1", &status.Condition{Status: "True"})
	tr.SetShardApply("abc", "main@sha1:c1", &status.Condition{Status: "True"})
	tr.SetRelease(st, &status.Release{Generation: 1, ChartVersion: "0.1.0", InstallRetries: 3, UpgradeRetries: 3,
		Ready: &status.Condition{Status: "Unknown", Reason: "Progressing", Message: "Running 'install' action with timeout of 5m0s"}})
	waitFor(t, "connected and installing", func() (bool, string) {
		s, _ := tr.Get(st)
		return s.Phase == store.PhaseInstalling, string(s.Phase) + " " + s.Message
	})

	crash := container(t, "app", `echo "starting"; echo "fatal: cannot reach the database at db:5432"; exit 1`)
	// The charts' way to put a crashed container's last lines in its status.
	crash.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	storePod(t, st, "web", "crashshop-web", corev1.RestartPolicyAlways, crash, container(t, "sidecar", `exec sleep 3600`))
	const want = "container app of pod crashshop-web: CrashLoopBackOff, exit code 1 (Error), restarted "
	waitFor(t, "failed with the container's reason", func() (bool, string) {
		s, _ := tr.Get(st)
		return s.Phase == store.PhaseFailed && s.Reason == "CrashLoopBackOff" && strings.HasPrefix(s.Message, want) &&
				strings.HasSuffix(s.Message, "; last line: fatal: cannot reach the database at db:5432"),
			fmt.Sprintf("%s %s %q", s.Phase, s.Reason, s.Message)
	})

	out, err := read(t, logs(t), st, store.LogOptions{Component: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "crashshop-web/app fatal: cannot reach the database at db:5432\n") {
		t.Errorf("the crashed run's log: %q", out)
	}

	// The Pod gone, the store is back to what Helm says.
	if err := env.Client.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "crashshop-web", Namespace: store.NamespacePrefix + st}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "installing again", func() (bool, string) {
		s, _ := tr.Get(st)
		return s.Phase == store.PhaseInstalling, string(s.Phase) + " " + s.Message
	})
}
