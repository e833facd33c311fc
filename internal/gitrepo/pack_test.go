package gitrepo

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// readPack must agree with git on every way git writes deltas: OFS_DELTA (what fetches
// get), REF_DELTA (older servers, or a client that did not ask for ofs-delta) and thin
// packs whose bases the clone already holds. The index it renders must be the one git's
// own index-pack writes for the same pack, since on-disk clones keep it as is.
func TestReadPackDeltaForms(t *testing.T) {
	bare := fleetFixture(t, 300)
	cases := []struct {
		name     string
		revs     string
		args     []string
		ofs, ref bool // which delta forms the pack must hold
	}{
		{"ofs-delta", "main\n", []string{"--delta-base-offset"}, true, false},
		{"ref-delta", "main\n", nil, false, true},
		// Bases outside a thin pack can only be named by hash.
		{"thin", "main\n^main~1\n", []string{"--thin", "--delta-base-offset"}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := gitExec(bare, append([]string{"pack-objects", "--stdout", "--revs", "--quiet"}, tc.args...)...)
			cmd.Stdin = strings.NewReader(tc.revs)
			pack, err := cmd.Output()
			if err != nil {
				t.Fatalf("pack-objects: %v", err)
			}
			externals := 0
			external := func(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
				externals++
				typ, err := plumbing.ParseObjectType(runGit(t, bare, "cat-file", "-t", h.String()))
				if err != nil {
					return 0, nil, err
				}
				out, err := gitExec(bare, "cat-file", typ.String(), h.String()).Output()
				return typ, out, err
			}
			pp, err := readPack(bytes.NewReader(pack), external)
			if err != nil {
				t.Fatalf("readPack: %v", err)
			}
			if tc.name == "thin" && externals == 0 {
				t.Fatal("the thin pack needed no outside base; the test would not exercise thin packs")
			}
			if tc.name != "thin" && externals != 0 {
				t.Fatalf("a self-contained pack asked for %d outside bases", externals)
			}
			var got []string
			ofs, ref := 0, 0
			for _, o := range pp.objects {
				if o.delta != nil {
					t.Fatalf("object at %d left unresolved", o.offset)
				}
				if o.baseOff != 0 {
					ofs++
				}
				if !o.baseHash.IsZero() {
					ref++
				}
				got = append(got, o.hash.String())
			}
			if (ofs > 0) != tc.ofs || (ref > 0) != tc.ref {
				t.Fatalf("pack has %d OFS and %d REF deltas; the test would not exercise %s", ofs, ref, tc.name)
			}
			sort.Strings(got)
			var want []string
			for _, l := range strings.Split(runGit(t, bare, append([]string{"rev-list", "--objects"}, strings.Fields(tc.revs)...)...), "\n") {
				want = append(want, strings.Fields(l)[0])
			}
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("pack objects: got %d, git packed %d", len(got), len(want))
			}
			if !bytes.Equal(pp.raw, pack) {
				t.Fatal("raw pack differs from what was read")
			}
			if tc.name == "thin" {
				return // index-pack --fix-thin rewrites the pack, so its index is another pack's
			}
			dir := t.TempDir()
			p := filepath.Join(dir, "p.pack")
			if err := os.WriteFile(p, pack, 0o644); err != nil {
				t.Fatal(err)
			}
			runGit(t, dir, "index-pack", p)
			idx, err := os.ReadFile(filepath.Join(dir, "p.idx"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pp.idxV2(), idx) {
				t.Fatal("idxV2 differs from git index-pack's index")
			}
		})
	}
}

// A damaged or incomplete pack is an error, never a partial clone.
func TestReadPackRejects(t *testing.T) {
	bare := fleetFixture(t, 300)
	cmd := gitExec(bare, "pack-objects", "--stdout", "--revs", "--quiet", "--thin", "--delta-base-offset")
	cmd.Stdin = strings.NewReader("main\n^main~1\n")
	thin, err := cmd.Output()
	if err != nil {
		t.Fatalf("pack-objects: %v", err)
	}
	noBase := func(plumbing.Hash) (plumbing.ObjectType, []byte, error) {
		return 0, nil, plumbing.ErrObjectNotFound
	}
	flip := func(i int) []byte {
		b := bytes.Clone(thin)
		b[i] ^= 0xff
		return b
	}
	for _, tc := range []struct {
		name string
		pack []byte
		want string
	}{
		{"empty", nil, "pack header"},
		{"magic", flip(0), "not a pack"},
		{"version", flip(7), "pack version"},
		{"truncated", thin[:len(thin)-10], "pack trailer"},
		{"checksum", flip(len(thin) - 1), "pack checksum mismatch"},
		{"missing base", thin, "whose base is missing"},
	} {
		_, err := readPack(bytes.NewReader(tc.pack), noBase)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
