package gitrepo

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// TestWalkChangedFoldersTreeOrder: the diff walks two encoded trees in step, so it
// must order entries as git does, a folder as if its name ended in '/': "ab-c/" <
// "ab/" < "abc/" (by name alone "ab" would come first). Trees written by git itself;
// the folders that changed between the commits are listed once each, with their tree
// at the second commit (none when removed), at every level.
func TestWalkChangedFoldersTreeOrder(t *testing.T) {
	bare := filepath.Join(t.TempDir(), "trees.git")
	runGit(t, filepath.Dir(bare), "init", "-q", "--bare", bare)
	blob := func(path, content string) string {
		return "M 100644 inline " + path + "\ndata " + itoa(len(content)) + "\n" + content + "\n"
	}
	first := "commit refs/heads/main\nmark :1\ncommitter T <t@example.com> 1 +0000\ndata 1\na\n" +
		blob("stores/c/s1/ab/f", "1") + blob("stores/c/s1/ab-c/f", "1") + blob("stores/c/s1/abc/f", "1") + blob("stores/c/s1-x/old/f", "1") + blob("stores/c/s1.y/keep/f", "1") +
		blob("stores/c/s2/gone/f", "1") + blob("stores/d/s/x/f", "1")
	second := "commit refs/heads/main\nmark :2\ncommitter T <t@example.com> 2 +0000\ndata 1\nb\nfrom :1\n" +
		blob("stores/c/s1/ab/f", "2") + "D stores/c/s1/ab-c\n" + "D stores/c/s2\n" +
		blob("stores/c/s1-x/new/f", "1") + blob("stores/e/s/y/f", "1")
	runGitStdin(t, bare, first+second+"done\n", "fast-import", "--quiet", "--done")
	st := filesystem.NewStorage(osfs.New(bare), cache.NewObjectLRUDefault())
	stores := func(rev string) plumbing.Hash {
		return plumbing.NewHash(runGit(t, bare, "rev-parse", rev+":stores"))
	}
	var got []string
	raw := func(h plumbing.Hash) ([]byte, error) { return readRawTree(st, h) }
	err := walkChangedFolders(context.Background(), raw, stores("main~1"), stores("main"), func(dir string, tree plumbing.Hash) {
		got = append(got, dir)
		want := ""
		if out, err := gitCmd(bare, "rev-parse", "--verify", "-q", "main:"+dir); err == nil {
			want = strings.TrimSpace(out)
		}
		if (want == "") != tree.IsZero() || want != "" && tree.String() != want {
			t.Errorf("%s: tree %s, want %q", dir, tree, want)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"stores/c/s1-x/new", "stores/c/s1/ab", "stores/c/s1/ab-c", "stores/c/s2/gone", "stores/e/s/y"}
	if !slices.Equal(got, want) {
		t.Fatalf("changed folders %q, want %q", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
