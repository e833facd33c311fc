package charts

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// An Ingress puts the API on a network the cluster does not control: without an
// authenticator the chart must not template, and the message must say which values to set.
// The schema says it; the template says it again for helm --skip-schema-validation.
func TestPlatformIngressNeedsAuth(t *testing.T) {
	noAuth := baseValues(t, "storefleet")
	del(noAuth, "auth")
	err := templateErr(t, "storefleet", noAuth)
	if err == nil {
		t.Fatal("values-prod.yaml without auth (ingress.enabled: true) templated")
	}
	for _, want := range []string{"/ingress/enabled", "/auth/oidc/issuer", "/auth/apiTokens/secretName", "/auth/kubernetes/tokenReview"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s:\n%v", want, err)
		}
	}
	// insecureAllowUnauthenticatedNetwork is no authentication: still refused.
	set(noAuth, "auth.insecureAllowUnauthenticatedNetwork", true)
	if err := templateErr(t, "storefleet", noAuth); err == nil || !strings.Contains(err.Error(), "/ingress/enabled") {
		t.Errorf("an Ingress with auth.insecureAllowUnauthenticatedNetwork and no authenticator: %v, want the schema's refusal", err)
	}

	h := needHelm(t)
	out, err := h.Run(context.Background(), "template", "storefleet", chartDir("storefleet"), "--skip-schema-validation",
		"--set", "ingress.enabled=true")
	if err == nil || !strings.Contains(string(out), "ingress.enabled: an Ingress exposes the API beyond the cluster and needs authentication") {
		t.Errorf("helm template --skip-schema-validation with an Ingress and no auth: %v\n%s", err, out)
	}

	// Each authenticator alone is enough.
	for _, c := range []struct {
		path  string
		value any
	}{
		{"auth.oidc.issuer", "https://idp.example"},
		{"auth.apiTokens.secretName", "api-tokens"},
		{"auth.kubernetes.tokenReview", true},
	} {
		v := baseValues(t, "storefleet")
		del(v, "auth")
		set(v, c.path, c.value)
		if err := templateErr(t, "storefleet", v); err != nil {
			t.Errorf("an Ingress with %s=%v: %v", c.path, c.value, err)
		}
	}
}

// platformAuth is what the chart gives gitops-api: its arguments, the --auth-config file's
// content (from the ConfigMap the named path is mounted from) and the volumes.
type platformAuth struct {
	args       []string
	config     map[string]any // nil: no --auth-config
	configPath string
	tokenFile  string // path of the API tokens file in the pod, "" = none
	objs       []*unstructured.Unstructured
}

