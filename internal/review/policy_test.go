package review

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

const example = `
rules:
  - name: premium-plans
    plans: [premium]
  - name: every-purge
    actions: [purge]
  - name: eu-medusa-creates
    actions: [create]
    engines: [medusa]
    clusters: [eu-1]
`

func TestRequires(t *testing.T) {
	p, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    store.ReviewSubject
		rule string
	}{
		{store.ReviewSubject{Action: store.ActionCreate, Plan: "premium", Engine: "woocommerce", Cluster: "default"}, "premium-plans"},
		{store.ReviewSubject{Action: store.ActionUpdate, Plan: "premium", Engine: "medusa", Cluster: "default"}, "premium-plans"},
		{store.ReviewSubject{Action: store.ActionPurge, Plan: "basic", Engine: "woocommerce", Cluster: "default"}, "every-purge"},
		{store.ReviewSubject{Action: store.ActionCreate, Plan: "basic", Engine: "medusa", Cluster: "eu-1"}, "eu-medusa-creates"},
		// Every list of a rule must match: medusa elsewhere, or an update in eu-1, is direct.
		{store.ReviewSubject{Action: store.ActionCreate, Plan: "basic", Engine: "medusa", Cluster: "us-1"}, ""},
		{store.ReviewSubject{Action: store.ActionUpdate, Plan: "basic", Engine: "medusa", Cluster: "eu-1"}, ""},
		{store.ReviewSubject{Action: store.ActionDelete, Plan: "standard", Engine: "woocommerce", Cluster: "default"}, ""},
	} {
		if got := p.Match(c.s); got != c.rule {
			t.Errorf("%+v: rule %q, want %q", c.s, got, c.rule)
		}
		if p.Requires(c.s) != (c.rule != "") {
			t.Errorf("%+v: Requires disagrees with Match", c.s)
		}
	}
	var none *Policy
	if none.Requires(store.ReviewSubject{Action: store.ActionPurge}) {
		t.Error("a nil policy reviews nothing")
	}
}

func TestParseRefusesEveryMistakeAtOnce(t *testing.T) {
	_, err := Parse([]byte(`
rules:
  - name: a
    plans: [platinum]
    actions: [destroy]
  - name: a
    engines: [magento]
    tenants: ["Not A Tenant"]
  - name: ""
`))
	fields := map[string]string{}
	for _, f := range store.FieldErrors(err) {
		fields[f.Field] = f.Rule
	}
	want := map[string]string{
		"rules[0].plans[0]": "enum", "rules[0].actions[0]": "enum", "rules[1].name": "unique",
		"rules[1].engines[0]": "enum", "rules[2].name": "required", "rules[2]": "conditions",
	}
	for f, r := range want {
		if fields[f] != r {
			t.Errorf("field %s: rule %q, want %q (all: %v)", f, fields[f], r, fields)
		}
	}
	if _, ok := fields["rules[1].tenants[0]"]; !ok {
		t.Errorf("an invalid tenant is not reported: %v", fields)
	}
	if store.ErrorCode(err) != store.EINVALID {
		t.Errorf("code %q", store.ErrorCode(err))
	}
}

func TestParseRefusesUnknownKeys(t *testing.T) {
	// "plan" for "plans" would otherwise make a rule without conditions, or
	// silently review nothing.
	_, err := Parse([]byte("rules:\n  - name: p\n    plan: [premium]\n"))
	if err == nil || !strings.Contains(err.Error()+fieldsOf(err), "plan") {
		t.Fatalf("a misspelt key is accepted: %v", err)
	}
	if _, err := Parse([]byte("rules: [\n")); store.ErrorCode(err) != store.EINVALID {
		t.Fatalf("broken YAML: %v", err)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "review.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - name: x\n    plans: [gold]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not name the file: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file is accepted")
	}
}

func fieldsOf(err error) string {
	var b strings.Builder
	for _, f := range store.FieldErrors(err) {
		b.WriteString(f.String())
	}
	return b.String()
}
