package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// FleetCluster is the cluster name the environment's stores live under in the fleet
// repository (stores/local/<shard>/<name>/), matching clusters/local.
const FleetCluster = "local"

// publisherFieldManager is the server-side apply field manager gitops-api's shard
// publisher applies the shard Kustomizations with (kube.FieldManager; testenv cannot
// import internal/kube, whose own tests import testenv: TestPublisherFieldManager
// keeps the two equal). The environment applies them as the publisher would, so a
// gitops-api started against it later takes them over without a conflict.
const publisherFieldManager = client.FieldOwner("storefleet-publisher")

var externalArtifactGVK = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "ExternalArtifact"}

// startArtifacts serves <Dir>/artifacts over HTTP: the shard tarballs the
// environment publishes itself (publishShards).
func (e *Env) startArtifacts() error {
	e.artifactDir = filepath.Join(e.Dir, "artifacts")
	if err := os.MkdirAll(e.artifactDir, 0o755); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.artifactURL = "http://" + ln.Addr().String()
	e.artifacts = &http.Server{Handler: http.FileServer(http.Dir(e.artifactDir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.artifacts.Serve(ln) }()
	return nil
}

// publishShards does, with the git CLI, what gitops-api's shard publisher does
// (internal/publish, internal/kube): for every shard of stores/local/ whose tree at
// commit differs from what the environment last published, it writes a tarball of
// that tree and publishes it as ExternalArtifact stores-<shard>, then, the first
// time this Env publishes the shard, server-side applies the shard's Kustomization
// stores-<shard> (render.ShardKustomization with render.DefaultShardLayout; field
// manager storefleet-publisher, forced). The shard Kustomizations are not in Git:
// a shard that never held a store has neither an artifact nor a Kustomization. It
// lets the environment apply a fleet without gitops-api (its own tests, `make
// testenv` with pushes by hand). A folder in stores/local/ that is not a shard
// (render.ValidShard: three lowercase hex characters) is an error, as it is for
// gitops-api, and nothing is published then. It returns the published revision of
// each changed shard.
//
// Do not run it while a gitops-api publishes to the same environment: both would
// write the same ExternalArtifacts.
func (e *Env) publishShards(ctx context.Context, commit string) (map[string]string, error) {
	e.shardMu.Lock()
	defer e.shardMu.Unlock()
	out, err := Git(ctx, e.FleetRepoPath, "ls-tree", "-d", commit, "stores/"+FleetCluster+"/")
	if err != nil {
		return nil, err
	}
	trees := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		// <mode> SP tree SP <hash> TAB <path>
		meta, path, ok := strings.Cut(line, "\t")
		if f := strings.Fields(meta); ok && len(f) == 3 && f[1] == "tree" {
			shard := filepath.Base(path)
			if !store.ValidShard(shard) {
				return nil, fmt.Errorf("fleet commit %s: stores/%s/%s is not a shard folder (%d lowercase hex characters)",
					commit, FleetCluster, shard, store.ShardDigits)
			}
			trees[shard] = f[2]
		}
	}
	if e.shardTrees == nil {
		e.shardTrees = map[string]string{}
	}
	var changed []string
	for shard, tree := range trees {
		if e.shardTrees[shard] != tree {
			changed = append(changed, shard)
		}
	}
	for shard := range e.shardTrees {
		if _, ok := trees[shard]; !ok && e.shardTrees[shard] != "" {
			changed = append(changed, shard) // emptied: publish an empty tree so Flux prunes
		}
	}
	sort.Strings(changed)
	revision := "main@sha1:" + commit
	published := map[string]string{}
	for _, shard := range changed {
		data, err := shardTarball(ctx, e.FleetRepoPath, commit, trees[shard] != "", shard)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		rel := filepath.Join(FleetCluster, shard, digest+".tar.gz")
		if err := os.MkdirAll(filepath.Join(e.artifactDir, FleetCluster, shard), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(e.artifactDir, rel), data, 0o644); err != nil {
			return nil, err
		}
		if err := e.writeExternalArtifact(ctx, shard, map[string]any{
			"url":            e.artifactURL + "/" + filepath.ToSlash(rel),
			"path":           filepath.ToSlash(rel),
			"revision":       revision,
			"digest":         "sha256:" + digest,
			"size":           int64(len(data)),
			"lastUpdateTime": time.Now().UTC().Format(time.RFC3339),
		}); err != nil {
			return nil, err
		}
		// After the artifact, so the Kustomization finds it at its first reconcile;
		// before recording the tree, so a failed apply is retried at the next call.
		if err := e.ensureShardKustomization(ctx, shard); err != nil {
			return nil, err
		}
		e.shardTrees[shard] = trees[shard]
		published[shard] = revision
	}
	return published, nil
}

// shardTarball is the gzipped tar of stores/local/<shard> at commit, paths relative
// to the shard folder (what the shard Kustomization's path ./ expects).
func shardTarball(ctx context.Context, repo, commit string, exists bool, shard string) ([]byte, error) {
	if !exists {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if err := tar.NewWriter(zw).Close(); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	var stdout, stderr bytes.Buffer
	cmd := gitCommand(ctx, repo, "archive", "--format=tar.gz", commit+":stores/"+FleetCluster+"/"+shard)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git archive of shard %s at %s: %v: %s", shard, commit, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// writeExternalArtifact creates ExternalArtifact stores-<shard> if needed and sets
// its status: the artifact and Ready=True, as a source controller does.
func (e *Env) writeExternalArtifact(ctx context.Context, shard string, artifact map[string]any) error {
	key := client.ObjectKey{Namespace: fluxNamespace, Name: store.ShardObjectName(shard)}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(externalArtifactGVK)
	if err := e.Client.Get(ctx, key, u); apierrors.IsNotFound(err) {
		u = &unstructured.Unstructured{}
		u.SetGroupVersionKind(externalArtifactGVK)
		u.SetNamespace(key.Namespace)
		u.SetName(key.Name)
		u.SetLabels(map[string]string{store.ShardLabel: shard})
		if err := e.Client.Create(ctx, u); err != nil {
			return fmt.Errorf("create ExternalArtifact %s: %w", key, err)
		}
	} else if err != nil {
		return err
	}
	// ExternalArtifactStatus has no observedGeneration of its own (the API server
	// would drop it with a warning); the condition carries it.
	u.Object["status"] = map[string]any{
		"artifact": artifact,
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "reason": "Succeeded",
			"message":            fmt.Sprintf("stored artifact for revision '%s'", artifact["revision"]),
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
			"observedGeneration": u.GetGeneration(),
		}},
	}
	if err := e.Client.Status().Update(ctx, u); err != nil {
		return fmt.Errorf("update ExternalArtifact %s status: %w", key, err)
	}
	return nil
}

// ensureShardKustomization server-side applies Kustomization stores-<shard> as
// gitops-api's publisher does, once per shard and Env: later publishes of the shard
// leave it alone (a new artifact revision is what makes Flux apply the shard), so a
// change made to it by hand stays until the next Env, as it stays until gitops-api
// restarts. The caller holds shardMu.
func (e *Env) ensureShardKustomization(ctx context.Context, shard string) error {
	if e.shardKustomizations[shard] {
		return nil
	}
	data, err := render.ShardKustomizationYAML(e.ShardLayout(), shard)
	if err != nil {
		return fmt.Errorf("shard %s: %w", shard, err)
	}
	objs, err := DecodeYAML(data)
	if err != nil {
		return fmt.Errorf("shard %s: %w", shard, err)
	}
	name := store.ShardObjectName(shard)
	if len(objs) != 1 || objs[0].GroupVersionKind() != kustomizationGVK || objs[0].GetName() != name ||
		objs[0].GetNamespace() != fluxNamespace || objs[0].GetLabels()[store.ShardLabel] != shard {
		return fmt.Errorf("shard %s: render.ShardKustomizationYAML is not one Kustomization %s/%s labelled %s=%s:\n%s",
			shard, fluxNamespace, name, store.ShardLabel, shard, data)
	}
	if err := e.applyAs(ctx, objs, publisherFieldManager); err != nil {
		return err
	}
	if e.shardKustomizations == nil {
		e.shardKustomizations = map[string]bool{}
	}
	e.shardKustomizations[shard] = true
	return nil
}

// ShardLayout is the layout the environment's own shard publisher applies shard
// Kustomizations with: render.DefaultShardLayout, labelled for Options.FluxShards.
// A gitops-api started against the environment is given the same (--flux-shards).
func (e *Env) ShardLayout() render.ShardLayout {
	l := render.DefaultShardLayout()
	l.FluxShards = e.opts.FluxShards
	return l
}

// waitShardsApplied waits until each shard's Kustomization is Ready with the given
// revision applied. A missing Kustomization fails at once: publishShards applied it,
// and as with gitops-api nothing applies it again while the Env runs.
func (e *Env) waitShardsApplied(ctx context.Context, revisions map[string]string) error {
	shards := make([]string, 0, len(revisions))
	for s := range revisions {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	for _, shard := range shards {
		key := client.ObjectKey{Namespace: fluxNamespace, Name: store.ShardObjectName(shard)}
		err := Poll(ctx, 50*time.Millisecond, func() (bool, string, error) {
			u, err := e.get(ctx, kustomizationGVK, key)
			if apierrors.IsNotFound(err) {
				return false, "", fmt.Errorf("Kustomization %s does not exist: the environment applies it once, when it first publishes the shard; deleted since? %w", key, err)
			}
			if err != nil {
				return false, err.Error(), nil
			}
			applied, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
			ok, msg := IsReady(u)
			return ok && applied == revisions[shard], "lastAppliedRevision " + applied + "; " + msg, nil
		})
		if err != nil {
			return fmt.Errorf("Kustomization %s did not apply %s: %w", key, revisions[shard], err)
		}
	}
	return nil
}
