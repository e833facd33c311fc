package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// The fleet repository layout (docs/design.md, "Fleet repository layout"). Every
// part that writes, reads or applies the fleet — render, the Git writer, the shard
// publisher, the cluster watcher — takes its paths and shard names from here, so
// the layout is defined once.
//
//	stores/<cluster>/<shard>/<name>/   one store's files
//	chart-sources/<cluster>/          the chart sources the stores share
//
// A shard is the top log2(N) bits of the SHA-256 of the store's name, written as
// ShardDigits lowercase hex characters, where N is the fleet's shard count
// (ShardsFile, DefaultShards when absent). With 4,096 shards that is the hash's first
// three hex characters, so fleets written before the count existed keep their
// layout byte for byte. A shard is also the unit Flux applies (one Kustomization
// stores-<shard> a shard), so its size is what a commit costs to apply: at 10,000
// stores a shard holds ~2.4 stores with 4,096 shards, where 256 made it ~39 and a
// commit cost seconds of apply (docs/benchmarks.md). Changing N moves stores between
// shards: `gitops-api reshard` does it (clusters/README.md, "Changing the shard
// count").
const (
	// StoresRoot is the top folder of every store folder.
	StoresRoot = "stores"
	// ShardDigits is the length of a shard name: that many lowercase hex characters.
	ShardDigits = 3
	// ShardLabel marks the per-shard Flux objects (Kustomization and ExternalArtifact
	// stores-<shard>); its value is the shard.
	ShardLabel = "storefleet.io/shard"
	// ChartSourcesRoot is the top folder of the shared chart sources, beside
	// infrastructure/ (not inside it: Flux applies infrastructure/<cluster>/ with
	// its own identity, and would take in a folder below it that has no
	// kustomization.yaml of its own).
	ChartSourcesRoot = "chart-sources"
	// AnnotationVersion carries a store's chart version on its HelmRelease: the
	// release references a chart source shared by every store of its engine and
	// version (ChartSourcesDir), whose name is not meant to be parsed. An annotation,
	// since a semantic version may hold "+", which a label value may not.
	AnnotationVersion = "storefleet.io/version"
	// ShardsFile is the fleet repository's file, at its root, that holds the shard
	// count as a decimal number. The count is the fleet's, not a process's: every
	// writer, publisher and watcher reads it from the commit it works on, so changing
	// it is one commit (the one that moves the stores). Absent means DefaultShards.
	ShardsFile = "shards"
	// DefaultShards is the shard count of a fleet without ShardsFile.
	DefaultShards = 4096
	// MinShards and MaxShards bound the shard count, a power of two: 16 keeps a
	// shard's name distinct from a cluster-wide object's scale; 4,096 is all that
	// ShardDigits hex characters can name.
	MinShards = 16
	MaxShards = 1 << (4 * ShardDigits)
	// shardObjectPrefix begins the name of a shard's Kustomization and ExternalArtifact.
	shardObjectPrefix = "stores-"
)

// Shard is the shard of a store name in a fleet of DefaultShards shards.
func Shard(name string) string { return ShardIn(name, DefaultShards) }

// ShardIn is the shard of a store name in a fleet of n shards (ValidShards): the
// top log2(n) bits of the name's SHA-256, as ShardDigits lowercase hex characters.
// It panics on an invalid n, a programming error: counts read from the fleet go
// through ParseShards first.
func ShardIn(name string, n int) string {
	if err := ValidShards(n); err != nil {
		panic(err)
	}
	sum := sha256.Sum256([]byte(name))
	top := binary.BigEndian.Uint16(sum[:2]) >> (16 - bits.TrailingZeros(uint(n)))
	return fmt.Sprintf("%0*x", ShardDigits, top)
}

// ValidShards reports a shard count that is not a power of two from MinShards to
// MaxShards.
func ValidShards(n int) error {
	if n < MinShards || n > MaxShards || n&(n-1) != 0 {
		return fmt.Errorf("shard count %d is not a power of two from %d to %d", n, MinShards, MaxShards)
	}
	return nil
}

