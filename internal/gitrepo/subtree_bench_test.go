package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// shardStores is how many stores one shard holds at 10,000 stores (10,000 / 256 ≈ 39).
const shardStores = 40

// benchStoreFiles is a store folder of six files of about 1 KB each: the stand-in
// render output plus a NetworkPolicy file, each file filled up with further
// store-specific NetworkPolicy documents (real policy files are about that size).
func benchStoreFiles(name string) []File {
	ns := "store-" + name
	files := append(storeFiles(name, 1, true), File{Path: "networkpolicy.yaml"})
	for i := range files {
		var b strings.Builder
		b.Write(files[i].Content)
		for n := 0; b.Len() < 1000; n++ {
			fmt.Fprintf(&b, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow-%s-%d\n  namespace: %s\nspec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/instance: %s\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: ingress-nginx\n    ports:\n    - port: %d\n", files[i].Path[:3], n, ns, name, 8080+n)
		}
		files[i].Content = []byte(b.String())
	}
	return files
}

// BenchmarkArchiveShard: Archive of one shard of 40 stores (6 files of ~1 KB each) from
// the memory and the disk clone, against two baselines measured in the same iterations
// (interleaved, so machine load hits all three alike): "read" walks the same trees and
// reads the same blobs through the same storage without tar or gzip (what the archive
// format and compression add), and "git-archive" is `git archive --format=tar.gz` of
// the same tree on the bare repository (what shelling out to git would cost).
func BenchmarkArchiveShard(b *testing.B) {
	for _, clone := range []string{"memory", "disk"} {
		b.Run(clone, func(b *testing.B) {
			rm := newRemote(b, "path")
			r := open(b, rm, func(o *Options) {
				if clone == "disk" {
					o.Dir = filepath.Join(b.TempDir(), "clone")
				}
			})
			ctx := context.Background()
			names, shard := namesInShard("bench", shardStores)
			changes := make([]Change, len(names))
			raw := 0
			for i, name := range names {
				changes[i] = change("local", name, ActionCreate, 1, "bench-"+name)
				changes[i].Files = benchStoreFiles(name)
				for _, f := range changes[i].Files {
					raw += len(f.Content)
				}
			}
			for _, res := range r.SubmitAll(ctx, changes) {
				mustOK(b, res)
			}
			commit, err := r.Head()
			if err != nil {
				b.Fatal(err)
			}
			dir := "stores/local/" + shard
			if got, err := r.Subtrees(ctx, commit, "stores/local"); err != nil || len(got) != 1 {
				b.Fatalf("want one shard folder, got %v, %v", got, err)
			}
			var buf bytes.Buffer
			if err := r.Archive(ctx, commit, dir, &buf); err != nil {
				b.Fatal(err)
			}
			size := buf.Len()

			var tArchive, tRead, tGit time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := r.Archive(ctx, commit, dir, io.Discard); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if n := readShard(b, r, commit, dir); n != raw {
					b.Fatalf("read %d bytes, want %d", n, raw)
				}
				t2 := time.Now()
				cmd := gitExec(rm.bare, "archive", "--format=tar.gz", commit+":"+dir)
				cmd.Stdout = io.Discard
				if err := cmd.Run(); err != nil {
					b.Fatalf("git archive: %v", err)
				}
				t3 := time.Now()
				tArchive += t1.Sub(t0)
				tRead += t2.Sub(t1)
				tGit += t3.Sub(t2)
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(tArchive.Nanoseconds())/n, "ns/op")
			b.ReportMetric(float64(tRead.Nanoseconds())/n, "read-ns/op")
			b.ReportMetric(float64(tGit.Nanoseconds())/n, "git-archive-ns/op")
			b.ReportMetric(float64(tArchive)/float64(tRead), "x-read")
			b.ReportMetric(float64(tArchive)/float64(tGit), "x-git-archive")
			b.ReportMetric(float64(raw)/shardStores, "raw-B/store")
			b.ReportMetric(float64(size), "archive-B")
		})
	}
}

// readShard is the "read" baseline: the trees and blobs Archive reads, through the
// same storage and lock, copied nowhere. It returns the bytes read.
func readShard(b *testing.B, r *Repo, commit, dir string) int {
	r.mu.RLock()
	c, err := object.GetCommit(r.st, plumbing.NewHash(commit))
	if err != nil {
		b.Fatal(err)
	}
	h, err := resolveDir(r.st, c.TreeHash, dir)
	r.mu.RUnlock()
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	var walk func(h plumbing.Hash)
	walk = func(h plumbing.Hash) {
		r.mu.RLock()
		t, err := object.GetTree(r.st, h)
		r.mu.RUnlock()
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range t.Entries {
			if e.Mode == filemode.Dir {
				walk(e.Hash)
				continue
			}
			r.mu.RLock()
			blob, err := object.GetBlob(r.st, e.Hash)
			r.mu.RUnlock()
			if err != nil {
				b.Fatal(err)
			}
			rd, err := blob.Reader()
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rd)
			rd.Close()
			if err != nil {
				b.Fatal(err)
			}
			total += int(n)
		}
	}
	walk(h)
	return total
}
