package arch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/storefleet/storefleet/"

// forbidden names the SDKs a package may be kept from linking, by import path prefix.
var forbidden = map[string]string{
	"go-git":    "github.com/go-git/",
	"client-go": "k8s.io/client-go/",
}

// required are the arrows the domain layout rests on (issue "One domain"): they hold
// whatever docs/design.md says, so editing the picture cannot lift them.
var required = map[string][]string{
	"internal/api":    {"go-git", "client-go"},
	"internal/status": {"go-git", "client-go"},
	"internal/store":  {"go-git", "client-go"},
	"internal/fleet":  {"go-git", "client-go"},
	"internal/render": {"go-git"},
}

type rule struct {
	imports map[string]bool
	never   []string
}

// arrows reads the ```deps block of docs/design.md.
func arrows(t *testing.T, doc []byte) map[string]rule {
	t.Helper()
	out := map[string]rule{}
	sc := bufio.NewScanner(bytes.NewReader(doc))
	in := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```deps":
			in = true
			continue
		case in && line == "```":
			in = false
			continue
		case !in || line == "":
			continue
		}
		from, rest, ok := strings.Cut(line, "->")
		if !ok {
			t.Fatalf("docs/design.md:%d: %q is not `pkg -> imports... [never sdk...]`", n, line)
		}
		from = strings.TrimSpace(from)
		to, never, _ := strings.Cut(rest, "never")
		r := rule{imports: map[string]bool{}}
		for _, p := range strings.Fields(to) {
			r.imports[p] = true
		}
		for _, sdk := range strings.Fields(never) {
			if _, ok := forbidden[sdk]; !ok {
				t.Fatalf("docs/design.md:%d: unknown SDK %q (known: go-git, client-go)", n, sdk)
			}
			r.never = append(r.never, sdk)
		}
		if _, dup := out[from]; dup {
			t.Fatalf("docs/design.md:%d: %s drawn twice", n, from)
		}
		out[from] = r
	}
	if len(out) == 0 {
		t.Fatal("docs/design.md has no ```deps block")
	}
	return out
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list runs `go list -json ./...` in the module root.
func list(t *testing.T, root string) []pkg {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("the go command is needed to list the packages: %v", err)
		}
	}
	cmd := exec.Command(goBin, "list", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var out []pkg
	d := json.NewDecoder(bytes.NewReader(b))
	for {
		var p pkg
		if err := d.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// check compares the packages with the arrows and returns every difference.
func check(pkgs []pkg, want map[string]rule) []string {
	var errs []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		name := strings.TrimPrefix(p.ImportPath, module)
		seen[name] = true
		r, ok := want[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s is not drawn in docs/design.md", name))
			continue
		}
		got := map[string]bool{}
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				got[rel] = true
				if !r.imports[rel] {
					errs = append(errs, fmt.Sprintf("%s imports %s: no such arrow in docs/design.md", name, rel))
				}
			}
		}
		for imp := range r.imports {
			if !got[imp] {
				errs = append(errs, fmt.Sprintf("%s no longer imports %s: remove the arrow from docs/design.md", name, imp))
			}
		}
		never := append([]string(nil), r.never...)
		for _, sdk := range required[name] {
			if !contains(r.never, sdk) {
				errs = append(errs, fmt.Sprintf("docs/design.md must say %s never links %s", name, sdk))
				never = append(never, sdk)
			}
		}
		for _, sdk := range never {
			var linked []string
			for _, d := range p.Deps {
				if strings.HasPrefix(d, forbidden[sdk]) {
					linked = append(linked, d)
				}
			}
			if len(linked) > 0 {
				errs = append(errs, fmt.Sprintf("%s links %d %s packages (e.g. %s) through %s", name, len(linked), sdk, linked[0], via(p, pkgs, forbidden[sdk])))
			}
		}
	}
	for name := range want {
		if !seen[name] {
			errs = append(errs, fmt.Sprintf("docs/design.md draws %s, which is not a package", name))
		}
	}
	sort.Strings(errs)
	return errs
}

// via names the project packages p imports that bring in the forbidden prefix, so the
// failure says where to cut.
func via(p pkg, pkgs []pkg, prefix string) string {
	byPath := map[string]pkg{}
	for _, q := range pkgs {
		byPath[q.ImportPath] = q
	}
	var out []string
	for _, imp := range p.Imports {
		if strings.HasPrefix(imp, prefix) {
			out = append(out, imp)
			continue
		}
		if q, ok := byPath[imp]; ok {
			for _, d := range q.Deps {
				if strings.HasPrefix(d, prefix) {
					out = append(out, strings.TrimPrefix(imp, module))
					break
				}
			}
		}
	}
	return strings.Join(out, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func TestDependencies(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range check(list(t, root), arrows(t, doc)) {
		t.Error(e)
	}
}

// The check itself must catch a forbidden link, an undrawn arrow and a stale one.
func TestDependenciesCheckCatches(t *testing.T) {
	want := map[string]rule{
		"internal/api":   {imports: map[string]bool{"internal/store": true, "internal/status": true}, never: []string{"go-git"}},
		"internal/store": {imports: map[string]bool{}, never: []string{"go-git", "client-go"}},
	}
	pkgs := []pkg{
		{ImportPath: module + "internal/api", Imports: []string{module + "internal/fleet"}, Deps: []string{"github.com/go-git/go-git/v5"}},
		{ImportPath: module + "internal/store"},
		{ImportPath: module + "internal/fleet", Deps: []string{"github.com/go-git/go-git/v5"}},
	}
	got := strings.Join(check(pkgs, want), "\n")
	for _, w := range []string{
		"internal/api imports internal/fleet: no such arrow",
		"internal/api no longer imports internal/store",
		"internal/api links 1 go-git packages",
		"through internal/fleet",
		"docs/design.md must say internal/api never links client-go",
		"internal/fleet is not drawn",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("check missed %q; it said:\n%s", w, got)
		}
	}
}
