package store

import (
	"net"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on names. MaxNameLength is the longest store name for which every derived name fits its limit
// (docs/design.md, "Names": StatefulSet <name>-postgresql ≤ 52).
const (
	MinNameLength       = 2
	MaxNameLength       = 40
	MaxClusterLength    = 40
	MaxDomainLength     = 253
	MaxTitleLength      = 100 // characters (runes)
	MaxEmailLength      = 254 // RFC 5321 path limit
	MaxLanguageLength   = 20
	MaxRegionNameLength = 100
	MaxVersionLength    = 64
	MaxTenantLength     = 63 // a label value, and a DNS label
)

// dns1123Label is the pattern [a-z0-9]([-a-z0-9]*[a-z0-9])? (without the length limit), as a loop: it is
// checked for every label of every rendered store.
type dns1123 struct{}

func (dns1123) MatchString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

var dns1123Label dns1123

var (
	// semver 2.0.0, as Helm accepts chart versions (no leading "v").
	semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// WordPress locales: en_US, de_DE_formal, pt_BR, ca, zh_CN, de_CH_informal, es_ES…
	wpLocale = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?(_[a-z0-9]+)?$`)
)

// reservedNames may not be store names: they are (or could be confused with) namespaces and hosts the
// platform itself uses.
var reservedNames = map[string]bool{
	"default": true, "flux-system": true, "storefleet": true, "api": true, "admin": true, "www": true,
}

var reservedPrefixes = []string{"kube-", "system-", NamespacePrefix}

// Validate checks every field of s and returns an *Error with code EINVALID listing every problem, or nil.
// Call it on s.WithDefaults(...): defaults are not applied here.
func (s Store) Validate() error {
	var fe fieldErrors
	validateName(&fe, s.Name)

	switch s.Engine {
	case WooCommerce, Medusa:
	case "":
		fe.add("engine", "required", "engine is required (one of woocommerce, medusa)")
	default:
		fe.add("engine", "oneOf", "engine must be one of woocommerce, medusa")
	}
	if _, ok := Plans[s.Plan]; !ok {
		if s.Plan == "" {
			fe.add("plan", "required", "plan is required (one of basic, standard, premium)")
		} else {
			fe.add("plan", "oneOf", "plan must be one of basic, standard, premium")
		}
	}
	switch {
	case s.Cluster == "":
		fe.add("cluster", "required", "cluster is required")
	case len(s.Cluster) > MaxClusterLength:
		fe.add("cluster", "maxLength", "cluster must be at most %d characters", MaxClusterLength)
	case !dns1123Label.MatchString(s.Cluster):
		fe.add("cluster", "dns1123Label", "cluster must be lower-case letters, digits and '-', beginning and ending with a letter or digit")
	}
	validateDomain(&fe, s.Domain)
	_, knownEngine := DefaultVersion[s.Engine]
	switch {
	case s.Version == "" && !knownEngine:
		// The default comes from the engine; its error is reported already.
	case s.Version == "":
		fe.add("version", "required", "version is required")
	case len(s.Version) > MaxVersionLength:
		fe.add("version", "maxLength", "version must be at most %d characters", MaxVersionLength)
	case !semver.MatchString(s.Version):
		fe.add("version", "semver", "version must be a semantic version such as 1.2.3")
	}
	validateSettings(&fe, s.Engine, s.Settings)
	// An empty tenant is valid here: render must still read and write stores from
	// before tenants, and the lifecycle fills in the default before it commits.
	if s.Tenant != "" {
		if rule, msg := ValidateTenant(s.Tenant); rule != "" {
			fe.add("tenant", rule, "%s", msg)
		}
	}
	return fe.err("invalid store")
}

// ValidateTenant checks a tenant name and returns the rule it breaks and why, or
// "" and "". A tenant becomes a Kubernetes label value and a Git trailer, so it is a
// DNS label: the strictest of the places it goes.
func ValidateTenant(t string) (rule, message string) {
	switch {
	case t == "":
		return "required", "tenant is required"
	case len(t) > MaxTenantLength:
		return "maxLength", "tenant must be at most 63 characters"
	case !dns1123Label.MatchString(t):
		return "dns1123Label", "tenant must be lower-case letters, digits and '-', beginning and ending with a letter or digit"
	}
	return "", ""
}

func validateName(fe *fieldErrors, name string) {
	switch {
	case name == "":
		fe.add("name", "required", "name is required")
		return
	case len(name) < MinNameLength:
		fe.add("name", "minLength", "name must be at least %d characters", MinNameLength)
	case len(name) > MaxNameLength:
		fe.add("name", "maxLength", "name must be at most %d characters so that every name derived from it fits", MaxNameLength)
	}
	if !dns1123Label.MatchString(name) {
		fe.add("name", "dns1123Label", "name must be lower-case letters, digits and '-', beginning and ending with a letter or digit")
		return
	}
	if reservedNames[name] {
		fe.add("name", "reserved", "name %q is reserved", name)
		return
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			fe.add("name", "reserved", "names beginning with %q are reserved", p)
			return
		}
	}
}

func validateDomain(fe *fieldErrors, d string) {
	switch {
	case d == "":
		fe.add("domain", "required", "domain is required")
		return
	case len(d) > MaxDomainLength:
		fe.add("domain", "maxLength", "domain must be at most %d characters", MaxDomainLength)
		return
	}
	for _, l := range strings.Split(d, ".") {
		if len(l) > 63 || !dns1123Label.MatchString(l) {
			fe.add("domain", "dns1123Subdomain", "domain must be a lower-case DNS name: labels of letters, digits and '-' (at most 63 each) separated by '.'")
			return
		}
	}
	if net.ParseIP(d) != nil {
		fe.add("domain", "notIP", "domain must be a DNS name, not an IP address")
	}
}

func validateSettings(fe *fieldErrors, e Engine, s Settings) {
	validateText(fe, "settings.title", s.Title, MaxTitleLength, true)

	switch {
	case s.AdminEmail == "":
		fe.add("settings.adminEmail", "required", "adminEmail is required")
	case len(s.AdminEmail) > MaxEmailLength:
		fe.add("settings.adminEmail", "maxLength", "adminEmail must be at most %d characters", MaxEmailLength)
	default:
		// net/mail accepts "Name <addr>" too; only a bare addr-spec (what it gives back as Address) is an
		// email address here.
		a, err := mail.ParseAddress(s.AdminEmail)
		if err != nil || a.Address != s.AdminEmail || a.Name != "" || !utf8.ValidString(s.AdminEmail) || hasControl(s.AdminEmail) {
			fe.add("settings.adminEmail", "email", "adminEmail must be an email address such as owner@example.com")
		}
	}

	switch {
	case s.Currency == "":
		fe.add("settings.currency", "required", "currency is required")
	case !currencies[s.Currency]:
		fe.add("settings.currency", "iso4217", "currency must be an active ISO 4217 code in upper case, such as EUR")
	}
	switch {
	case s.Country == "":
		fe.add("settings.country", "required", "country is required")
	case !countries[s.Country]:
		fe.add("settings.country", "iso3166", "country must be an ISO 3166-1 alpha-2 code in upper case, such as DE")
	}

	switch e {
	case WooCommerce:
		switch {
		case s.Language == "":
			fe.add("settings.language", "required", "language is required for woocommerce")
		case len(s.Language) > MaxLanguageLength:
			fe.add("settings.language", "maxLength", "language must be at most %d characters", MaxLanguageLength)
		case !wpLocale.MatchString(s.Language):
			fe.add("settings.language", "wpLocale", "language must be a WordPress locale such as en_US or de_DE_formal")
		}
	case Medusa:
		if s.Language != "" {
			fe.add("settings.language", "notForEngine", "language applies to woocommerce only")
		}
	}
	switch e {
	case Medusa:
		validateText(fe, "settings.regionName", s.RegionName, MaxRegionNameLength, true)
	case WooCommerce:
		if s.RegionName != "" {
			fe.add("settings.regionName", "notForEngine", "regionName applies to medusa only")
		}
	}
}

// validateText checks a free text: any Unicode, bounded, no control characters (they have no place in a
// title and would only smuggle line breaks into logs and headers).
func validateText(fe *fieldErrors, field, v string, max int, required bool) {
	name := field[strings.LastIndex(field, ".")+1:]
	switch {
	case v == "":
		if required {
			fe.add(field, "required", "%s is required", name)
		}
	case !utf8.ValidString(v):
		fe.add(field, "utf8", "%s must be valid UTF-8", name)
	case utf8.RuneCountInString(v) > max:
		fe.add(field, "maxLength", "%s must be at most %d characters", name, max)
	case hasControl(v):
		fe.add(field, "noControl", "%s must not contain control characters", name)
	case strings.TrimSpace(v) == "":
		fe.add(field, "required", "%s must not be blank", name)
	}
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return true
		}
	}
	return false
}

// ValidateUpdate checks that a store may change from old to new (both complete and valid): the name, engine
// and cluster are fixed for a store's life, and no volume may shrink. It returns an *Error with code
// ECONFLICT naming the fields, or nil.
func ValidateUpdate(old, new Store) error {
	var fe fieldErrors
	if old.Name != new.Name {
		fe.add("name", "immutable", "name cannot change")
	}
	if old.Engine != new.Engine {
		fe.add("engine", "immutable", "engine cannot change (the data of one engine does not fit the other)")
	}
	if old.Cluster != new.Cluster {
		fe.add("cluster", "immutable", "cluster cannot change (moving a store means moving its data)")
	}
	if StorageShrinks(old.Plan, new.Plan) {
		fe.add("plan", "storageShrink", "plan %s has less storage than %s; volumes cannot shrink", new.Plan, old.Plan)
	}
	if len(fe) == 0 {
		return nil
	}
	return &Error{Code: ECONFLICT, Message: "store cannot be changed this way", Fields: fe}
}
