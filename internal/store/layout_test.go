package store

import (
	"fmt"
	"testing"
)

func TestLayout(t *testing.T) {
	if got := Dir("local", "shop"); got != "stores/local/8d9/shop" {
		t.Fatalf("Dir = %s", got)
	}
	r, ok := ParseDir("stores/local/8d9/shop")
	if !ok || r != (Ref{Cluster: "local", Shard: "8d9", Name: "shop"}) || r.Dir() != "stores/local/8d9/shop" {
		t.Fatalf("ParseDir = %+v %v", r, ok)
	}
	for _, bad := range []string{"stores/local/8d9", "stores/local/8d9/shop/x", "fleet/local/8d9/shop", "stores//8d9/shop", ""} {
		if _, ok := ParseDir(bad); ok {
			t.Errorf("ParseDir(%q) accepted", bad)
		}
	}
	r, rel, ok := ParseFile("stores/local/8d9/shop/policy/a.yaml")
	if !ok || r.Name != "shop" || rel != "policy/a.yaml" {
		t.Fatalf("ParseFile = %+v %q %v", r, rel, ok)
	}
	if _, _, ok := ParseFile("stores/local/8d9/shop"); ok {
		t.Error("ParseFile accepted a folder")
	}
	seen := map[string]bool{}
	for i := range 100000 {
		s := Shard(fmt.Sprintf("store-%d", i))
		if !ValidShard(s) {
			t.Fatalf("Shard = %q", s)
		}
		seen[s] = true
	}
	if len(seen) != 1<<(4*ShardDigits) {
		t.Errorf("%d shards seen, want %d", len(seen), 1<<(4*ShardDigits))
	}
	if n, ok := ShardOfObject(ShardObjectName("0a7")); !ok || n != "0a7" {
		t.Errorf("ShardOfObject = %q %v", n, ok)
	}
	for _, s := range []string{"abc", "0a", "0a7f", "ABC", "g00", ""} {
		if ValidShard(s) != (s == "abc") {
			t.Errorf("ValidShard(%q) = %v", s, ValidShard(s))
		}
	}
}
