package fleet

import (
	"bytes"
	"sort"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/storefleet/storefleet/internal/store"
)

func diffFiles(old, new []store.File) []store.Diff {
	om := map[string][]byte{}
	for _, f := range old {
		om[f.Path] = f.Content
	}
	nm := map[string][]byte{}
	for _, f := range new {
		nm[f.Path] = f.Content
	}
	var paths []string
	for p := range om {
		paths = append(paths, p)
	}
	for p := range nm {
		if _, ok := om[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []store.Diff
	for _, p := range paths {
		o, inOld := om[p]
		n, inNew := nm[p]
		d := store.Diff{Path: p}
		switch {
		case !inOld:
			d.Op, d.Content = "add", string(n)
		case !inNew:
			d.Op = "delete"
		case bytes.Equal(o, n):
			continue
		default:
			d.Op, d.Content = "modify", string(n)
		}
		d.Diff = unified(p, o, n, inOld, inNew)
		out = append(out, d)
	}
	return out
}

func unified(path string, o, n []byte, inOld, inNew bool) string {
	from, to := "a/"+path, "b/"+path
	if !inOld {
		from = "/dev/null"
	}
	if !inNew {
		to = "/dev/null"
	}
	text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(o)), B: difflib.SplitLines(string(n)),
		FromFile: from, ToFile: to, Context: 3,
	})
	return text
}
