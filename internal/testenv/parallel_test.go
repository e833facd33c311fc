package testenv

import (
	"context"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestTwoEnvironmentsInParallel starts two more environments at once (besides the
// package's own): they get different ports, do not see each other's objects, each
// applies its own fleet commit, and Stop leaves no process of either behind.
func TestTwoEnvironmentsInParallel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	envs := make([]*Env, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs[i], errs[i] = Start(ctx, Options{Dir: t.TempDir(), ChartsDir: env.opts.ChartsDir})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, e := range envs {
				if e != nil {
					e.Stop()
				}
			}
			t.Fatalf("environment %d: %v", i, err)
		}
	}
	a, b := envs[0], envs[1]
	pids := map[string]int{}
	for _, e := range envs {
		for n, p := range e.PIDs() {
			pids[e.Dir+"/"+n] = p
		}
	}
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			for _, e := range envs {
				if err := e.Stop(); err != nil {
					t.Errorf("stop %s: %v", e.Dir, err)
				}
			}
		}
	}
	defer stopAll()

	seen := map[string]bool{}
	for _, e := range []*Env{env, a, b} {
		st := e.State()
		for _, u := range []string{st.APIServer, st.FleetURL, st.ChartRepoURL, st.SourceStorageURL} {
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			if seen[pu.Host] {
				t.Fatalf("address %s used by two environments", pu.Host)
			}
			seen[pu.Host] = true
		}
	}

	ns := &corev1.Namespace{}
	ns.Name = "only-in-a"
	if err := a.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Get(ctx, client.ObjectKey{Name: ns.Name}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Fatalf("environment b sees a's namespace (err=%v)", err)
	}
	for _, e := range envs {
		w := cloneFleet(t, e)
		w.write("infrastructure/local/README.md", "changed in "+e.Dir+"\n")
		if _, err := e.Reconcile(ctx, w.push("touch")); err != nil {
			t.Fatalf("%s: %v", e.Dir, err)
		}
	}

	stopAll()
	for _, e := range envs {
		if left := e.Leftovers(); len(left) > 0 {
			t.Errorf("processes left after Stop of %s: %v", e.Dir, left)
		}
	}
	for n, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("%s (pid %d) still exists after Stop (kill 0: %v)", n, pid, err)
		}
	}
}
