package gitrepo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func lockPath(rm remote) string {
	return filepath.Join(rm.bare, "refs", "heads", "main.lock")
}

// submitTimed submits one create and reports how long it took.
func submitTimed(t *testing.T, r *Repo, name string) (Result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	res := r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name))
	return res, time.Since(t0)
}

// A ref lock nobody holds any more wedged every write of the embedded repository: the
// writer took it for a lost race, retried, and answered "the remote branch kept
// moving". Each case is a lock as a process killed with kill -9 leaves it.
func TestStaleRefLockIsTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		age           time.Duration
	}{
		// An older writer created the lock empty and wrote the new value just before
		// the rename; killed in between, a minute before this start.
		{"empty, from before this version", "", time.Minute},
		// This writer marks its lock; killed while holding it, just now.
		{"marked, its writer dead", lockMarker + " pid=4242\n", 0},
		// Git writes the new value before the rename; killed in between.
		{"git's, older than the bound", strings.Repeat("a", 40) + "\n", staleLockAge + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm := newRemote(t, "path")
			lock := lockPath(rm)
			if err := os.WriteFile(lock, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			then := time.Now().Add(-tc.age)
			if err := os.Chtimes(lock, then, then); err != nil {
				t.Fatal(err)
			}
			var logs lockedBuf
			r := open(t, rm, withLog(&logs))
			res, took := submitTimed(t, r, "shop")
			t.Logf("first write after the stale lock: %v (%v)", took, res.Err)
			mustOK(t, res)
			if took > 2*time.Second {
				t.Errorf("the write took %v", took)
			}
			if got := remoteHead(t, rm); got != res.Commit {
				t.Errorf("remote head %s, commit %s", got, res.Commit)
			}
			if _, err := os.Stat(lock); !os.IsNotExist(err) {
				t.Errorf("lock still there: %v", err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), lock) {
				t.Errorf("no warning naming %s:\n%s", lock, logs.String())
			}
		})
	}
}

// A lock that may belong to a live git process (unmarked, young) is not taken: git
// would rename whatever lies at that path into place. Past the bound it is.
func TestYoungForeignRefLockIsRespected(t *testing.T) {
	rm := newRemote(t, "path")
	lock := lockPath(rm)
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuf
	r := open(t, rm, withLog(&logs), func(o *Options) { o.Retries = 1 })
	head := remoteHead(t, rm)
	res, _ := submitTimed(t, r, "shop")
	if res.Err == nil || !strings.Contains(res.Err.Error(), "kept moving") {
		t.Fatalf("write under a young foreign lock: %+v", res)
	}
	if _, err := os.Stat(lock); err != nil || remoteHead(t, rm) != head {
		t.Fatalf("young lock taken over: %v, head %s -> %s", err, head, remoteHead(t, rm))
	}
	if strings.Contains(logs.String(), "stale") {
		t.Errorf("warned about a lock it left alone:\n%s", logs.String())
	}

	old := time.Now().Add(-staleLockAge - time.Second)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	mustOK(t, r.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "req-shop")))
}

// lockChild is the child process of TestKill9MidPush: it opens the fleet at url and
// submits a change that stops once it holds the ref lock, saying so on stdout.
func lockChild(url string) int {
	testHookRefLocked = func(path string) {
		fmt.Printf("locked %s\n", path)
		select {}
	}
	r, err := Open(context.Background(), Options{URL: url})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r.Submit(context.Background(), change("local", "child", ActionCreate, 1, "req-child"))
	return 1
}

// A writer killed with kill -9 while it holds the ref lock: while it lives its lock is
// respected; once it is dead, the next writer takes the lock over at once, and git
// itself can move the branch again.
func TestKill9MidPush(t *testing.T) {
	rm := newRemote(t, "path")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GITREPO_LOCK_CHILD="+rm.url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	lock := lockPath(rm)
	select {
	case l := <-line:
		if l != "locked "+lock {
			t.Fatalf("child said %q", l)
		}
	case <-time.After(time.Minute):
		t.Fatal("the child never took the lock")
	}

	var logs lockedBuf
	r := open(t, rm, withLog(&logs), func(o *Options) { o.Retries = 1 })
	head := remoteHead(t, rm)
	if res, _ := submitTimed(t, r, "early"); res.Err == nil {
		t.Fatalf("wrote past a live writer's lock: %+v", res)
	}
	if _, err := os.Stat(lock); err != nil || remoteHead(t, rm) != head {
		t.Fatalf("live writer's lock taken over: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("the killed writer left no lock (the test proves nothing): %v", err)
	}
	if out, err := gitCmd(rm.bare, "update-ref", "refs/heads/main", head, head); err == nil {
		t.Fatalf("git could take the lock the killed writer left (the test proves nothing): %s", out)
	}

	res, took := submitTimed(t, r, "shop")
	t.Logf("first write after kill -9 mid-push: %v (%v)", took, res.Err)
	mustOK(t, res)
	if took > time.Second {
		t.Errorf("the write took %v", took)
	}
	if !strings.Contains(logs.String(), lock) || !strings.Contains(logs.String(), "died") {
		t.Errorf("no warning naming %s:\n%s", lock, logs.String())
	}
	runGit(t, rm.bare, "update-ref", "refs/heads/main", res.Commit, res.Commit)
}
