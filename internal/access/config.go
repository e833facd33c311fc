package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// Config is the access configuration file: which authenticators are on, how the
// identities they establish map to tenants and roles, and the limits. serve builds
// the authenticator adapters from its sections; the policy and the decorator take
// the rest.
type Config struct {
	// DefaultTenant is the tenant of a store whose files name none.
	DefaultTenant string
	OIDC          *OIDC       // nil: no OIDC bearer tokens
	APITokens     *APITokens  // nil: no API tokens
	Kubernetes    *Kubernetes // nil: no Kubernetes tokens
	Rules         []Rule
	Limits        Limits
}

// OIDC configures the verification of JWTs from one OpenID provider; the fields are
// those of oidcauth.Config.
type OIDC struct {
	Issuer   string
	Audience string
	// ClockSkew is how far expiry and not-before may be off; bounded so that an
	// expired token cannot be stretched into a long-lived one.
	ClockSkew    time.Duration
	Algorithms   []string
	SubjectClaim string
	GroupsClaim  string
}

// APITokens names the file of API token hashes (apitoken.Open). A relative path in
// the configuration file is taken relative to that file's folder.
type APITokens struct {
	File string
}

// Kubernetes turns on Kubernetes tokens checked by TokenReview.
type Kubernetes struct {
	TokenReview bool
	// Audiences the token must be meant for; empty means the API server's own.
	Audiences []string
}

// Rule grants Role in Tenants to every identity whose subject is one of Subjects or
// that is in one of Groups. Rules add up: a principal holds the strongest role any
// matching rule (or its own API token) grants in each tenant, and nothing denies.
type Rule struct {
	Subjects []string
	Groups   []string
	// Method, when set, restricts the rule to identities established that way, so a
	// group name from one issuer cannot match a rule written for another's.
	Method  store.AuthMethod
	Tenants []string // tenant names, or store.AllTenants
	Role    store.Role
	// ActAs lets the principal name the actor it acts for (X-Actor).
	ActAs bool
}

// Limits bound what a principal or a tenant may do.
type Limits struct {
	ReadsPerMinute  int // per principal, per replica
	WritesPerMinute int // per principal, per replica
	StoresPerTenant int // stores a tenant may hold, deleted ones included
	RemovalsPerHour int // deletes and purges in the whole fleet before the guard needs admin and force
}

// Defaults of the optional settings.
const (
	DefaultSubjectClaim    = "sub"
	DefaultGroupsClaim     = "groups"
	DefaultClockSkew       = 30 * time.Second
	MaxClockSkew           = 5 * time.Minute
	DefaultReadsPerMinute  = 600
	DefaultWritesPerMinute = 60
	DefaultStoresPerTenant = 500
	DefaultRemovalsPerHour = 10
)

// DefaultAlgorithms are the JWT signature algorithms accepted when none are named.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// Algorithms are the JWT signature algorithms that may be named: asymmetric ones
// only, since the issuer shares no secret with Storefleet (and "none" is no
// signature at all).
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Load reads and validates the configuration file at path. Every problem is
// reported at once, each naming its field (rules[2].role).
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("access config: %w", err)
	}
	c, err := Parse(b)
	if c != nil && c.APITokens != nil && c.APITokens.File != "" && !filepath.IsAbs(c.APITokens.File) {
		c.APITokens.File = filepath.Join(filepath.Dir(path), c.APITokens.File)
	}
	if err != nil {
		var e *store.Error
		if errors.As(err, &e) {
			e.Message = "invalid access config " + path
		}
		return nil, err
	}
	return c, nil
}

