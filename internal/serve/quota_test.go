package serve_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/apitoken"
)

// TestQuotaAcrossReplicas: two replicas on one fleet take creates in one tenant at
// once, more than its limits.storesPerTenant. Each replica's access layer counts
// only its own creates in flight, so without the writer's check on the tree each
// commit lands on they would commit up to twice the limit. Exactly the limit lands;
// every other create is 422 tenant/quota, and nothing else reaches the remote.
func TestQuotaAcrossReplicas(t *testing.T) {
	const limit, each = 3, 6
	dir := t.TempDir()
	tok, sum, err := apitoken.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte("tokens:\n- {name: ci, tenant: shop-a, role: editor, sha256: "+sum+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("apiTokens: {file: tokens.yaml}\nlimits: {storesPerTenant: %d}\n", limit)), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b, bare := replicaPair(t, []string{"--auth-config", conf}, []string{"--auth-config", conf})
	client := &http.Client{Timeout: 60 * time.Second}
	type answer struct {
		name   string
		status int
		body   string
	}
	answers := make(chan answer, 2*each)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for ri, p := range []*proc{a, b} {
		for i := range each {
			wg.Go(func() {
				name := fmt.Sprintf("q-%d-%d", ri, i)
				body := fmt.Sprintf(`{"name":%q,"engine":"woocommerce","plan":"basic","settings":{"adminEmail":"a@example.com"}}`, name)
				req, _ := http.NewRequest("POST", p.url+"/api/v1/stores", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Idempotency-Key", "key-"+name)
				<-start
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("create %s: %v", name, err)
					return
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				answers <- answer{name, res.StatusCode, string(b)}
			})
		}
	}
	close(start)
	wg.Wait()
	close(answers)
	accepted := map[string]bool{}
	for ans := range answers {
		switch {
		case ans.status == http.StatusAccepted:
			accepted[ans.name] = true
		case ans.status == http.StatusUnprocessableEntity && strings.Contains(ans.body, `"quota"`) && strings.Contains(ans.body, fmt.Sprintf("is %d", limit)):
		default:
			t.Errorf("create %s: %d %s, want 202 or 422 tenant/quota naming the limit", ans.name, ans.status, ans.body)
		}
	}
	got := storesIn(t, bare)
	if len(accepted) != limit || len(got) != limit {
		t.Errorf("%d creates accepted, %d stores on the remote (%v); want %d of each\nA:\n%s\nB:\n%s", len(accepted), len(got), got, limit, a.logs, b.logs)
	}
	for n := range accepted {
		if !got[n] {
			t.Errorf("store %s was accepted but is not on the remote", n)
		}
	}
	if out := gitOut(t, bare, "fsck", "--strict", "--no-progress", "--no-dangling"); out != "" {
		t.Errorf("git fsck: %s", out)
	}
}
