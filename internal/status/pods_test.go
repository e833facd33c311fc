package status

import (
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

func TestWorstContainer(t *testing.T) {
	running := Container{Pod: "shop-wordpress-1", Name: "wordpress"}
	creating := Container{Pod: "shop-wordpress-1", Name: "wordpress", Waiting: "ContainerCreating"}
	exited0 := Container{Pod: "shop-setup", Name: "setup", Terminated: true}
	exited1 := Container{Pod: "shop-mysql-0", Name: "mysql", Terminated: true, ExitCode: 1, Reason: "Error", Restarts: 0}
	firstCrash := Container{Pod: "shop-mysql-0", Name: "mysql", Waiting: "CrashLoopBackOff", Terminated: true, ExitCode: 1, Restarts: 1}
	firstPull := Container{Pod: "shop-mysql-0", Name: "mysql", Waiting: "ErrImagePull"}
	crash := Container{Pod: "shop-wordpress-1", Name: "wordpress", Waiting: "CrashLoopBackOff", Terminated: true, ExitCode: 1, Restarts: 2}
	crashMore := crash
	crashMore.Pod, crashMore.Restarts = "shop-wordpress-2", 5
	pull := Container{Pod: "shop-mysql-0", Name: "mysql", Waiting: "ImagePullBackOff", Restarts: 9}
	crashOther := crash
	crashOther.Pod = "shop-wordpress-0"
	for _, tc := range []struct {
		name string
		in   []Container
		want *Container
	}{
		{"none", nil, nil},
		{"running and on the way are no trouble", []Container{running, creating, exited0}, nil},
		{"a failed exit is followed by a restart or ends the pod", []Container{running, exited1}, nil},
		{"one restart is not a crash loop yet, a first pull not a back-off", []Container{firstCrash, firstPull}, nil},
		{"a crash loop", []Container{exited1, firstCrash, crash}, &crash},
		{"a crash loop beats an image pull, whatever the restarts", []Container{pull, crash}, &crash},
		{"more restarts among crash loops", []Container{crash, crashMore}, &crashMore},
		{"equal ones: the first pod by name, in any order", []Container{crash, crashOther}, &crashOther},
		{"equal ones, other order", []Container{crashOther, crash}, &crashOther},
	} {
		got, ok := Worst(tc.in)
		switch {
		case tc.want == nil && ok:
			t.Errorf("%s: %+v, want none", tc.name, got)
		case tc.want != nil && (!ok || got != *tc.want):
			t.Errorf("%s: %+v (%v), want %+v", tc.name, got, ok, *tc.want)
		}
	}
}

func TestComputeWithPodTrouble(t *testing.T) {
	active := Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0"}
	applied := Cluster{Connected: true, SourceFetched: true, Applied: true, NamespaceExists: true}
	installing := &Release{Generation: 1, ChartVersion: "0.1.0", InstallRetries: 3, UpgradeRetries: 3,
		Ready: cond("Unknown", "Progressing", "Running 'install' action with timeout of 5m0s")}
	timedOut := *installing
	timedOut.ObservedGeneration, timedOut.InstallFailures = 1, 4
	timedOut.Ready = cond("False", "InstallFailed", "Helm install failed for release store-shop/shop with chart woocommerce@0.1.0: context deadline exceeded")
	ready := &Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", Installed: true, LatestChartVersion: "0.1.0",
		Ready: cond("True", "InstallSucceeded", "Helm install succeeded"), InstallRetries: 3, UpgradeRetries: 3}
	crash := &Container{Pod: "shop-wordpress-5d8f", Name: "wordpress", Waiting: "CrashLoopBackOff",
		WaitingMessage: "back-off 10s restarting failed container", Terminated: true, ExitCode: 1, Reason: "Error",
		Restarts: 2, LastLine: "database connection refused"}
	initFailed := &Container{Pod: "shop-wordpress-5d8f", Name: "woocommerce-setup", Init: true, Waiting: "CrashLoopBackOff",
		Terminated: true, ExitCode: 2, Reason: "Error", Restarts: 3}
	pull := &Container{Pod: "shop-mysql-0", Name: "mysql", Waiting: "ImagePullBackOff", WaitingMessage: "Back-off pulling image \"localhost/x\""}
	calm := &Container{Pod: "shop-mysql-0", Name: "mysql"}
	with := func(hr *Release, p *Container) Cluster { c := applied; c.Release, c.Pods = hr, p; return c }
	const crashMsg = "container wordpress of pod shop-wordpress-5d8f: CrashLoopBackOff, exit code 1 (Error), restarted 2 times; last line: database connection refused"
	for _, tc := range []struct {
		name        string
		d           Desired
		c           Cluster
		phase       store.Phase
		reason, msg string
		done        int
	}{
		{"installing, no trouble", active, with(installing, nil), store.PhaseInstalling, "Progressing", "Running 'install' action with timeout of 5m0s", 3},
		{"installing, a container that is fine", active, with(installing, calm), store.PhaseInstalling, "Progressing", "Running 'install' action with timeout of 5m0s", 3},
		{"installing, crash loop", active, with(installing, crash), store.PhaseFailed, "CrashLoopBackOff", crashMsg, 3},
		{"Helm's timeout names the container", active, with(&timedOut, crash), store.PhaseFailed, "CrashLoopBackOff",
			crashMsg + "; helm: InstallFailed: " + timedOut.Ready.Message, 3},
		{"released without waiting, crash loop", active, with(ready, crash), store.PhaseFailed, "CrashLoopBackOff", crashMsg, 4},
		{"an init container in a crash loop", active, with(installing, initFailed), store.PhaseFailed, "CrashLoopBackOff",
			"init container woocommerce-setup of pod shop-wordpress-5d8f: CrashLoopBackOff, exit code 2 (Error), restarted 3 times", 3},
		{"an image that cannot be pulled", active, with(installing, pull), store.PhaseFailed, "ImagePullBackOff",
			`container mysql of pod shop-mysql-0: ImagePullBackOff; Back-off pulling image "localhost/x"`, 3},
		{"not applied yet: the commit's way first", Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "abc"}, Cluster{Connected: true, SourceFetched: true, Pods: crash}, store.PhaseSourceFetched, "", "waiting for Kustomization stores-abc to apply it", 2},
		{"deleting: pods are going away", Desired{State: store.StateRetained, Commit: "c2"}, with(ready, crash), store.PhaseDeleting, "InstallSucceeded", "waiting for helm-controller to uninstall the release", 3},
		{"cluster unreachable", active, Cluster{Pods: crash, Release: installing}, store.PhaseUnknown, "ClusterUnreachable", "", 0},
	} {
		r := Compute(tc.d, tc.c)
		if r.Phase != tc.phase || r.Reason != tc.reason || (tc.msg != "" && r.Message != tc.msg) || r.Done != tc.done {
			t.Errorf("%s:\n got %s %q %q done=%d\nwant %s %q %q done=%d", tc.name, r.Phase, r.Reason, r.Message, r.Done, tc.phase, tc.reason, tc.msg, tc.done)
		}
	}
}

