package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/store"
)

// The offline fleet commands (reshard, rerender) rewrite the whole fleet in one
// commit, which the API's writer (one change per store) cannot make. They share this
// clone, commit and push, so that both name their actor the same way and both survive
// another writer pushing while they work.

// committerEmail is the e-mail of the offline commands' commits; the actor is the name.
const committerEmail = "storefleet@localhost"

// fleetTarget is the fleet branch an offline command rewrites, and who rewrites it.
type fleetTarget struct {
	repo, branch, actor string
	// beforePush, when set, runs between the commit and its push: the tests push
	// another writer's commit there to see the retry.
	beforePush func(ctx context.Context) error
}

// fleetEdit rewrites the clone in dir (the work tree at the branch's head). It returns
// the commit message and the paths to commit (given to git add --all, so a path may
// lose files); an empty message means there is nothing to do, and nothing is committed.
type fleetEdit func(ctx context.Context, dir string) (msg string, paths []string, err error)

// errPushRejected: another writer pushed to the branch after the clone.
var errPushRejected = errors.New("the fleet moved on while the command ran")

// fleetAttempts bounds the retries after a rejected push: each starts from a fresh
// clone, so a busy fleet gets a few chances, a push refused for good fails.
const fleetAttempts = 3

// commitFleet clones t's branch, lets edit rewrite it and pushes one commit, by
// t.actor. A push that lost a race with another writer is done again from a fresh
// clone, edit included: what it writes depends on the head it starts from. It returns
// the pushed commit, or "" when edit found nothing to do or its rewrite changed no
// file (so a second run commits nothing).
func commitFleet(ctx context.Context, t fleetTarget, edit fleetEdit) (string, error) {
	var last error
	for range fleetAttempts {
		commit, err := commitFleetOnce(ctx, t, edit)
		if !errors.Is(err, errPushRejected) {
			return commit, err
		}
		last = err
	}
	return "", last
}

func commitFleetOnce(ctx context.Context, t fleetTarget, edit fleetEdit) (string, error) {
	dir, err := os.MkdirTemp("", "gitops-api-fleet-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	if _, err := git("clone", "--quiet", "--single-branch", "--branch", t.branch, t.repo, "."); err != nil {
		return "", err
	}
	msg, paths, err := edit(ctx, dir)
	if err != nil || msg == "" {
		return "", err
	}
	if _, err := git(append([]string{"add", "--all", "--"}, paths...)...); err != nil {
		return "", err
	}
	// git diff --quiet exits 1 when there are staged changes.
	if _, err := git("diff", "--cached", "--quiet"); err == nil {
		return "", nil
	}
	if _, err := git("-c", "user.name="+t.actor, "-c", "user.email="+committerEmail, "commit", "--quiet", "--no-verify", "-m", msg); err != nil {
		return "", err
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	if t.beforePush != nil {
		if err := t.beforePush(ctx); err != nil {
			return "", err
		}
	}
	if _, err := git("push", "--quiet", "origin", "HEAD:refs/heads/"+t.branch); err != nil {
		if strings.Contains(err.Error(), "rejected") || strings.Contains(err.Error(), "fetch first") {
			return "", fmt.Errorf("%w: %w", errPushRejected, err)
		}
		return "", err
	}
	return commit, nil
}

// fleetMessage is an offline command's commit message: the summary, then the trailer
// block the API's commits have (internal/gitrepo): the action, the actor, and extra
// trailers, in order.
func fleetMessage(summary, action, actor string, extra ...gitrepo.Trailer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s: %s\n%s: %s\n", summary, gitrepo.TrailerAction, action, gitrepo.TrailerActor, actor)
	for _, tr := range extra {
		fmt.Fprintf(&b, "%s: %s\n", tr.Key, tr.Value)
	}
	return b.String()
}

// fleetShards reads the fleet's shard count from the clone in dir
// (store.DefaultShards without the file).
func fleetShards(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, store.ShardsFile))
	if errors.Is(err, os.ErrNotExist) {
		return store.DefaultShards, nil
	}
	if err != nil {
		return 0, err
	}
	return store.ParseShards(data)
}

// validActor reports whether actor can be the Actor trailer: one non-empty line, or
// it would forge trailers.
func validActor(actor string) bool {
	return actor != "" && !strings.ContainsAny(actor, "\r\n")
}

// fleetClusters lists the cluster folders of the clone in dir (stores/<cluster>), sorted.
func fleetClusters(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, store.StoresRoot))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
