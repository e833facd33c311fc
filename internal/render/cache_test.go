package render

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// The files served from templates are byte for byte what encode gives for the
// store's own objects, for names YAML writes plain and names it must quote (which
// take the encoded path), for tenants that hold the placeholder, in every state.
func TestCachedFilesMatchEncode(t *testing.T) {
	names := []string{"shop", "ab", "123", "1e3", "0x1f", "yes", "no", "on", "off", "true", "null",
		"store", placeholder, otherPlaceholder, strings.Repeat("x", 40), "a-b-c"}
	tenants := []string{"", "acme", placeholder, "x" + placeholder}
	for _, st := range []store.State{store.StateActive, store.StateRetained, store.StatePurging} {
		for _, e := range store.Engines {
			for _, p := range store.PlanNames {
				for _, name := range names {
					for _, tenant := range tenants {
						s := shop(e, p)
						s.Name, s.Tenant = name, tenant
						for i := 0; i < 2; i++ { // the first builds the template, the second uses it
							r, objs, err := objects(s, LocalOptions(), st)
							if err != nil {
								t.Fatalf("%s %q: %v", st, name, err)
							}
							files, err := r.folder(objs)
							if err != nil {
								t.Fatal(err)
							}
							for _, f := range files {
								base := path.Base(f.Path)
								if base == KustomizationFile {
									continue
								}
								want, err := encode(objs[base]...)
								if err != nil {
									t.Fatal(err)
								}
								if !bytes.Equal(f.Content, want) {
									t.Fatalf("%s %s %s %q tenant %q: %s differs from encode:\n%s\n---- encode:\n%s", st, e, p, name, tenant, base, f.Content, want)
								}
							}
						}
					}
				}
			}
		}
	}
	if plainScalar("123") || plainScalar("yes") || !plainScalar("shop") {
		t.Fatal("plainScalar misjudges")
	}
}
