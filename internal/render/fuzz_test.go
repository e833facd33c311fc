package render

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"path"
	"reflect"
	"strings"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

var knownFields = map[string]bool{
	"name": true, "engine": true, "plan": true, "cluster": true, "domain": true, "version": true,
	"settings.title": true, "settings.adminEmail": true, "settings.currency": true, "settings.country": true,
	"settings.language": true, "settings.regionName": true, "tenant": true,
}

// FuzzRender feeds every string field of a store through render. Each input must either be refused with
// field errors, or give files inside the store's own folder whose YAML parses back (strictly, as the API
// server reads it) to exactly the typed objects render built: no field can inject YAML structure or escape
// its folder. Seeds live in testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	f.Add("shop", "woocommerce", "basic", "local", "", "", "Shop", "owner@example.com", "EUR", "DE", "de_DE", "", "")
	f.Add("shop", "medusa", "premium", "", "shop.example.com", "1.0.0", "Shop", "a@b.co", "", "", "", "Europe", "acme")
	opts := LocalOptions()
	f.Fuzz(func(t *testing.T, name, engine, plan, cluster, domain, version, title, email, currency, country, language, region, tenant string) {
		s := store.Store{Name: name, Engine: store.Engine(engine), Plan: store.PlanName(plan), Cluster: cluster,
			Tenant: tenant, Domain: domain, Version: version, Settings: store.Settings{Title: title, AdminEmail: email,
				Currency: currency, Country: country, Language: language, RegionName: region}}
		r, objs, err := objects(s, opts, store.StateActive)
		if err != nil {
			fes := store.FieldErrors(err)
			if store.ErrorCode(err) != store.EINVALID || len(fes) == 0 {
				t.Fatalf("refused without field errors: %v", err)
			}
			for _, fe := range fes {
				if !knownFields[fe.Field] || fe.Rule == "" || fe.Message == "" {
					t.Fatalf("bad field error %+v", fe)
				}
			}
			return
		}
		files, err := r.folder(objs)
		if err != nil {
			t.Fatal(err)
		}
		dir := store.Dir(r.s.Cluster, r.s.Name)
		if strings.Count(dir, "/") != 3 || path.Clean(dir) != dir || strings.Contains(dir, "..") {
			t.Fatalf("store folder %q", dir)
		}
		for _, file := range files {
			if path.Dir(file.Path) != dir {
				t.Fatalf("file %q outside %q", file.Path, dir)
			}
			base := path.Base(file.Path)
			if base == KustomizationFile {
				var k kustypes.Kustomization
				if err := yaml.UnmarshalStrict(file.Content, &k); err != nil {
					t.Fatal(err)
				}
				if len(k.Resources) != len(objs) {
					t.Fatalf("kustomization lists %v", k.Resources)
				}
				continue
			}
			want := objs[base]
			docs := splitDocs(t, file.Content)
			if len(docs) != len(want) {
				t.Fatalf("%s: %d documents, want %d", base, len(docs), len(want))
			}
			for i, doc := range docs {
				got := reflect.New(reflect.TypeOf(want[i]).Elem()).Interface()
				if err := yaml.UnmarshalStrict(doc, got); err != nil {
					t.Fatalf("%s doc %d does not parse back: %v\n%s", base, i, err, doc)
				}
				compare(t, r, want[i], got)
			}
			assertSameAsSigs(t, base, want)
		}
		// The tenant decides who sees the store: what Parse reads back must be
		// exactly what was rendered.
		if back, _, err := (Renderer{Options: opts}).Parse(files); err != nil || back.Tenant != tenant {
			t.Fatalf("tenant %q parsed back as %q (%v)", tenant, back.Tenant, err)
		}
	})
}

func splitDocs(t *testing.T, b []byte) [][]byte {
	var out [][]byte
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		d, err := rd.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

func compare(t *testing.T, r *renderer, want, got any) {
	t.Helper()
	if wh, ok := want.(*helmv2.HelmRelease); ok {
		gh := got.(*helmv2.HelmRelease)
		var wv, gv ChartValues
		if err := json.Unmarshal(wh.Spec.Values.Raw, &wv); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(gh.Spec.Values.Raw, &gv); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(wv, gv) {
			t.Fatalf("values do not round-trip:\nwant %+v\n got %+v", wv, gv)
		}
		// The settings arrive in the chart exactly as given.
		st := r.s.Settings
		if gv.Store.Title != st.Title || gv.Store.AdminEmail != st.AdminEmail || gv.Store.Name != r.s.Name ||
			gv.Store.Domain != r.s.Domain || gv.Store.Language != st.Language || gv.Store.RegionName != st.RegionName {
			t.Fatalf("settings changed on the way: %+v vs %+v", gv.Store, st)
		}
		wc, gc := wh.DeepCopy(), gh.DeepCopy()
		wc.Spec.Values, gc.Spec.Values = nil, nil
		want, got = wc, gc
	}
	if !equality.Semantic.DeepEqual(want, got) {
		t.Fatalf("object does not round-trip:\nwant %+v\n got %+v", want, got)
	}
}
