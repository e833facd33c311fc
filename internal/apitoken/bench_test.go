package apitoken

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What an API token costs per request: a stat-free lookup most of the time (the file is looked
// at once a second), one SHA-256 and a map lookup, in a file of 1000 tokens.
func BenchmarkAuthenticate(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("tokens:\n")
	var tok string
	for i := range 1000 {
		t, sum, err := Generate()
		if err != nil {
			b.Fatal(err)
		}
		tok = t
		fmt.Fprintf(&sb, "- {name: t%d, tenant: shop-a, role: editor, sha256: %s}\n", i, sum)
	}
	path := filepath.Join(b.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
