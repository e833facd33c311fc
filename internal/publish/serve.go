package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// An artifact's path names what rebuilds it (the shard folder at a commit) and what
// checks it (the tarball's SHA-256). So any replica behind the artifact Service can
// answer any URL an ExternalArtifact holds, whoever published it and whether or not
// that process still runs: Archive gives the same bytes for the same tree.
func artifactPath(cluster, shard, commit, digest string) string {
	return path.Join(cluster, shard, commit, digest+".tar.gz")
}

type artifactRef struct{ cluster, shard, commit, digest string }

// parseArtifactPath reads <cluster>/<shard>/<commit>/<sha256>.tar.gz. It is strict
// (lowercase hex where hex is due, no other segment), so nothing a client sends
// reaches the file system or Git unchecked.
func parseArtifactPath(rel string) (artifactRef, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 4 {
		return artifactRef{}, false
	}
	digest, ok := strings.CutSuffix(parts[3], ".tar.gz")
	ref := artifactRef{cluster: parts[0], shard: parts[1], commit: parts[2], digest: digest}
	ok = ok && ref.cluster != "" && ref.cluster != "." && ref.cluster != ".." &&
		isHex(ref.shard) && len(ref.shard) <= 8 &&
		isHex(ref.commit) && (len(ref.commit) == 40 || len(ref.commit) == 64) &&
		isHex(ref.digest) && len(ref.digest) == sha256.Size*2
	return ref, ok
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// adoptable says whether a, found in the cluster for shard, is a tarball this
// publisher would serve with the given digest: then a restart or a new leader keeps
// it instead of publishing the same bytes under another commit's URL.
func (p *Publisher) adoptable(shard, digest string, a Artifact) bool {
	ref, ok := parseArtifactPath(a.Path)
	return ok && ref.cluster == p.cfg.FleetCluster && ref.shard == shard && ref.digest == digest &&
		a.Digest == "sha256:"+digest && a.URL == p.cfg.URL+ArtifactsPath+a.Path
}

// sameBytesAt is the commit an artifact found in the cluster was built at, when it
// has the given digest: the shard's tree there is the one at the head, so a URL
// naming that commit serves the same bytes.
func (p *Publisher) sameBytesAt(a *Artifact, digest string) (string, bool) {
	if a == nil || a.Digest != digest {
		return "", false
	}
	return p.revisionCommit(a.Revision)
}

// served is the serving side's state: tarballs already checked, kept in memory up
// to cacheBytes.
type served struct {
	mu    sync.Mutex
	cache map[string][]byte
	order []string // insertion order, for eviction
	size  int
}

// cacheBytes bounds the tarballs kept in memory. A shard tarball is a few KiB to a
// few hundred KiB; kustomize-controller downloads a shard's again at every
// reconcile (shard interval), so a replica serves the same few repeatedly.
const cacheBytes = 64 << 20

var errMismatch = errors.New("rebuilt artifact does not match its digest")

// Handler serves the tarballs under ArtifactsPath, on every replica: from memory,
// from Dir, or rebuilt from the fleet repository (fetched first when it lacks the
// commit), and in every case only after the bytes were checked against the digest
// the URL names. It works whether or not this process publishes (Start): with
// several replicas only the leader does. Tarballs are immutable, so they may be
// cached for ever.
func (p *Publisher) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem(w, http.StatusMethodNotAllowed, "artifacts are read with GET or HEAD")
			return
		}
		rel, _ := strings.CutPrefix(r.URL.Path, ArtifactsPath)
		ref, ok := parseArtifactPath(rel)
		if !ok || ref.cluster != p.cfg.FleetCluster {
			problem(w, http.StatusNotFound, "not an artifact path: "+ArtifactsPath+p.cfg.FleetCluster+"/<shard>/<commit>/<sha256>.tar.gz")
			return
		}
		data, err := p.artifact(r.Context(), rel, ref)
		switch {
		case errors.Is(err, errMismatch):
			problem(w, http.StatusInternalServerError, "the artifact could not be rebuilt byte for byte")
			return
		case err != nil:
			// Flux asks only for URLs a publisher wrote, whose commits the fleet has:
			// failing to build one is the remote or the clone failing, for now.
			// Nothing was served and nothing changed, so Flux may retry.
			w.Header().Set("Retry-After", "5")
			problem(w, http.StatusServiceUnavailable, "the artifact could not be built from the fleet repository; retry")
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("ETag", `"`+ref.digest+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
}

// problem answers an RFC 9457 problem.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}

// artifact returns the tarball rel names, checked against its digest.
func (p *Publisher) artifact(ctx context.Context, rel string, ref artifactRef) ([]byte, error) {
	s := &p.served
	s.mu.Lock()
	data, ok := s.cache[rel]
	s.mu.Unlock()
	if ok {
		return data, nil
	}
	name := filepath.Join(p.cfg.Dir, filepath.FromSlash(rel))
	if data, err := os.ReadFile(name); err == nil {
		if digestOf(data) == ref.digest {
			p.keep(rel, data)
			return data, nil
		}
		// A damaged file is a cache entry: drop it and rebuild.
		p.log.Warn("shard artifacts: a stored tarball does not match its name; rebuilding it from Git", "file", name)
		_ = os.Remove(name)
	}
	data, err := p.rebuild(ctx, ref)
	if err != nil {
		return nil, err
	}
	if got := digestOf(data); got != ref.digest {
		p.log.Error("shard artifacts: the tarball rebuilt from Git does not match the digest its URL names; not served",
			"artifact", rel, "rebuilt", "sha256:"+got)
		return nil, errMismatch
	}
	p.keep(rel, data)
	return data, nil
}

// rebuild archives the shard at the commit. Source fetches the fleet first when
// its clone lacks the commit (pushed through another replica, or before a restart).
func (p *Publisher) rebuild(ctx context.Context, ref artifactRef) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.cfg.Source.Archive(ctx, ref.commit, path.Join("stores", ref.cluster, ref.shard), &buf); err != nil {
		if ctx.Err() == nil {
			p.log.Warn("shard artifacts: rebuilding an artifact from Git failed", "commit", ref.commit, "shard", ref.shard, "err", err)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// keep caches a checked tarball, dropping the oldest beyond cacheBytes.
func (p *Publisher) keep(rel string, data []byte) {
	if len(data) > cacheBytes/8 {
		return // served from Dir or rebuilt each time rather than crowding out the rest
	}
	s := &p.served
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string][]byte{}
	}
	if _, ok := s.cache[rel]; ok {
		return
	}
	s.cache[rel] = data
	s.order = append(s.order, rel)
	s.size += len(data)
	for s.size > cacheBytes && len(s.order) > 0 {
		old := s.order[0]
		s.order = s.order[1:]
		s.size -= len(s.cache[old])
		delete(s.cache, old)
	}
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
