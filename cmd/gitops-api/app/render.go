package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// renderRequired are the flags a store cannot do without; every other flag has a
// default.
var renderRequired = []string{"name", "engine", "plan", "set-admin-email"}

// renderFlagOf is the flag that sets each store field, so that a field error names
// what the user typed.
var renderFlagOf = map[string]string{
	"name": "name", "engine": "engine", "plan": "plan", "cluster": "cluster", "domain": "domain", "version": "version",
	"settings.title": "set-title", "settings.adminEmail": "set-admin-email", "settings.currency": "set-currency",
	"settings.country": "set-country", "settings.language": "set-language", "settings.regionName": "set-region-name",
}

func renderHelp(baseDomain string) helpText {
	return helpText{
		usage: "gitops-api render --name NAME --engine ENGINE --plan PLAN --set-admin-email EMAIL [flags]",
		about: `Prints every file the fleet repository gets for the store, as gitops-api commits it with the local
cluster's options: the store folder's kustomization.yaml and the manifests it lists, each after a
"# <path>" comment, as multi-document YAML. Nothing is committed and no server is needed.
--shards places the folder for a fleet of that many shards (its "` + store.ShardsFile + `" file; ` + fmt.Sprint(store.DefaultShards) + ` without it).

--name, --engine, --plan and --set-admin-email are required. --domain defaults to <name>.` + baseDomain + `
and --set-title to <name>; the other flags' defaults are below.`,
	}
}

func runRender(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var s store.Store
	var engine, plan, state string
	opts := render.LocalOptions()
	fs := newFlagSet("gitops-api render")
	fs.StringVar(&s.Name, "name", "", "store name (DNS label, 2-40 characters); required")
	fs.StringVar(&engine, "engine", "", "engine: woocommerce or medusa; required")
	fs.StringVar(&plan, "plan", "", "plan: basic, standard or premium; required")
	fs.StringVar(&s.Cluster, "cluster", "", "cluster (default "+store.DefaultCluster+")")
	fs.StringVar(&s.Domain, "domain", "", "public host name (default <name>."+opts.BaseDomain+")")
	fs.StringVar(&s.Version, "version", "", "engine chart version (default per engine)")
	fs.StringVar(&s.Settings.Title, "set-title", "", "store title (default <name>)")
	fs.StringVar(&s.Settings.AdminEmail, "set-admin-email", "", "administrator's email address; required")
	fs.StringVar(&s.Settings.Currency, "set-currency", "", "ISO 4217 currency (default "+store.DefaultCurrency+")")
	fs.StringVar(&s.Settings.Country, "set-country", "", "ISO 3166-1 alpha-2 country (default "+store.DefaultCountry+")")
	fs.StringVar(&s.Settings.Language, "set-language", "", "woocommerce: WordPress locale (default "+store.DefaultLanguage+")")
	fs.StringVar(&s.Settings.RegionName, "set-region-name", "", "medusa: first region's name (default "+store.DefaultRegionName+")")
	fs.StringVar(&state, "state", string(store.StateActive), "which of the store's states to render: active, retained (deleted, data kept) or purging (the purge's first commit)")
	fs.IntVar(&opts.Shards, "shards", store.DefaultShards, fmt.Sprintf("the fleet's shard count (its %q file), which places the store's folder: a power of two from %d to %d", store.ShardsFile, store.MinShards, store.MaxShards))
	if helped, err := parseFlags(fs, renderHelp(opts.BaseDomain), args, stdout); helped || err != nil {
		return err
	}
	// Checked here: Render panics on an invalid count (store.ShardIn), which from
	// the command line is a typing mistake.
	if err := store.ValidShards(opts.Shards); err != nil {
		return usageError{msg: "--shards: " + err.Error(), cmd: fs.Name()}
	}
	s.Engine, s.Plan = store.Engine(engine), store.PlanName(plan)

	st := store.State(state)
	switch st {
	case store.StateActive, store.StateRetained, store.StatePurging:
	default:
		return usageError{msg: fmt.Sprintf("--state must be %s, %s or %s, not %q", store.StateActive, store.StateRetained, store.StatePurging, state), cmd: fs.Name()}
	}
	files, err := render.Renderer{Options: opts}.Render(s, st)
	if err != nil {
		return renderError(fs, err, opts.BaseDomain, stderr)
	}
	// Every file, kustomization.yaml included: what a commit of this store would
	// write to its folder, byte for byte.
	for _, f := range files {
		fmt.Fprintf(stdout, "---\n# %s\n", f.Path)
		if _, err := stdout.Write(f.Content); err != nil {
			return err
		}
	}
	return nil
}

// renderError explains a store render refused. Store validation sees only the store,
// after defaults: a missing --name shows there as a missing name, domain and title,
// and a missing --engine as a missing version too. The command line knows which
// flags were given, so it reports the required flags that are missing (a usage error)
// and what defaults from them, and keeps the field errors for values that were given.
func renderError(fs *flag.FlagSet, err error, baseDomain string, stderr io.Writer) error {
	fes := store.FieldErrors(err)
	if len(fes) == 0 {
		return err
	}
	value := func(flagName string) string {
		if f := fs.Lookup(flagName); f != nil {
			return f.Value.String()
		}
		return ""
	}
	var missing []string
	for _, n := range renderRequired {
		if value(n) == "" {
			missing = append(missing, "--"+n)
		}
	}
	nameBad := false
	for _, fe := range fes {
		nameBad = nameBad || fe.Field == "name"
	}
	var lines []string
	for _, fe := range fes {
		f, ok := renderFlagOf[fe.Field]
		switch {
		case !ok:
			lines = append(lines, "  "+fe.String())
			continue
		case fe.Rule == "required" && value(f) == "":
			// A required flag that was not given (listed as missing), or a default
			// that comes from one: --domain and --set-title from --name, --version
			// from --engine.
			continue
		case nameBad && value(f) == "" && (f == "domain" || f == "set-title"):
			// Made from a name that is wrong itself: the name's error says it.
			continue
		}
		lines = append(lines, fmt.Sprintf("  --%s: %s (%s)", f, fe.Message, fe.Rule))
	}

	if len(missing) > 0 {
		name := "<name>"
		if n := value("name"); n != "" && !nameBad {
			name = n
		}
		var b strings.Builder
		fmt.Fprintf(&b, "missing required flags: %s", strings.Join(missing, ", "))
		for _, l := range lines {
			b.WriteString("\n" + l)
		}
		fmt.Fprintf(&b, "\nRequired: --%s.", strings.Join(renderRequired, ", --"))
		fmt.Fprintf(&b, "\nDefaults from the name: --domain %s.%s, --set-title %s; the other flags' defaults are in --help.", name, baseDomain, name)
		return usageError{msg: b.String(), cmd: fs.Name()}
	}
	if len(lines) == 0 { // nothing left to explain: show store validation's own words
		for _, fe := range fes {
			lines = append(lines, "  "+fe.String())
		}
	}
	fmt.Fprintln(stderr, "error:", store.ErrorMessage(err))
	for _, l := range lines {
		fmt.Fprintln(stderr, l)
	}
	return fmt.Errorf("%w: %d field error(s)", ErrReported, len(lines))
}