// ParseShards reads ShardsFile's content: a valid shard count in decimal, blanks
// around it allowed.
func ParseShards(data []byte) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a decimal shard count", ShardsFile, strings.TrimSpace(string(data)))
	}
	if err := ValidShards(n); err != nil {
		return 0, fmt.Errorf("%s: %w", ShardsFile, err)
	}
	return n, nil
}

// FormatShards is ShardsFile's content for n.
func FormatShards(n int) []byte { return []byte(strconv.Itoa(n) + "\n") }

// ShardInRange reports whether s is a shard of a fleet of n shards: a valid name
// whose value is below n.
func ShardInRange(s string, n int) bool {
	if !ValidShard(s) {
		return false
	}
	v, err := strconv.ParseUint(s, 16, 16)
	return err == nil && int(v) < n
}

// ValidShard reports whether s is a shard name: ShardDigits lowercase hex characters.
func ValidShard(s string) bool {
	if len(s) != ShardDigits {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ShardObjectName is the name of a shard's Kustomization and of the ExternalArtifact
// it applies, both in the Flux namespace.
func ShardObjectName(shard string) string { return shardObjectPrefix + shard }

// ShardOfObject is the inverse of ShardObjectName.
func ShardOfObject(name string) (string, bool) {
	s, ok := strings.CutPrefix(name, shardObjectPrefix)
	return s, ok && ValidShard(s)
}

// ClusterDir is the folder holding every store of a cluster: stores/<cluster>.
func ClusterDir(cluster string) string { return StoresRoot + "/" + cluster }

// ShardDir is one shard's folder in a cluster: stores/<cluster>/<shard>.
func ShardDir(cluster, shard string) string { return ClusterDir(cluster) + "/" + shard }

// Dir is a store's folder in a fleet of DefaultShards shards:
// stores/<cluster>/<shard>/<name>.
func Dir(cluster, name string) string { return DirIn(cluster, name, DefaultShards) }

// DirIn is a store's folder in a fleet of n shards.
func DirIn(cluster, name string, n int) string {
	return ShardDir(cluster, ShardIn(name, n)) + "/" + name
}

// Ref names a store folder by its parts.
type Ref struct {
	Cluster, Shard, Name string
}

// Dir is the folder the Ref names.
func (r Ref) Dir() string { return ShardDir(r.Cluster, r.Shard) + "/" + r.Name }

// ParseDir splits a store folder (stores/<cluster>/<shard>/<name>) into its parts.
// It reports false for any other path. It does not check that the shard is the
// name's: a folder pushed by hand to another shard is still read as a store.
func ParseDir(dir string) (Ref, bool) {
	rest, ok := strings.CutPrefix(dir, StoresRoot+"/")
	if !ok {
		return Ref{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Ref{}, false
	}
	return Ref{Cluster: parts[0], Shard: parts[1], Name: parts[2]}, true
}

// ParseFile splits the path of a file in a store folder
// (stores/<cluster>/<shard>/<name>/<file>) into the folder's parts and the file's
// path inside it.
func ParseFile(p string) (Ref, string, bool) {
	rest, ok := strings.CutPrefix(p, StoresRoot+"/")
	if !ok {
		return Ref{}, "", false
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) != 4 || parts[3] == "" {
		return Ref{}, "", false
	}
	r, ok := ParseDir(StoresRoot + "/" + strings.Join(parts[:3], "/"))
	return r, parts[3], ok
}

// ChartSourcesDir is the folder of a cluster's shared chart sources, one file per
// engine and version that some store uses: chart-sources/<cluster>. Its own Flux
// Kustomization (clusters/<cluster>/chart-sources.yaml) applies it as an identity
// that may write only those sources, since the store shards may not write the
// Flux namespace.
func ChartSourcesDir(cluster string) string { return ChartSourcesRoot + "/" + cluster }