func renderPlatformAuth(t *testing.T, files []string, values map[string]any) platformAuth {
	t.Helper()
	o := TemplateOptions{Release: "storefleet", Namespace: "storefleet"}
	for _, f := range files {
		o.ValuesFiles = append(o.ValuesFiles, chartDir("storefleet")+"/"+f)
	}
	if values != nil {
		o.ValuesFiles = append(o.ValuesFiles, writeValues(t, values))
	}
	objs := template(t, "storefleet", o)
	var a platformAuth
	a.objs = objs
	configMaps := map[string]map[string]any{}
	secrets := map[string]string{} // volume name → Secret name
	var dep *unstructured.Unstructured
	for _, obj := range objs {
		switch obj.GetKind() {
		case "ConfigMap":
			data, _, _ := unstructured.NestedMap(obj.Object, "data")
			configMaps[obj.GetName()] = data
		case "Deployment":
			dep = obj
		}
	}
	if dep == nil {
		t.Fatal("no Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	for _, arg := range c["args"].([]any) {
		a.args = append(a.args, arg.(string))
	}
	volumes, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	volumeCM := map[string]string{}
	for _, v := range volumes {
		m := v.(map[string]any)
		if cm, ok := m["configMap"].(map[string]any); ok {
			volumeCM[m["name"].(string)] = cm["name"].(string)
		}
		if s, ok := m["secret"].(map[string]any); ok {
			secrets[m["name"].(string)] = s["secretName"].(string)
		}
	}
	mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	mountOf := map[string]string{}
	for _, m := range mounts {
		mm := m.(map[string]any)
		mountOf[mm["name"].(string)] = mm["mountPath"].(string)
	}
	for _, arg := range a.args {
		path, ok := strings.CutPrefix(arg, "--auth-config=")
		if !ok {
			continue
		}
		a.configPath = path
		for vol, cm := range volumeCM {
			if mountOf[vol] == filepath.Dir(path) {
				body, ok := configMaps[cm][filepath.Base(path)].(string)
				if !ok {
					t.Fatalf("--auth-config=%s: ConfigMap %s has no key %s", path, cm, filepath.Base(path))
				}
				if err := yaml.UnmarshalStrict([]byte(body), &a.config); err != nil {
					t.Fatalf("the --auth-config file is not YAML: %v\n%s", err, body)
				}
			}
		}
		if a.config == nil {
			t.Fatalf("--auth-config=%s is not a file of a mounted ConfigMap (mounts %v, ConfigMap volumes %v)", path, mountOf, volumeCM)
		}
	}
	if a.config != nil {
		if file, ok, _ := unstructured.NestedString(a.config, "apiTokens", "file"); ok {
			for vol := range secrets {
				if mountOf[vol] == filepath.Dir(file) {
					a.tokenFile = file
				}
			}
			if a.tokenFile == "" {
				t.Fatalf("apiTokens.file %s is in no mounted Secret (mounts %v)", file, mountOf)
			}
		}
	}
	return a
}

// values-prod.yaml configures OIDC and API tokens from a Secret; the chart turns the auth
// values into the --auth-config file (internal/access's format) and mounts the Secret.
func TestPlatformAuthConfig(t *testing.T) {
	prod := renderPlatformAuth(t, []string{"values-prod.yaml"}, nil)
	if prod.config == nil {
		t.Fatalf("values-prod.yaml: no --auth-config in %v", prod.args)
	}
	if slices.Contains(prod.args, "--insecure-allow-unauthenticated-network") {
		t.Errorf("values-prod.yaml passes --insecure-allow-unauthenticated-network: %v", prod.args)
	}
	for path, want := range map[string]string{
		"oidc.issuer": "https://login.storefleet.example", "oidc.audience": "storefleet",
		"oidc.subjectClaim": "sub", "oidc.groupsClaim": "groups", "oidc.clockSkew": "30s",
		"defaultTenant": "default", "apiTokens.file": "/etc/storefleet/api-tokens/tokens.yaml",
	} {
		got, _, _ := unstructured.NestedString(prod.config, strings.Split(path, ".")...)
		if got != want {
			t.Errorf("values-prod.yaml: the auth config's %s is %q, want %q", path, got, want)
		}
	}
	if prod.tokenFile == "" {
		t.Error("values-prod.yaml: the API tokens Secret is not mounted where the config says")
	}
	if rules, _, _ := unstructured.NestedSlice(prod.config, "rules"); len(rules) == 0 {
		t.Error("values-prod.yaml: no rules: every authenticated caller would see nothing")
	}
	for _, k := range []string{"readsPerMinute", "writesPerMinute", "storesPerTenant", "removalsPerHour"} {
		// A YAML number decodes as float64.
		if n, _, _ := unstructured.NestedFieldNoCopy(prod.config, "limits", k); n == nil || n.(float64) <= 0 {
			t.Errorf("values-prod.yaml: limits.%s is %v", k, n)
		}
	}
	if _, has := prod.config["kubernetes"]; has {
		t.Error("values-prod.yaml: a kubernetes section although tokenReview is off")
	}

	// The defaults: no authenticator, so no --auth-config and no ConfigMap, and not the
	// insecure flag either: gitops-api then refuses to serve on the pod's address.
	def := renderPlatformAuth(t, nil, nil)
	if def.configPath != "" || slices.Contains(def.args, "--insecure-allow-unauthenticated-network") {
		t.Errorf("default values: args %v, want neither --auth-config nor --insecure-allow-unauthenticated-network", def.args)
	}
	for _, o := range def.objs {
		if o.GetKind() == "ConfigMap" {
			t.Errorf("default values render ConfigMap %s", o.GetName())
		}
	}
	// Only when asked in so many words.
	insecure := renderPlatformAuth(t, nil, map[string]any{"auth": map[string]any{"insecureAllowUnauthenticatedNetwork": true}})
	if !slices.Contains(insecure.args, "--insecure-allow-unauthenticated-network") || insecure.configPath != "" {
		t.Errorf("auth.insecureAllowUnauthenticatedNetwork: true: args %v", insecure.args)
	}
	// Configured auth wins over the flag: never both.
	both := renderPlatformAuth(t, []string{"values-prod.yaml"}, map[string]any{"auth": map[string]any{"insecureAllowUnauthenticatedNetwork": true}})
	if slices.Contains(both.args, "--insecure-allow-unauthenticated-network") {
		t.Errorf("auth configured and insecureAllowUnauthenticatedNetwork: the flag is passed: %v", both.args)
	}

	// TokenReview alone: the kubernetes section with its audiences, nothing else.
	tr := renderPlatformAuth(t, nil, map[string]any{"auth": map[string]any{"kubernetes": map[string]any{"tokenReview": true, "audiences": []any{"storefleet"}}}})
	if ok, _, _ := unstructured.NestedBool(tr.config, "kubernetes", "tokenReview"); !ok {
		t.Errorf("tokenReview: config %v", tr.config)
	}
	if _, has := tr.config["oidc"]; has {
		t.Errorf("tokenReview alone: an oidc section: %v", tr.config)
	}
	if _, has := tr.config["apiTokens"]; has || tr.tokenFile != "" {
		t.Errorf("tokenReview alone: an apiTokens section or Secret: %v", tr.config)
	}
	// TokenReview needs create on tokenreviews; nothing else asks for it.
	for _, c := range []struct {
		a    platformAuth
		want bool
	}{{tr, true}, {prod, false}, {def, false}} {
		got := false
		for _, r := range byKind(c.a.objs, "ClusterRole") {
			rules, _, _ := unstructured.NestedSlice(r.Object, "rules")
			for _, rule := range rules {
				res, _, _ := unstructured.NestedStringSlice(rule.(map[string]any), "resources")
				verbs, _, _ := unstructured.NestedStringSlice(rule.(map[string]any), "verbs")
				if slices.Contains(res, "tokenreviews") && slices.Equal(verbs, []string{"create"}) {
					got = true
				}
			}
		}
		if got != c.want {
			t.Errorf("args %v: create on tokenreviews granted: %v, want %v", c.a.args, got, c.want)
		}
	}
}

// The auth values are checked before anything is installed, naming the field.
func TestPlatformAuthValuesInvalid(t *testing.T) {
	for _, c := range []struct {
		path  string
		value any
	}{
		{"auth.oidc.issuer", "http://idp.example"},
		{"auth.oidc.algorithms", []any{"none"}},
		{"auth.apiTokens.secretName", "Tokens"},
		{"auth.rules", []any{map[string]any{"groups": []any{"g"}, "tenants": []any{"shop-a"}, "role": "owner"}}},
		{"auth.rules", []any{map[string]any{"groups": []any{"g"}, "tenants": []any{"Shop A"}, "role": "viewer"}}},
		{"auth.limits.removalsPerHour", 0},
		{"auth.defaultTenant", "Default"},
	} {
		t.Run(c.path, func(t *testing.T) {
			t.Parallel()
			v := baseValues(t, "storefleet")
			set(v, c.path, c.value)
			err := templateErr(t, "storefleet", v)
			if err == nil {
				t.Fatalf("%s=%v was accepted", c.path, c.value)
			}
			if want := "/" + strings.ReplaceAll(c.path, ".", "/"); !strings.Contains(err.Error(), want) {
				t.Fatalf("%s=%v failed without naming %s:\n%v", c.path, c.value, want, err)
			}
		})
	}
}
