package store

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func valid(e Engine) Store {
	return Store{Name: "shop", Engine: e, Plan: Basic, Settings: Settings{AdminEmail: "owner@example.com"}}.WithDefaults("")
}

func TestDefaults(t *testing.T) {
	s := valid(WooCommerce)
	want := Store{Name: "shop", Engine: WooCommerce, Plan: Basic, Cluster: "local", Domain: "shop.stores.localhost",
		Version: "0.1.0", Settings: Settings{Title: "shop", AdminEmail: "owner@example.com", Currency: "USD",
			Country: "US", Language: "en_US"}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", s, want)
	}
	m := valid(Medusa)
	if m.Settings.RegionName != DefaultRegionName || m.Settings.Language != "" {
		t.Fatalf("medusa defaults: %+v", m.Settings)
	}
	if d := (Store{Name: "x1"}).WithDefaults("example.com").Domain; d != "x1.example.com" {
		t.Fatalf("domain with base: %q", d)
	}
	for _, e := range Engines {
		if err := valid(e).Validate(); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
	}
}

func TestValidateListsEveryError(t *testing.T) {
	s := Store{Name: "Kube_X", Engine: "magento", Plan: "gold", Cluster: "Local", Domain: "-bad.example",
		Version: "v1", Settings: Settings{Title: "a\nb", AdminEmail: "Owner <o@example.com>", Currency: "eur",
			Country: "XX", Language: "english", RegionName: "EU"}}
	err := s.Validate()
	if ErrorCode(err) != EINVALID {
		t.Fatalf("code %q, err %v", ErrorCode(err), err)
	}
	got := map[string]string{}
	for _, f := range FieldErrors(err) {
		if _, dup := got[f.Field]; dup {
			t.Errorf("field %s reported twice", f.Field)
		}
		got[f.Field] = f.Rule
		if f.Message == "" {
			t.Errorf("field %s: empty message", f.Field)
		}
	}
	want := map[string]string{
		"name": "dns1123Label", "engine": "oneOf", "plan": "oneOf", "cluster": "dns1123Label",
		"domain": "dns1123Subdomain", "version": "semver", "settings.title": "noControl",
		"settings.adminEmail": "email", "settings.currency": "iso4217", "settings.country": "iso3166",
	}
	// With an unknown engine, engine-specific fields are not judged.
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("field errors:\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(err.Error(), "settings.currency") {
		t.Fatalf("Error() does not name the fields: %s", err)
	}
}

func TestValidateRules(t *testing.T) {
	long := strings.Repeat("a", 41)
	tests := []struct {
		name  string
		mod   func(*Store)
		field string
		rule  string
	}{
		{"empty name", func(s *Store) { s.Name = "" }, "name", "required"},
		{"short name", func(s *Store) { s.Name = "a" }, "name", "minLength"},
		{"long name", func(s *Store) { s.Name = long }, "name", "maxLength"},
		{"upper name", func(s *Store) { s.Name = "Shop" }, "name", "dns1123Label"},
		{"trailing dash", func(s *Store) { s.Name = "shop-" }, "name", "dns1123Label"},
		{"reserved default", func(s *Store) { s.Name = "default" }, "name", "reserved"},
		{"reserved flux-system", func(s *Store) { s.Name = "flux-system" }, "name", "reserved"},
		{"reserved kube-", func(s *Store) { s.Name = "kube-public" }, "name", "reserved"},
		{"reserved system-", func(s *Store) { s.Name = "system-x" }, "name", "reserved"},
		{"reserved store-", func(s *Store) { s.Name = "store-x" }, "name", "reserved"},
		{"reserved api", func(s *Store) { s.Name = "api" }, "name", "reserved"},
		{"no engine", func(s *Store) { s.Engine = "" }, "engine", "required"},
		{"no plan", func(s *Store) { s.Plan = "" }, "plan", "required"},
		{"cluster long", func(s *Store) { s.Cluster = long }, "cluster", "maxLength"},
		{"cluster path", func(s *Store) { s.Cluster = "../x" }, "cluster", "dns1123Label"},
		{"domain ip", func(s *Store) { s.Domain = "10.0.0.1" }, "domain", "notIP"},
		{"domain upper", func(s *Store) { s.Domain = "Shop.example.com" }, "domain", "dns1123Subdomain"},
		{"domain wildcard", func(s *Store) { s.Domain = "*.example.com" }, "domain", "dns1123Subdomain"},
		{"domain empty label", func(s *Store) { s.Domain = "a..b" }, "domain", "dns1123Subdomain"},
		{"domain long label", func(s *Store) { s.Domain = strings.Repeat("a", 64) + ".com" }, "domain", "dns1123Subdomain"},
		{"domain long", func(s *Store) { s.Domain = strings.Repeat("a.", 127) + "ab" }, "domain", "maxLength"},
		{"version v", func(s *Store) { s.Version = "v0.1.0" }, "version", "semver"},
		{"version range", func(s *Store) { s.Version = ">=0.1.0" }, "version", "semver"},
		{"title blank", func(s *Store) { s.Settings.Title = "  " }, "settings.title", "required"},
		{"title long", func(s *Store) { s.Settings.Title = strings.Repeat("é", 101) }, "settings.title", "maxLength"},
		{"title tab", func(s *Store) { s.Settings.Title = "a\tb" }, "settings.title", "noControl"},
		{"title bad utf8", func(s *Store) { s.Settings.Title = "a\xffb" }, "settings.title", "utf8"},
		{"email missing", func(s *Store) { s.Settings.AdminEmail = "" }, "settings.adminEmail", "required"},
		{"email no at", func(s *Store) { s.Settings.AdminEmail = "owner" }, "settings.adminEmail", "email"},
		{"email list", func(s *Store) { s.Settings.AdminEmail = "a@b.c, d@e.f" }, "settings.adminEmail", "email"},
		{"email newline", func(s *Store) { s.Settings.AdminEmail = "a@b.c\nX: y" }, "settings.adminEmail", "email"},
		{"email long", func(s *Store) { s.Settings.AdminEmail = strings.Repeat("a", 250) + "@b.cd" }, "settings.adminEmail", "maxLength"},
		{"currency lower", func(s *Store) { s.Settings.Currency = "usd" }, "settings.currency", "iso4217"},
		{"currency metal", func(s *Store) { s.Settings.Currency = "XAU" }, "settings.currency", "iso4217"},
		{"currency withdrawn", func(s *Store) { s.Settings.Currency = "HRK" }, "settings.currency", "iso4217"},
		{"country alpha3", func(s *Store) { s.Settings.Country = "DEU" }, "settings.country", "iso3166"},
		{"language", func(s *Store) { s.Settings.Language = "en-US" }, "settings.language", "wpLocale"},
		{"regionName on woo", func(s *Store) { s.Settings.RegionName = "EU" }, "settings.regionName", "notForEngine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid(WooCommerce)
			tt.mod(&s)
			fes := FieldErrors(s.Validate())
			if len(fes) != 1 || fes[0].Field != tt.field || fes[0].Rule != tt.rule {
				t.Fatalf("want exactly %s/%s, got %v", tt.field, tt.rule, fes)
			}
		})
	}
}

