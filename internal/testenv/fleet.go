package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/storefleet/storefleet/internal/githttp"
)

// seedPaths are the folders clusters/local's Kustomizations point at; the first
// commit has them even when the fleet seed does not (a Kustomization whose path
// is missing is not Ready).
var seedPaths = map[string]string{
	"infrastructure/local/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
	"stores/local/README.md":                  "Stores of the cluster \"local\": stores/local/<shard>/<name>/ (see docs/design.md).\n",
	"chart-sources/local/README.md":           "The chart sources the stores of the cluster \"local\" share, one per engine and version (see docs/design.md).\n",
}

// GitEnv is the environment for git commands run against the fleet repository:
// a fixed identity and no prompts, independent of the user's configuration.
func GitEnv() []string {
	return append(os.Environ(),
		"GIT_AUTHOR_NAME=storefleet-testenv", "GIT_AUTHOR_EMAIL=testenv@storefleet.invalid",
		"GIT_COMMITTER_NAME=storefleet-testenv", "GIT_COMMITTER_EMAIL=testenv@storefleet.invalid",
		"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
}

// Git runs git in dir with GitEnv and returns its trimmed output.
func Git(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := gitCommand(ctx, dir, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func gitCommand(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = GitEnv()
	return cmd
}

// startGit serves <Dir>/git/fleet.git with the project's githttp server and pushes
// the first commit (the fleet seed).
func (e *Env) startGit(ctx context.Context) error {
	root := filepath.Join(e.Dir, "git")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	srv, err := githttp.New(root)
	if err != nil {
		return err
	}
	// git's complaints (a refused push, a missing object) next to the controllers' logs.
	gitLog, err := os.OpenFile(filepath.Join(e.LogDir, "git-http-backend.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	e.gitLog, srv.Log = gitLog, gitLog
	path, err := srv.InitBare("fleet.git")
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	e.git = srv
	e.FleetRepoPath = path
	e.FleetURL = srv.URL() + "/fleet.git"

	work := filepath.Join(e.Dir, "fleet-seed")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if _, err := Git(ctx, work, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	if e.opts.FleetSeedDir != "" {
		cmd := exec.CommandContext(ctx, "cp", "-R", e.opts.FleetSeedDir+"/.", work)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("copy fleet seed %s: %v: %s", e.opts.FleetSeedDir, err, out)
		}
	}
	for rel, content := range seedPaths {
		p := filepath.Join(work, rel)
		if _, err := os.Stat(filepath.Dir(p)); err == nil {
			continue // the seed has this folder
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"add", "-A"},
		{"commit", "-q", "-m", "Seed the fleet repository"},
		{"push", "-q", e.FleetURL, "main"},
	} {
		if _, err := Git(ctx, work, args...); err != nil {
			return err
		}
	}
	return nil
}
