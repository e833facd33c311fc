package gitrepo

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// The stored zlib stream of a head and a content is what zlib reads back as the two
// joined, for sizes around the 64 KiB block, and exactly as long as the pack's size
// estimate says (encodePackIndexed sizes its buffer by it).
func TestStoredZlibParts(t *testing.T) {
	for _, n := range []int{0, 1, 0xfff8, 0xffff - 7, 0xffff, 0x10000, 3*0xffff + 5} {
		head := []byte("blob 12\x00")
		content := bytes.Repeat([]byte{'x', 'y', 'z'}, n/3+1)[:n]
		var buf bytes.Buffer
		writeStoredZlibParts(&buf, head, content)
		if got, want := buf.Len(), storedZlibSize(len(head)+n); got != want {
			t.Errorf("n=%d: stream of %d bytes, size estimate %d", n, got, want)
		}
		zr, err := zlib.NewReader(&buf)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("n=%d: read back: %v", n, err)
		}
		if !bytes.Equal(got, append(head, content...)) {
			t.Fatalf("n=%d: read back %d bytes, not what was written", n, len(got))
		}
	}
}

// writeLoose says whether it added the object: one already loose in the clone is
// left as it was and not claimed, so a commit that does not land never removes it.
func TestWriteLooseAddsOnce(t *testing.T) {
	dir := t.TempDir()
	o := &memObject{typ: plumbing.BlobObject, content: []byte("hello\n")}
	o.hash = plumbing.ComputeHash(o.typ, o.content)
	hex := o.hash.String()
	for _, d := range []string{filepath.Join(dir, "objects", "pack"), filepath.Join(dir, "objects", hex[:2])} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	added, err := writeLoose(dir, o)
	if err != nil || !added {
		t.Fatalf("first write: added %v, %v", added, err)
	}
	path := filepath.Join(dir, "objects", hex[:2], hex[2:])
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	added, err = writeLoose(dir, o)
	if err != nil || added {
		t.Fatalf("second write: added %v, %v; want not added, no error", added, err)
	}
	after, err := os.Stat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the loose object was replaced (%v)", err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "objects", "pack"))
	if len(left) != 0 {
		t.Errorf("left in objects/pack: %v", left)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Error("object gone")
	}
}