// Parse reads a configuration from YAML, fills in the defaults and validates it.
func Parse(b []byte) (*Config, error) {
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, &store.Error{Code: store.EINVALID, Message: "invalid access config",
			Fields: []store.FieldError{{Field: "", Rule: "yaml", Message: err.Error()}}}
	}
	var root any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, &store.Error{Code: store.EINVALID, Message: "invalid access config",
			Fields: []store.FieldError{{Field: "", Rule: "yaml", Message: err.Error()}}}
	}
	d := &decoder{}
	c := d.config(root)
	errs := d.errs
	// A field that could not be read is reported once, as unreadable, not again as
	// missing or out of range.
	for _, f := range validate(c) {
		if !d.failed(f.Field) {
			errs = append(errs, f)
		}
	}
	if len(errs) > 0 {
		return c, &store.Error{Code: store.EINVALID, Message: "invalid access config", Fields: errs}
	}
	return c, nil
}

// Validate checks a configuration (one built in code too) and returns an EINVALID
// *store.Error listing every problem, or nil.
func (c *Config) Validate() error {
	if errs := validate(c); len(errs) > 0 {
		return &store.Error{Code: store.EINVALID, Message: "invalid access config", Fields: errs}
	}
	return nil
}

func validate(c *Config) []store.FieldError {
	var fe []store.FieldError
	add := func(field, rule, format string, args ...any) {
		fe = append(fe, store.FieldError{Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	if c.DefaultTenant == "" {
		add("defaultTenant", "required", "must name a tenant")
	} else if !ValidTenant(c.DefaultTenant) {
		add("defaultTenant", "dns1123Label", "must be a DNS label: at most 63 lower-case letters, digits and '-', beginning and ending with a letter or digit")
	}
	if o := c.OIDC; o != nil {
		if msg := issuerProblem(o.Issuer); msg != "" {
			rule := "https"
			if o.Issuer == "" {
				rule = "required"
			}
			add("oidc.issuer", rule, "%s", msg)
		}
		if o.Audience == "" {
			add("oidc.audience", "required", "must name the audience (aud) the tokens are issued for")
		}
		if o.ClockSkew < 0 || o.ClockSkew > MaxClockSkew {
			add("oidc.clockSkew", "range", "must be between 0s and %s", MaxClockSkew)
		}
		if len(o.Algorithms) == 0 {
			add("oidc.algorithms", "required", "must name at least one of %s", strings.Join(Algorithms, ", "))
		}
		for i, a := range o.Algorithms {
			if !slices.Contains(Algorithms, a) {
				add(fmt.Sprintf("oidc.algorithms[%d]", i), "oneOf", "must be one of %s (asymmetric signatures only)", strings.Join(Algorithms, ", "))
			}
		}
		if o.SubjectClaim == "" {
			add("oidc.subjectClaim", "required", "must name the claim holding the subject")
		}
		if o.GroupsClaim == "" {
			add("oidc.groupsClaim", "required", "must name the claim holding the groups")
		}
	}
	if t := c.APITokens; t != nil && t.File == "" {
		add("apiTokens.file", "required", "must name the file of API token hashes")
	}
	if k := c.Kubernetes; k != nil {
		for i, a := range k.Audiences {
			if a == "" {
				add(fmt.Sprintf("kubernetes.audiences[%d]", i), "required", "must not be empty")
			}
		}
	}
	if c.OIDC == nil && c.APITokens == nil && (c.Kubernetes == nil || !c.Kubernetes.TokenReview) {
		add("oidc|apiTokens|kubernetes.tokenReview", "authenticator", "at least one authenticator must be configured")
	}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if len(r.Subjects) == 0 && len(r.Groups) == 0 {
			add(p, "required", "a rule must name subjects or groups")
		}
		for j, s := range r.Subjects {
			if s == "" {
				add(fmt.Sprintf("%s.subjects[%d]", p, j), "required", "must not be empty")
			}
		}
		for j, g := range r.Groups {
			if g == "" {
				add(fmt.Sprintf("%s.groups[%d]", p, j), "required", "must not be empty")
			}
		}
		switch r.Method {
		case "", store.AuthOIDC, store.AuthToken, store.AuthKubernetes:
		default:
			add(p+".method", "oneOf", "must be one of oidc, token, kubernetes")
		}
		if len(r.Tenants) == 0 {
			add(p+".tenants", "required", "must name at least one tenant, or \"*\" for every tenant")
		}
		for j, t := range r.Tenants {
			if t != store.AllTenants && !ValidTenant(t) {
				add(fmt.Sprintf("%s.tenants[%d]", p, j), "tenant", "must be \"*\" or a DNS label: at most 63 lower-case letters, digits and '-'")
			}
		}
		switch {
		case r.Role == "":
			add(p+".role", "required", "must be one of viewer, editor, admin")
		case !slices.Contains(store.Roles, r.Role):
			add(p+".role", "oneOf", "must be one of viewer, editor, admin")
		}
	}
	for _, l := range []struct {
		field string
		v     int
	}{
		{"limits.readsPerMinute", c.Limits.ReadsPerMinute}, {"limits.writesPerMinute", c.Limits.WritesPerMinute},
		{"limits.storesPerTenant", c.Limits.StoresPerTenant}, {"limits.removalsPerHour", c.Limits.RemovalsPerHour},
	} {
		if l.v <= 0 {
			add(l.field, "positive", "must be a positive number")
		}
	}
	return fe
}

// issuerProblem says what is wrong with an issuer URL, "" when nothing. Plain http
// is allowed only on a loopback host: a token verified against keys fetched in the
// clear could be forged by anyone on the path.
func issuerProblem(issuer string) string {
	if issuer == "" {
		return "must name the OpenID provider's issuer URL"
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "must be an absolute https URL without query, fragment or credentials"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if loopback(u.Hostname()) {
			return ""
		}
		return "must be https (http only for a loopback host)"
	default:
		return "must be https (http only for a loopback host)"
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidTenant reports whether t may name a tenant (store.ValidateTenant); never
// store.AllTenants, which only a grant may name.
func ValidTenant(t string) bool {
	rule, _ := store.ValidateTenant(t)
	return rule == ""
}

// decoder reads the generic YAML tree into a Config, collecting every problem with
// its path instead of stopping at the first, and refusing unknown fields (a
// misspelt key must not silently leave a limit or a rule out).
type decoder struct {
	errs []store.FieldError
}

func (d *decoder) fail(path, rule, format string, args ...any) {
	d.errs = append(d.errs, store.FieldError{Field: path, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// failed reports whether path, or a field under it, could not be read.
func (d *decoder) failed(path string) bool {
	for _, e := range d.errs {
		if e.Field == path || strings.HasPrefix(path, e.Field+".") || strings.HasPrefix(path, e.Field+"[") {
			return true
		}
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object returns v as a mapping with only the given keys; nil when v is absent.
func (d *decoder) object(v any, path string, keys ...string) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(path, "type", "must be a mapping")
		return nil
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		d.fail(join(path, k), "unknown", "unknown field (known: %s)", strings.Join(keys, ", "))
	}
	return m
}

func (d *decoder) str(m map[string]any, key, path string) (string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		d.fail(join(path, key), "type", "must be a string")
		return "", false
	}
	return s, true
}

func (d *decoder) strs(m map[string]any, key, path string) []string {
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		d.fail(join(path, key), "type", "must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			d.fail(fmt.Sprintf("%s[%d]", join(path, key), i), "type", "must be a string")
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) boolean(m map[string]any, key, path string) bool {
	v, ok := m[key]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		d.fail(join(path, key), "type", "must be true or false")
	}
	return b
}

// integer returns the value at key, or def when absent.
func (d *decoder) integer(m map[string]any, key, path string, def int) int {
	v, ok := m[key]
	if !ok || v == nil {
		return def
	}
	n, ok := v.(json.Number)
	if !ok {
		d.fail(join(path, key), "type", "must be a whole number")
		return 0
	}
	i, err := n.Int64()
	if err != nil || i > 1<<31 || i < -(1<<31) {
		d.fail(join(path, key), "type", "must be a whole number")
		return 0
	}
	return int(i)
}

func (d *decoder) config(root any) *Config {
	c := &Config{DefaultTenant: store.DefaultTenant}
	m := d.object(root, "", "defaultTenant", "oidc", "apiTokens", "kubernetes", "rules", "limits")
	if root != nil && m == nil {
		return c
	}
	if s, ok := d.str(m, "defaultTenant", ""); ok {
		c.DefaultTenant = s
	}
	if o := d.object(m["oidc"], "oidc", "issuer", "audience", "clockSkew", "algorithms", "subjectClaim", "groupsClaim"); o != nil {
		c.OIDC = &OIDC{ClockSkew: DefaultClockSkew, Algorithms: slices.Clone(DefaultAlgorithms),
			SubjectClaim: DefaultSubjectClaim, GroupsClaim: DefaultGroupsClaim}
		c.OIDC.Issuer, _ = d.str(o, "issuer", "oidc")
		c.OIDC.Audience, _ = d.str(o, "audience", "oidc")
		if s, ok := d.str(o, "clockSkew", "oidc"); ok {
			if dur, err := time.ParseDuration(s); err != nil {
				d.fail("oidc.clockSkew", "duration", "must be a duration such as 30s")
			} else {
				c.OIDC.ClockSkew = dur
			}
		}
		if _, ok := o["algorithms"]; ok {
			c.OIDC.Algorithms = d.strs(o, "algorithms", "oidc")
		}
		if s, ok := d.str(o, "subjectClaim", "oidc"); ok {
			c.OIDC.SubjectClaim = s
		}
		if s, ok := d.str(o, "groupsClaim", "oidc"); ok {
			c.OIDC.GroupsClaim = s
		}
	}
	if t := d.object(m["apiTokens"], "apiTokens", "file"); t != nil {
		c.APITokens = &APITokens{}
		c.APITokens.File, _ = d.str(t, "file", "apiTokens")
	}
	if k := d.object(m["kubernetes"], "kubernetes", "tokenReview", "audiences"); k != nil {
		c.Kubernetes = &Kubernetes{TokenReview: d.boolean(k, "tokenReview", "kubernetes"), Audiences: d.strs(k, "audiences", "kubernetes")}
	}
	if v, ok := m["rules"]; ok && v != nil {
		l, ok := v.([]any)
		if !ok {
			d.fail("rules", "type", "must be a list of rules")
		}
		for i, e := range l {
			p := fmt.Sprintf("rules[%d]", i)
			r := d.object(e, p, "subjects", "groups", "method", "tenants", "role", "actAs")
			if r == nil {
				if e == nil {
					d.fail(p, "type", "must be a mapping")
				}
				c.Rules = append(c.Rules, Rule{})
				continue
			}
			rule := Rule{Subjects: d.strs(r, "subjects", p), Groups: d.strs(r, "groups", p), Tenants: d.strs(r, "tenants", p),
				ActAs: d.boolean(r, "actAs", p)}
			s, _ := d.str(r, "method", p)
			rule.Method = store.AuthMethod(s)
			s, _ = d.str(r, "role", p)
			rule.Role = store.Role(s)
			c.Rules = append(c.Rules, rule)
		}
	}
	l := d.object(m["limits"], "limits", "readsPerMinute", "writesPerMinute", "storesPerTenant", "removalsPerHour")
	c.Limits = Limits{
		ReadsPerMinute:  d.integer(l, "readsPerMinute", "limits", DefaultReadsPerMinute),
		WritesPerMinute: d.integer(l, "writesPerMinute", "limits", DefaultWritesPerMinute),
		StoresPerTenant: d.integer(l, "storesPerTenant", "limits", DefaultStoresPerTenant),
		RemovalsPerHour: d.integer(l, "removalsPerHour", "limits", DefaultRemovalsPerHour),
	}
	return c
}
