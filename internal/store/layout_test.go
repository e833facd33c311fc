package store

import (
	"fmt"
	"math/bits"
	"strconv"
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

// TestShardCount: every count names its shards with ShardDigits hex characters
// below the count, 4,096 is the layout of fleets written before the count existed,
// and a store's shard at a smaller count is its 4,096 shard shifted right (what
// makes `gitops-api reshard` move stores only towards smaller shard names).
func TestShardCount(t *testing.T) {
	if got := ShardIn("shop", 4096); got != "8d9" || Shard("shop") != got {
		t.Fatalf("ShardIn(shop, 4096) = %s, Shard = %s; want 8d9 (the first three hex characters of the hash)", got, Shard("shop"))
	}
	if got := ShardIn("shop", 256); got != "08d" {
		t.Errorf("ShardIn(shop, 256) = %s, want 08d", got)
	}
	if got := ShardIn("shop", 1024); got != "236" { // 0x8d9 >> 2
		t.Errorf("ShardIn(shop, 1024) = %s, want 236", got)
	}
	if got := DirIn("local", "shop", 256); got != "stores/local/08d/shop" {
		t.Errorf("DirIn = %s", got)
	}
	for _, n := range []int{16, 256, 1024, 4096} {
		seen := map[string]bool{}
		for i := range 20 * n {
			name := fmt.Sprintf("store-%d", i)
			s := ShardIn(name, n)
			if !ShardInRange(s, n) {
				t.Fatalf("ShardIn(%s, %d) = %q: not a shard of %d", name, n, s, n)
			}
			big, _ := strconv.ParseUint(Shard(name), 16, 16)
			small, _ := strconv.ParseUint(s, 16, 16)
			if big>>(12-bits.TrailingZeros(uint(n))) != small {
				t.Fatalf("ShardIn(%s, %d) = %s is not Shard %s shifted", name, n, s, Shard(name))
			}
			seen[s] = true
		}
		if len(seen) != n {
			t.Errorf("%d shards seen at %d", len(seen), n)
		}
	}
	for _, bad := range []int{0, 8, 100, 8192, -16} {
		if ValidShards(bad) == nil {
			t.Errorf("ValidShards(%d) accepted", bad)
		}
	}
	for in, want := range map[string]int{"256\n": 256, " 4096 ": 4096, "16": 16} {
		if n, err := ParseShards([]byte(in)); err != nil || n != want {
			t.Errorf("ParseShards(%q) = %d, %v", in, n, err)
		}
	}
	for _, in := range []string{"", "abc", "300", "0x100"} {
		if _, err := ParseShards([]byte(in)); err == nil {
			t.Errorf("ParseShards(%q) accepted", in)
		}
	}
	if n, err := ParseShards(FormatShards(1024)); err != nil || n != 1024 {
		t.Errorf("FormatShards does not parse back: %d %v", n, err)
	}
	if ShardInRange("100", 256) || !ShardInRange("0ff", 256) {
		t.Error("ShardInRange at 256")
	}
}
