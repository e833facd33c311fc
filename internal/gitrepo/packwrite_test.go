package gitrepo

import (
	"bytes"
	"compress/zlib"
	"io"
	"testing"
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
