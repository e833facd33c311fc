package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/apitoken"
	"github.com/storefleet/storefleet/internal/store"
)

func init() {
	commands["token"] = command{summary: "make a new API token: print it once, and the tokens-file entry that grants it", run: runToken}
}

var tokenHelp = helpText{
	usage: "gitops-api token --name NAME --tenant TENANT --role ROLE",
	about: `Makes a new API token and prints it on stdout, once: it is stored nowhere. The entry to add under
"tokens:" in the API tokens file (--api-tokens of serve) goes to stderr; it holds the token's SHA-256,
never the token. The API picks up the edited file within a second, without a restart; removing the
entry revokes the token.

To rotate a token, add a new one beside it, move its users over, then remove the old entry.`,
	more: `Example:
  TOKEN=$(gitops-api token --name ci-shop-a --tenant shop-a --role editor 2>>tokens-entry.yaml)`,
}

func runToken(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var e apitoken.Entry
	var role string
	fs := newFlagSet("gitops-api token")
	fs.StringVar(&e.Name, "name", "", "the token's name, recorded as the actor token:<name>; required")
	fs.StringVar(&e.Tenant, "tenant", "", `the tenant the token works in ("*" for every tenant); required`)
	fs.StringVar(&role, "role", "", "viewer, editor or admin; required")
	if helped, err := parseFlags(fs, tokenHelp, args, stdout); helped || err != nil {
		return err
	}
	e.Role = store.Role(role)
	token, sum, err := apitoken.Generate()
	if err != nil {
		return err
	}
	e.SHA256 = sum
	if fes := e.Check(""); len(fes) > 0 {
		var msgs []string
		for _, fe := range fes {
			msgs = append(msgs, fmt.Sprintf("--%s: %s", fe.Field, fe.Message))
		}
		return usageError{msg: strings.Join(msgs, "; "), cmd: fs.Name()}
	}
	entry, err := yaml.Marshal([]apitoken.Entry{e})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "# Add under \"tokens:\" in the API tokens file (the token was printed once, on stdout):\n%s", entry)
	return nil
}
