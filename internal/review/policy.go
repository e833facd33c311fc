package review

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// Policy is a list of rules; a change needs review when any rule matches it. A rule
// matches when each of its lists that is set contains the change's value: the lists
// narrow, the rules widen.
//
//	rules:
//	  - name: premium-plans
//	    plans: [premium]
//	  - name: every-purge
//	    actions: [purge]
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule is one condition that sends a change to review.
type Rule struct {
	// Name says why, for the operator reading the file and the pull request's body.
	Name     string   `json:"name"`
	Actions  []string `json:"actions,omitempty"`
	Plans    []string `json:"plans,omitempty"`
	Engines  []string `json:"engines,omitempty"`
	Tenants  []string `json:"tenants,omitempty"`
	Clusters []string `json:"clusters,omitempty"`
}

var _ store.ReviewPolicy = (*Policy)(nil)

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("review policy: %w", err)
	}
	p, err := Parse(b)
	if e, ok := err.(*store.Error); ok {
		e.Message = "invalid review policy " + path
	}
	return p, err
}

// Parse reads a policy from YAML and validates it: every problem is reported at
// once, each naming its field and rule.
func Parse(b []byte) (*Policy, error) {
	bad := func(rule, msg string) error {
		return &store.Error{Code: store.EINVALID, Message: "invalid review policy",
			Fields: []store.FieldError{{Field: "", Rule: rule, Message: msg}}}
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, bad("yaml", err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	// A misspelt key ("plan:" for "plans:") would otherwise widen a rule to every
	// plan, or drop it silently.
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, bad("schema", err.Error())
	}
	if errs := p.validate(); len(errs) > 0 {
		return nil, &store.Error{Code: store.EINVALID, Message: "invalid review policy", Fields: errs}
	}
	return &p, nil
}

func (p *Policy) validate() []store.FieldError {
	var errs []store.FieldError
	names := map[string]bool{}
	for i, r := range p.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			errs = append(errs, store.FieldError{Field: at + ".name", Rule: "required", Message: "every rule needs a name"})
		case names[r.Name]:
			errs = append(errs, store.FieldError{Field: at + ".name", Rule: "unique", Message: "rule " + r.Name + " is named twice"})
		}
		names[r.Name] = true
		if len(r.Actions)+len(r.Plans)+len(r.Engines)+len(r.Tenants)+len(r.Clusters) == 0 {
			// Valid, but say it: a rule without conditions reviews every change,
			// which must be meant, not a list left empty by mistake.
			errs = append(errs, store.FieldError{Field: at, Rule: "conditions",
				Message: "a rule needs at least one of actions, plans, engines, tenants, clusters (to review everything, list every action)"})
		}
		errs = append(errs, oneOf(at+".actions", r.Actions, []string{string(store.ActionCreate), string(store.ActionUpdate), string(store.ActionDelete), string(store.ActionPurge)})...)
		errs = append(errs, oneOf(at+".plans", r.Plans, strs(store.PlanNames))...)
		errs = append(errs, oneOf(at+".engines", r.Engines, strs(store.Engines))...)
		for j, t := range r.Tenants {
			if rule, msg := store.ValidateTenant(t); rule != "" {
				errs = append(errs, store.FieldError{Field: fmt.Sprintf("%s.tenants[%d]", at, j), Rule: rule, Message: msg})
			}
		}
		for j, c := range r.Clusters {
			if c == "" {
				errs = append(errs, store.FieldError{Field: fmt.Sprintf("%s.clusters[%d]", at, j), Rule: "required", Message: "a cluster name cannot be empty"})
			}
		}
	}
	return errs
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func oneOf(field string, vs, allowed []string) []store.FieldError {
	var errs []store.FieldError
	for i, v := range vs {
		if !slices.Contains(allowed, v) {
			errs = append(errs, store.FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Rule: "enum",
				Message: fmt.Sprintf("%q is not one of %v", v, allowed)})
		}
	}
	return errs
}

// Requires reports whether any rule matches s.
func (p *Policy) Requires(s store.ReviewSubject) bool {
	return p.Match(s) != ""
}

// Match returns the name of the first rule that matches s, "" if none does.
func (p *Policy) Match(s store.ReviewSubject) string {
	if p == nil {
		return ""
	}
	for _, r := range p.Rules {
		if in(r.Actions, string(s.Action)) && in(r.Plans, s.Plan) && in(r.Engines, s.Engine) &&
			in(r.Tenants, s.Tenant) && in(r.Clusters, s.Cluster) {
			return r.Name
		}
	}
	return ""
}

// in: an unset list matches any value.
func in(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v)
}
