package render

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

func TestFluxShardsKey(t *testing.T) {
	for _, c := range []struct {
		k     FluxShards
		shard string
		want  string
	}{
		{0, "8d9", ""}, {1, "8d9", ""}, {1, "fff", ""},
		{2, "000", ""}, {2, "001", "shard1"}, {2, "8d9", "shard1"}, {2, "8d8", ""},
		{3, "003", ""}, {3, "004", "shard1"}, {3, "005", "shard2"},
		{4, "fff", "shard3"},
		{2, "xyz", ""},
	} {
		if got := c.k.Key(c.shard); got != c.want {
			t.Errorf("FluxShards(%d).Key(%q) = %q, want %q", c.k, c.shard, got, c.want)
		}
	}
	if got := FluxShards(3).Keys(); strings.Join(got, ",") != "shard1,shard2" {
		t.Errorf("FluxShards(3).Keys() = %v", got)
	}
	if got := FluxShards(1).Keys(); len(got) != 0 {
		t.Errorf("FluxShards(1).Keys() = %v, want none", got)
	}
	for _, k := range []FluxShards{-1, MaxFluxShards + 1} {
		if err := k.Validate(); err == nil {
			t.Errorf("FluxShards(%d) accepted", k)
		}
	}
}

// Every store's HelmRelease carries the label of the controller shard its shard
// Kustomization carries, for every count: a store reconciled by one helm-controller
// but applied by another shard's kustomize-controller would depend on both.
func TestFluxShardsStoreAndKustomizationAgree(t *testing.T) {
	for _, k := range []FluxShards{1, 2, 3, 4} {
		seen := map[string]int{}
		for i := range 200 {
			s := shop(store.WooCommerce, store.Basic)
			s.Name = fmt.Sprintf("s%d", i)
			opts := LocalOptions()
			opts.FluxShards = k
			files, err := Store(s, opts)
			if err != nil {
				t.Fatal(err)
			}
			var hr helmv2.HelmRelease
			for _, f := range files {
				if strings.HasSuffix(f.Path, "/"+HelmReleaseFile) {
					if err := yaml.Unmarshal(f.Content, &hr); err != nil {
						t.Fatal(err)
					}
				}
			}
			l := DefaultShardLayout()
			l.FluxShards = k
			ks, err := ShardKustomization(l, store.Shard(s.Name))
			if err != nil {
				t.Fatal(err)
			}
			got, want := hr.Labels[FluxShardLabel], ks.Labels[FluxShardLabel]
			if got != want {
				t.Fatalf("K=%d store %s: HelmRelease labelled %q, its shard Kustomization %q", k, s.Name, got, want)
			}
			seen[got]++
		}
		// 200 stores over K controller shards: each gets some (a key function that
		// sent everything to one set would not shard anything).
		if len(seen) != int(k) {
			t.Errorf("K=%d: stores spread over %d controller shards: %v", k, len(seen), seen)
		}
	}
}

// K = 0 and K = 1 render what a cluster without sharding always rendered.
func TestFluxShardsOneIsNone(t *testing.T) {
	s := shop(store.Medusa, store.Premium)
	base, err := Store(s, LocalOptions())
	if err != nil {
		t.Fatal(err)
	}
	opts := LocalOptions()
	opts.FluxShards = 1
	one, err := Store(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(concat(base), concat(one)) {
		t.Error("FluxShards 1 renders differently from the default")
	}
	if bytes.Contains(concat(one), []byte(FluxShardLabel)) {
		t.Errorf("FluxShards 1 labels objects with %s", FluxShardLabel)
	}
	l := DefaultShardLayout()
	a, _ := ShardKustomizationYAML(l, "8d9")
	l.FluxShards = 1
	b, _ := ShardKustomizationYAML(l, "8d9")
	if !bytes.Equal(a, b) || bytes.Contains(b, []byte(FluxShardLabel)) {
		t.Errorf("FluxShards 1 changes the shard Kustomization:\n%s", b)
	}
}

// The golden store and shard Kustomization of a cluster with two controller
// shards: the store "shop" is in fleet shard 8d9, odd, so controller shard 1.
func TestFluxShardsGolden(t *testing.T) {
	opts := LocalOptions()
	opts.FluxShards = 2
	files, err := Store(shop(store.WooCommerce, store.Basic), opts)
	if err != nil {
		t.Fatal(err)
	}
	validateFiles(t, files)
	l := DefaultShardLayout()
	l.FluxShards = 2
	k, err := ShardKustomizationYAML(l, store.Shard("shop"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "woocommerce-basic-fluxshards2", concat(files))
	// Beside, not in, the store goldens: those are what a store folder holds.
	golden(t, "shard-kustomization/stores-8d9-fluxshards2", k)
}

func TestFluxShardsRefused(t *testing.T) {
	opts := LocalOptions()
	opts.FluxShards = -1
	if _, err := Store(shop(store.WooCommerce, store.Basic), opts); err == nil || !strings.Contains(err.Error(), "flux shards") {
		t.Errorf("FluxShards -1: %v", err)
	}
	l := DefaultShardLayout()
	l.FluxShards = MaxFluxShards + 1
	if _, err := ShardKustomization(l, "000"); err == nil || !strings.Contains(err.Error(), "flux shards") {
		t.Errorf("FluxShards %d: %v", MaxFluxShards+1, err)
	}
}
