package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantBare checks that the git CLI takes dir for a bare repository when pointed at it
// with --git-dir from elsewhere, as an operator inspecting <data-dir>/fleet.git does,
// and that its [core] holds what `git init --bare` writes.
func wantBare(t *testing.T, dir string) {
	t.Helper()
	elsewhere := t.TempDir()
	if got := runGit(t, elsewhere, "--git-dir="+dir, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Errorf("git --git-dir=%s rev-parse --is-bare-repository: %s", dir, got)
	}
	for _, kv := range [][2]string{
		{"core.repositoryformatversion", "0"},
		{"core.filemode", "true"},
		{"core.bare", "true"},
	} {
		got, err := gitCmd(elsewhere, "--git-dir="+dir, "config", "--local", "--get", kv[0])
		if err != nil || got != kv[1]+"\n" {
			t.Errorf("%s = %q (%v), want %s", kv[0], got, err, kv[1])
		}
	}
}

func TestSeedMakesABareRepositoryForGit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fleet.git")
	if _, err := Seed(context.Background(), dir, "", skeleton, Signature{}); err != nil {
		t.Fatal(err)
	}
	wantBare(t, dir)
	fsck(t, dir)
}

// An embedded repository made before Seed wrote git's config has a [core] of only
// bare = true; the next start's Seed completes it, keeps everything else, and leaves a
// complete config alone.
func TestSeedCompletesAnOldEmbeddedConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fleet.git")
	ctx := context.Background()
	tip, err := Seed(ctx, dir, "", skeleton, Signature{})
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config")
	old := "[core]\n\tbare = true\n[gc]\n\tauto = 0\n"
	if err := os.WriteFile(config, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := runGit(t, t.TempDir(), "--git-dir="+dir, "rev-parse", "--is-bare-repository"); got != "false" {
		t.Fatalf("the old config is bare to git already (%s); the test would prove nothing", got)
	}

	// A config.lock is a git process writing the config, or one that died doing so:
	// like git, Seed does not write over it, and says why it stopped.
	if err := os.WriteFile(config+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Seed(ctx, dir, "", skeleton, Signature{}); err == nil || !strings.Contains(err.Error(), "config.lock") {
		t.Fatalf("Seed with config.lock held: %v", err)
	}
	if b, err := os.ReadFile(config); err != nil || string(b) != old {
		t.Fatalf("config changed under a held lock: %q %v", b, err)
	}
	if err := os.Remove(config + ".lock"); err != nil {
		t.Fatalf("the lock Seed did not take is gone: %v", err)
	}

	again, err := Seed(ctx, dir, "", skeleton, Signature{})
	if err != nil || again != tip {
		t.Fatalf("Seed on the old repository: %s %v, tip %s", again, err, tip)
	}
	wantBare(t, dir)
	if got := runGit(t, dir, "config", "--local", "--get", "gc.auto"); got != "0" {
		t.Errorf("gc.auto = %q after the repair, want the 0 it had", got)
	}
	if _, err := os.Stat(config + ".lock"); !os.IsNotExist(err) {
		t.Errorf("config.lock left behind: %v", err)
	}
	fsck(t, dir)

	before, err := os.Stat(config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Seed(ctx, dir, "", skeleton, Signature{}); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(config)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("Seed rewrote a config that was complete")
	}
}
