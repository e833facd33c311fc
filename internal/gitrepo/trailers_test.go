package gitrepo

import (
	"context"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// oidcSubject is an audit subject as internal/oidcauth makes it: "<issuer>#<sub>".
const oidcSubject = "https://idp.example.com/realms/x#248289761001"

// Authenticated subjects hold ':', '/', '#' and '@'; each must reach its trailer
// as given, and read back through the domain's Entry and Found.
func TestTrailersCarryAuthenticatedSubjects(t *testing.T) {
	rm := newRemote(t, "http")
	r := open(t, rm)
	g := Fleet{R: r}
	ctx := context.Background()
	long := strings.Repeat("x", MaxActorLength-len("token:")) // exactly the limit
	subjects := []struct{ actor, obo, tenant string }{
		{oidcSubject, "", "acme"},
		{"system:serviceaccount:storefleet:ci", "https://idp.example.com#alice@example.com", "team-7"},
		{"token:" + long, "", ""},
		{"Ünïcødé Pèrson <p@example.com>", "", "acme"},
	}
	var changes []Change
	for i, s := range subjects {
		c := change("local", "shop-"+string(rune('a'+i)), ActionCreate, 1, "trailer-"+string(rune('a'+i)))
		c.Actor, c.OnBehalfOf, c.Tenant = s.actor, s.obo, s.tenant
		changes = append(changes, c)
	}
	// One commit for all: the trailers of each change must stay with its Store.
	for _, res := range r.SubmitAll(ctx, changes) {
		mustOK(t, res)
	}
	msg := runGit(t, rm.bare, "log", "-1", "--format=%B", "main")
	parsed := runGitStdin(t, rm.bare, msg, "interpret-trailers", "--parse")
	for i, s := range subjects {
		c := changes[i]
		want := "Store: " + c.Store + "\nAction: create\nCluster: local\n"
		if s.tenant != "" {
			want += "Tenant: " + s.tenant + "\n"
		}
		want += "Actor: " + s.actor + "\n"
		if s.obo != "" {
			want += "On-Behalf-Of: " + s.obo + "\n"
		}
		want += "Request-Id: " + c.RequestID + "\n"
		if !strings.Contains(parsed, want) {
			t.Errorf("interpret-trailers --parse lacks\n%s\nin\n%s", want, parsed)
		}
		res, err := g.History(ctx, c.Dir, store.HistoryPage{})
		hist := res.Entries
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 || hist[0].Actor != s.actor || hist[0].OnBehalfOf != s.obo || hist[0].Tenant != s.tenant {
			t.Errorf("history of %s: %+v, want actor %q on behalf of %q tenant %q", c.Store, hist, s.actor, s.obo, s.tenant)
		}
		f, err := g.FindRequest(ctx, c.RequestID)
		if err != nil || f.Tenant != s.tenant || f.Store != c.Store {
			t.Errorf("FindRequest %s: %+v %v", c.RequestID, f, err)
		}
	}
	if got := runGit(t, rm.bare, "log", "-1", "--format=%(trailers:key=Tenant,valueonly,separator=%x2C)", "main"); got != "acme,team-7,acme" {
		t.Errorf("git log trailers Tenant = %q", got)
	}
}

// A value that could end its trailer line would let whoever names the actor add
// trailers of their own choosing: every such value is refused and nothing is
// committed.
func TestForgedTrailerRefused(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	head := remoteHead(t, rm)
	bad := map[string]string{
		"newline":          "alice\nActor: root",
		"carriage return":  "alice\rActor: root",
		"crlf":             "alice\r\nActor: root",
		"nul":              "alice\x00root",
		"tab":              "alice\troot",
		"line separator":   "alice\u2028Actor: root",
		"next line":        "alice\u0085Actor: root",
		"bidi override":    "alice\u202eeci",
		"zero width space": "ali\u200bce",
		"leading space":    " alice",
		"trailing newline": "alice\n",
		"invalid utf-8":    "alice\xff",
		"too long":         strings.Repeat("a", MaxActorLength+1),
	}
	for name, v := range bad {
		for _, field := range []string{"actor", "on-behalf-of"} {
			t.Run(name+"/"+field, func(t *testing.T) {
				c := change("local", "shop", ActionCreate, 1, "forged")
				if field == "actor" {
					c.Actor = v
				} else {
					c.OnBehalfOf = v
				}
				wantErr(t, r.Submit(ctx, c), ErrInvalid)
			})
		}
	}
	for _, tenant := range []string{"acme\nActor: root", "Acme", "a/b", strings.Repeat("a", 64)} {
		c := change("local", "shop", ActionCreate, 1, "forged")
		c.Tenant = tenant
		wantErr(t, r.Submit(ctx, c), ErrInvalid)
	}
	if got := remoteHead(t, rm); got != head {
		t.Fatalf("a refused change moved the remote from %s to %s", head, got)
	}
	// The domain's Submit refuses it the same way, before anything is written.
	_, err := Fleet{R: r}.Submit(ctx, store.Change{Store: "shop", Cluster: "local", Dir: store.Dir("local", "shop"),
		Action: store.ActionCreate, Actor: "alice\nActor: root", RequestID: "forged",
		Files: []store.File{{Path: store.Dir("local", "shop") + "/namespace.yaml", Content: []byte("kind: Namespace\n")}}})
	if err == nil {
		t.Fatal("a forged actor went through the domain's Submit")
	}
	if log := runGit(t, rm.bare, "log", "--format=%B", "main"); strings.Contains(log, "root") {
		t.Fatalf("a forged trailer reached the history:\n%s", log)
	}
}
