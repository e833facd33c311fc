package app

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// TestReshardMovesEveryCluster: the count is the fleet's, so a reshard moves the
// stores of every cluster folder in its one commit; a cluster left at the old layout
// would have each later change of its stores refused by the writer.
func TestReshardMovesEveryCluster(t *testing.T) {
	remote := filepath.Join(t.TempDir(), "fleet.git")
	work := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(".", "init", "--quiet", "--bare", "--initial-branch=main", remote)
	git(".", "clone", "--quiet", remote, work)
	names := map[string][]string{"east": {"alpha", "bravo", "charlie"}, "west": {"delta", "echo", "foxtrot"}}
	for c, ns := range names {
		for _, n := range ns {
			dir := filepath.Join(work, filepath.FromSlash(store.Dir(c, n)))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "namespace.yaml"), []byte("name: "+n+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	git(work, "checkout", "--quiet", "-b", "main")
	git(work, "add", "--all")
	git(work, "commit", "--quiet", "-m", "stores")
	git(work, "push", "--quiet", "origin", "main")

	var stdout, stderr bytes.Buffer
	if err := runReshard(context.Background(), []string{"--repo", remote, "--shards", "16", "--actor", "ops", "--cluster", "east"}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("reshard: %v\n%s", err, stderr.String())
	}
	t.Log(stdout.String())
	git(work, "pull", "--quiet", "origin", "main")
	for c, ns := range names {
		for _, n := range ns {
			if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(store.DirIn(c, n, 16)))); err != nil {
				t.Errorf("cluster %s, store %s not at its 16-shard folder: %v", c, n, err)
			}
			if old := store.Dir(c, n); old != store.DirIn(c, n, 16) {
				if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(old))); err == nil {
					t.Errorf("cluster %s, store %s still at its 4,096-shard folder %s", c, n, old)
				}
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(work, store.ShardsFile)); err != nil || strings.TrimSpace(string(b)) != "16" {
		t.Fatalf("%s: %q, %v", store.ShardsFile, b, err)
	}
	if msg := git(work, "log", "-1", "--format=%B"); !strings.Contains(msg, "Action: reshard") || !strings.Contains(msg, "in 2 clusters") {
		t.Fatalf("commit message %q", msg)
	}
	if !strings.Contains(stdout.String(), "cluster west: remove these emptied shards") {
		t.Fatalf("the other cluster's emptied shards are not named:\n%s", stdout.String())
	}
}
