package gitrepo

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// countingObserver keeps what the writer reported.
type countingObserver struct {
	mu       sync.Mutex
	groups   []int
	failures map[string]int
}

func (o *countingObserver) Commit(stores int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.groups = append(o.groups, stores)
}

func (o *countingObserver) PushFailed(cause string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures[cause]++
}

// The writer reports each landed commit with the stores it carried, and a push
// that lost a race to an outside push as a conflict before the retry lands.
func TestObserverCommitsAndConflicts(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			obs := &countingObserver{failures: map[string]int{}}
			r := open(t, rm, func(o *Options) { o.Observer = obs })
			ctx := context.Background()
			res := r.SubmitAll(ctx, []Change{
				change("local", "one", ActionCreate, 1, ""), change("local", "two", ActionCreate, 1, ""),
			})
			for _, x := range res {
				mustOK(t, x)
			}
			// An outside push moves the branch: the writer's next push is refused.
			work := filepath.Join(t.TempDir(), "w")
			runGit(t, filepath.Dir(work), "clone", "-q", rm.url, "w")
			runGit(t, work, "-c", "user.name=o", "-c", "user.email=o@example.com", "commit", "-q", "--allow-empty", "-m", "outside")
			runGit(t, work, "push", "-q", "origin", "HEAD:main")
			mustOK(t, r.Submit(ctx, change("local", "three", ActionCreate, 1, "")))

			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.groups) != 2 || obs.groups[0] != 2 || obs.groups[1] != 1 {
				t.Fatalf("commits reported with groups %v, want [2 1]", obs.groups)
			}
			if obs.failures["conflict"] != 1 || len(obs.failures) != 1 {
				t.Fatalf("push failures %v, want one conflict", obs.failures)
			}
		})
	}
}
