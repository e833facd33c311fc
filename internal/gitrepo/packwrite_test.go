package gitrepo

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The stored zlib stream is what zlib reads back, for sizes around the 64 KiB block,
// and exactly as long as the size encodePackIndexed reserves for it.
func TestStoredZlib(t *testing.T) {
	for _, n := range []int{0, 1, 0xfff8, 0xffff, 0x10000, 3*0xffff + 5} {
		content := bytes.Repeat([]byte{'x', 'y', 'z'}, n/3+1)[:n]
		var buf bytes.Buffer
		writeStoredZlib(&buf, content)
		if got, want := buf.Len(), storedZlibSize(n); got != want {
			t.Errorf("n=%d: stream of %d bytes, size reserved %d", n, got, want)
		}
		zr, err := zlib.NewReader(&buf)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("n=%d: read back: %v", n, err)
		}
		if !bytes.Equal(got, content) {
			t.Fatalf("n=%d: read back %d bytes, not what was written", n, len(got))
		}
	}
}

// gitCompare orders entries as comparing their names with a tree's name followed by
// "/" does (git's order), for names that are prefixes of one another too.
func TestGitCompare(t *testing.T) {
	// No name holds a slash: a tree entry never does.
	names := []string{"", "a", "a.b", "a-", "a0", "ab", "b", "0", "a.", "a_", "~", "a~"}
	modes := []filemode.FileMode{filemode.Regular, filemode.Dir}
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	for _, an := range names {
		for _, bn := range names {
			for _, am := range modes {
				for _, bm := range modes {
					a, b := object.TreeEntry{Name: an, Mode: am}, object.TreeEntry{Name: bn, Mode: bm}
					if got, want := gitCompare(a, b), strings.Compare(key(a), key(b)); got != want {
						t.Errorf("gitCompare(%q %v, %q %v) = %d, want %d", an, am, bn, bm, got, want)
					}
				}
			}
		}
	}
}

// A big tree the writer kept is handed out as a copy to change (the next commit's
// changes must not reach the kept one), only big trees are kept, and only the last few.
func TestBigTrees(t *testing.T) {
	var c bigTrees
	entries := map[string]object.TreeEntry{}
	for i := range bigTreeEntries {
		entries[fmt.Sprintf("%03x", i)] = object.TreeEntry{Name: fmt.Sprintf("%03x", i), Mode: filemode.Dir}
	}
	entries["kustomization.yaml"] = object.TreeEntry{Name: "kustomization.yaml", Mode: filemode.Regular}
	h := plumbing.NewHash("1111111111111111111111111111111111111111")
	c.put(h, entries)
	n := c.get(h)
	if n == nil || len(n.entries) != len(entries) || len(n.orig) != bigTreeEntries {
		t.Fatalf("kept tree: %v", n)
	}
	delete(n.entries, "000")
	if again := c.get(h); len(again.entries) != len(entries) {
		t.Errorf("a change to the handed-out node reached the kept tree")
	}
	small := plumbing.NewHash("2222222222222222222222222222222222222222")
	c.put(small, map[string]object.TreeEntry{"a": {Name: "a"}})
	if c.get(small) != nil {
		t.Error("a small tree was kept")
	}
	for i := range bigTreesKept {
		c.put(plumbing.NewHash(fmt.Sprintf("%040x", i+10)), entries)
	}
	if c.get(h) != nil {
		t.Errorf("the oldest of %d later trees is still kept", bigTreesKept)
	}
	if (*bigTrees)(nil).get(h) != nil {
		t.Error("a nil cache answered")
	}
}