// The Tracker keeps one container per store and recomputes the store when it
// changes; clearing it gives the store back to Helm's verdict.
func TestTrackerSetPods(t *testing.T) {
	tr := New(Options{})
	tr.SetConnected(true)
	tr.Published("abc", "main@sha1:c1")
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "abc", Revision: "main@sha1:c1"})
	tr.SetShardSource("abc", "main@sha1:c1", cond("True", "Succeeded", ""))
	tr.SetShardApply("abc", "main@sha1:c1", cond("True", "ReconciliationSucceeded", ""))
	tr.SetRelease("shop", &Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", Installed: true, LatestChartVersion: "0.1.0",
		Ready: cond("True", "InstallSucceeded", "Helm install succeeded"), InstallRetries: 3, UpgradeRetries: 3})
	if s, _ := tr.Get("shop"); s.Phase != store.PhaseReady {
		t.Fatalf("before: %s %s", s.Phase, s.Message)
	}
	tr.SetPods("shop", &Container{Pod: "p", Name: "wordpress", Waiting: "CrashLoopBackOff", Terminated: true, ExitCode: 1, Restarts: 2, LastLine: "boom"})
	s, _ := tr.Get("shop")
	if s.Phase != store.PhaseFailed || s.Reason != "CrashLoopBackOff" || s.Message != "container wordpress of pod p: CrashLoopBackOff, exit code 1, restarted 2 times; last line: boom" {
		t.Fatalf("crash loop: %s %q %q", s.Phase, s.Reason, s.Message)
	}
	if st := s.Steps[len(s.Steps)-1]; st.Name != StepReady || st.State != "failed" {
		t.Errorf("last step %+v, want ready failed", st)
	}
	tr.SetPods("shop", nil)
	if s, _ := tr.Get("shop"); s.Phase != store.PhaseReady {
		t.Fatalf("after: %s %s", s.Phase, s.Message)
	}
	if len(tr.pods) != 0 {
		t.Errorf("pods kept after clearing: %v", tr.pods)
	}
}