func TestValidateMedusa(t *testing.T) {
	s := valid(Medusa)
	s.Settings.Language = "de_DE"
	s.Settings.RegionName = "Europe\u0085"
	fes := FieldErrors(s.Validate())
	want := []FieldError{
		{Field: "settings.language", Rule: "notForEngine"},
		{Field: "settings.regionName", Rule: "noControl"},
	}
	if len(fes) != len(want) {
		t.Fatalf("got %v", fes)
	}
	for i := range want {
		if fes[i].Field != want[i].Field || fes[i].Rule != want[i].Rule {
			t.Fatalf("got %v", fes)
		}
	}
}

func TestAccepts(t *testing.T) {
	for _, mod := range []func(*Store){
		func(s *Store) { s.Name = "ab" },
		func(s *Store) { s.Name = strings.Repeat("a", 40) },
		func(s *Store) { s.Name = "0shop-1" },
		func(s *Store) { s.Name = "kube" },
		func(s *Store) { s.Settings.Title = "Ünïcødé Shop 🛒 — 商店" },
		func(s *Store) { s.Settings.Language = "de_DE_formal" },
		func(s *Store) { s.Settings.Language = "ca" },
		func(s *Store) { s.Version = "1.2.3-rc.1+build.5" },
		func(s *Store) { s.Domain = "shop" },
		func(s *Store) { s.Settings.AdminEmail = "first.last+tag@sub.example.co.uk" },
		func(s *Store) { s.Settings.Currency = "XCG"; s.Settings.Country = "CW" },
	} {
		s := valid(WooCommerce)
		mod(&s)
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

func TestTables(t *testing.T) {
	if len(countries) != 249 {
		t.Errorf("ISO 3166-1 has 249 alpha-2 codes, table has %d", len(countries))
	}
	for c := range currencies {
		if len(c) != 3 || strings.ToUpper(c) != c {
			t.Errorf("currency %q", c)
		}
	}
	for _, c := range []string{"EUR", "USD", "GBP", "JPY", "CHF", "INR", "BRL", "ZWG", "SLE", "VED"} {
		if !IsCurrency(c) {
			t.Errorf("missing currency %s", c)
		}
	}
}

func TestPlanQuotaCoversComponents(t *testing.T) {
	prev := int64(0)
	for _, n := range PlanNames {
		p := Plans[n]
		if p.Name != n || p.Replicas < 1 {
			t.Fatalf("plan %s: name %q replicas %d", n, p.Name, p.Replicas)
		}
		sum := func(pick func(Resources) string, conv func(string) int64) int64 {
			var total int64
			for _, r := range []Resources{p.Database, p.Cache} {
				total += conv(pick(r))
			}
			return total + int64(p.Replicas+1)*conv(pick(p.App))
		}
		for _, c := range []struct {
			what  string
			need  int64
			quota int64
		}{
			{"requests.cpu", sum(func(r Resources) string { return r.Requests.CPU }, MilliCPU), MilliCPU(p.Quota.Requests.CPU)},
			{"limits.cpu", sum(func(r Resources) string { return r.Limits.CPU }, MilliCPU), MilliCPU(p.Quota.Limits.CPU)},
			{"requests.memory", sum(func(r Resources) string { return r.Requests.Memory }, Bytes), Bytes(p.Quota.Requests.Memory)},
			{"limits.memory", sum(func(r Resources) string { return r.Limits.Memory }, Bytes), Bytes(p.Quota.Limits.Memory)},
			{"storage", Bytes(p.Storage.Uploads) + Bytes(p.Storage.Database), Bytes(p.Quota.Storage)},
		} {
			if c.need <= 0 || c.quota < c.need {
				t.Errorf("plan %s: quota %s %d does not cover %d", n, c.what, c.quota, c.need)
			}
		}
		for _, r := range []Resources{p.App, p.Database, p.Cache} {
			if MilliCPU(r.Requests.CPU) > MilliCPU(r.Limits.CPU) || Bytes(r.Requests.Memory) > Bytes(r.Limits.Memory) {
				t.Errorf("plan %s: requests above limits in %+v", n, r)
			}
		}
		if p.Quota.PVCs < 2 || p.Quota.Pods < p.Replicas+4 {
			t.Errorf("plan %s: quota counts %+v", n, p.Quota)
		}
		for _, q := range []string{p.Limits.Default.Memory, p.Limits.DefaultRequest.Memory} {
			if Bytes(q) <= 0 {
				t.Errorf("plan %s: limit range %q", n, q)
			}
		}
		if s := Bytes(p.Storage.Uploads) + Bytes(p.Storage.Database); s < prev {
			t.Errorf("plan %s has less storage than the plan before it", n)
		} else {
			prev = s
		}
	}
}

func TestStorageShrinks(t *testing.T) {
	for _, c := range []struct {
		from, to PlanName
		want     bool
	}{
		{Basic, Standard, false}, {Basic, Premium, false}, {Standard, Premium, false}, {Basic, Basic, false},
		{Standard, Basic, true}, {Premium, Standard, true}, {Premium, Basic, true}, {Basic, "gold", true},
	} {
		if got := StorageShrinks(c.from, c.to); got != c.want {
			t.Errorf("StorageShrinks(%s, %s) = %v", c.from, c.to, got)
		}
	}
	old := valid(WooCommerce)
	old.Plan = Premium
	nw := old
	nw.Plan = Basic
	nw.Engine = Medusa
	err := ValidateUpdate(old, nw)
	if ErrorCode(err) != ECONFLICT || len(FieldErrors(err)) != 2 {
		t.Fatalf("ValidateUpdate: %v", err)
	}
	nw = old
	nw.Plan = Premium
	nw.Settings.Title = "New"
	if err := ValidateUpdate(old, nw); err != nil {
		t.Fatal(err)
	}
}

func TestErrorCode(t *testing.T) {
	if ErrorCode(nil) != "" || ErrorCode(errors.New("x")) != EINTERNAL || ErrorMessage(errors.New("secret")) == "secret" {
		t.Fatal("ErrorCode/ErrorMessage of plain errors")
	}
	e := Errorf(ENOTFOUND, "store %q not found", "x")
	wrapped := errors.Join(errors.New("ctx"), e)
	if ErrorCode(wrapped) != ENOTFOUND || ErrorMessage(wrapped) != `store "x" not found` {
		t.Fatal("wrapped error code")
	}
}

func TestBytes(t *testing.T) {
	for q, want := range map[string]int64{"512Mi": 512 << 20, "10Gi": 10 << 30, "1Ti": 1 << 40, "10G": -1, "": -1, "-1Gi": -1} {
		if got := Bytes(q); got != want {
			t.Errorf("Bytes(%q) = %d", q, got)
		}
	}
	for q, want := range map[string]int64{"250m": 250, "2": 2000, "x": -1} {
		if got := MilliCPU(q); got != want {
			t.Errorf("MilliCPU(%q) = %d", q, got)
		}
	}
}

func TestDNS1123LabelMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	for _, s := range []string{"", "a", "-", "a-", "-a", "a-b", "a--b", "A", "a.b", "0", "0-0", "ab_c", "é", "a\n", "shop-1"} {
		if got, want := dns1123Label.MatchString(s), re.MatchString(s); got != want {
			t.Errorf("%q: %v, pattern says %v", s, got, want)
		}
	}
}
