package charts

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/review"
)

// Review by pull request through the platform chart: the policy reaches the pod as
// a file of a ConfigMap that gitops-api's own policy parser accepts, the GitHub
// credential and the webhook secret as files of the named Secrets, and the schema
// refuses rules without a repository, a webhook secret or exactly one credential.
func TestPlatformReviewValues(t *testing.T) {
	rules := []any{
		map[string]any{"name": "premium", "plans": []any{"premium"}},
		map[string]any{"name": "purges", "actions": []any{"purge"}},
	}
	withToken := baseValues(t, "storefleet")
	set(withToken, "review.policy.rules", rules)
	set(withToken, "review.github.repository", "acme/fleet")
	set(withToken, "review.github.tokenSecret.name", "github-token")
	set(withToken, "review.github.webhookSecret.name", "github-webhook")
	set(withToken, "review.github.labels", []any{"fleet", "needs-review"})

	objs := templateValues(t, withToken)
	cm := find(objs, "ConfigMap", "storefleet-review")
	if cm == nil {
		t.Fatal("no review policy ConfigMap")
	}
	body, _, _ := unstructured.NestedString(cm.Object, "data", "policy.yaml")
	p, err := review.Parse([]byte(body))
	if err != nil {
		t.Fatalf("the policy file the chart writes is refused by gitops-api: %v\n%s", err, body)
	}
	if len(p.Rules) != 2 || p.Rules[0].Plans[0] != "premium" || p.Rules[1].Actions[0] != "purge" {
		t.Fatalf("policy %+v", p.Rules)
	}
	env, mounts, secrets := podOf(t, objs)
	want := map[string]string{
		"STOREFLEET_REVIEW_POLICY":              "/etc/storefleet/review/policy.yaml",
		"STOREFLEET_GITHUB_REPOSITORY":          "acme/fleet",
		"STOREFLEET_GITHUB_TOKEN_FILE":          "/etc/storefleet/github-token/token",
		"STOREFLEET_GITHUB_WEBHOOK_SECRET_FILE": "/etc/storefleet/github-webhook/secret",
		"STOREFLEET_GITHUB_LABELS":              "fleet,needs-review",
		"STOREFLEET_GITHUB_POLL_INTERVAL":       "1m",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["STOREFLEET_GITHUB_APP_ID"]; ok {
		t.Error("a GitHub App id beside the token")
	}
	// Each file named is in a mounted volume of the right source.
	for file, source := range map[string]string{
		"/etc/storefleet/review/policy.yaml":    "configMap:storefleet-review",
		"/etc/storefleet/github-token/token":    "secret:github-token",
		"/etc/storefleet/github-webhook/secret": "secret:github-webhook",
	} {
		dir := file[:strings.LastIndexByte(file, '/')]
		if got := secrets[mounts[dir]]; got != source {
			t.Errorf("%s: mounted from %q, want %q", file, got, source)
		}
	}
	dep := byKind(objs, "Deployment")[0]
	if ann, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "metadata", "annotations", "checksum/review-policy"); ann == "" {
		t.Error("a new policy does not roll the pods (no checksum/review-policy)")
	}

	// A GitHub App instead of the token.
	withApp := baseValues(t, "storefleet")
	set(withApp, "review.policy.rules", rules)
	set(withApp, "review.github.repository", "acme/fleet")
	set(withApp, "review.github.webhookSecret.name", "github-webhook")
	set(withApp, "review.github.app.id", "12345")
	set(withApp, "review.github.app.installationID", "678")
	set(withApp, "review.github.app.keySecret.name", "github-app")
	env, mounts, secrets = podOf(t, templateValues(t, withApp))
	if env["STOREFLEET_GITHUB_APP_ID"] != "12345" || env["STOREFLEET_GITHUB_INSTALLATION_ID"] != "678" ||
		env["STOREFLEET_GITHUB_APP_KEY_FILE"] != "/etc/storefleet/github-app/private-key.pem" || env["STOREFLEET_GITHUB_TOKEN_FILE"] != "" {
		t.Errorf("GitHub App env %v", env)
	}
	if got := secrets[mounts["/etc/storefleet/github-app"]]; got != "secret:github-app" {
		t.Errorf("the App key is mounted from %q", got)
	}

	// Off by default: nothing of review.
	env, _, _ = podOf(t, templateValues(t, baseValues(t, "storefleet")))
	for k := range env {
		if strings.HasPrefix(k, "STOREFLEET_GITHUB_") || k == "STOREFLEET_REVIEW_POLICY" {
			t.Errorf("review is off but the pod has %s", k)
		}
	}

	// The schema refuses what serve would refuse at start.
	for name, mod := range map[string]func(map[string]any){
		"no repository":     func(v map[string]any) { set(v, "review.github.repository", "") },
		"no webhook secret": func(v map[string]any) { set(v, "review.github.webhookSecret.name", "") },
		"no credential":     func(v map[string]any) { set(v, "review.github.tokenSecret.name", "") },
		"token and app":     func(v map[string]any) { set(v, "review.github.app.id", "12345") },
		"unknown rule key": func(v map[string]any) {
			set(v, "review.policy.rules", []any{map[string]any{"name": "x", "plan": []any{"premium"}}})
		},
		"bad repository": func(v map[string]any) { set(v, "review.github.repository", "acme") },
	} {
		v := deepCopy(withToken).(map[string]any)
		mod(v)
		if err := templateErr(t, "storefleet", v); err == nil || !strings.Contains(err.Error(), "/review") {
			t.Errorf("%s: %v, want the schema's refusal naming /review", name, err)
		}
	}
}

func templateValues(t *testing.T, v map[string]any) []*unstructured.Unstructured {
	t.Helper()
	return template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet", ValuesFiles: []string{writeValues(t, v)}})
}

// podOf returns gitops-api's env, its mounts (path → volume) and its volumes'
// sources (volume → "configMap:<name>" or "secret:<name>").
func podOf(t *testing.T, objs []*unstructured.Unstructured) (map[string]string, map[string]string, map[string]string) {
	t.Helper()
	var dep *unstructured.Unstructured
	for _, o := range byKind(objs, "Deployment") {
		dep = o
	}
	if dep == nil {
		t.Fatal("no Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	env := map[string]string{}
	es, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range es {
		m := e.(map[string]any)
		v, _ := m["value"].(string)
		env[m["name"].(string)] = v
	}
	mounts := map[string]string{}
	ms, _, _ := unstructured.NestedSlice(c, "volumeMounts")
	for _, m := range ms {
		mm := m.(map[string]any)
		mounts[mm["mountPath"].(string)] = mm["name"].(string)
	}
	sources := map[string]string{}
	vs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	for _, v := range vs {
		m := v.(map[string]any)
		if cm, ok := m["configMap"].(map[string]any); ok {
			sources[m["name"].(string)] = "configMap:" + cm["name"].(string)
		}
		if s, ok := m["secret"].(map[string]any); ok {
			sources[m["name"].(string)] = "secret:" + s["secretName"].(string)
		}
	}
	return env, mounts, sources
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
