package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

func runRender(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var s store.Store
	var engine, plan, state string
	fs := flag.NewFlagSet("gitops-api render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.Name, "name", "", "store name (DNS label, 2-40 characters)")
	fs.StringVar(&engine, "engine", "", "engine: woocommerce or medusa")
	fs.StringVar(&plan, "plan", "", "plan: basic, standard or premium")
	fs.StringVar(&s.Cluster, "cluster", "", "cluster (default "+store.DefaultCluster+")")
	fs.StringVar(&s.Domain, "domain", "", "public host name (default <name>."+store.DefaultBaseDomain+")")
	fs.StringVar(&s.Version, "version", "", "engine chart version (default per engine)")
	fs.StringVar(&s.Settings.Title, "set-title", "", "store title (default: the name)")
	fs.StringVar(&s.Settings.AdminEmail, "set-admin-email", "", "administrator's email address (required)")
	fs.StringVar(&s.Settings.Currency, "set-currency", "", "ISO 4217 currency (default "+store.DefaultCurrency+")")
	fs.StringVar(&s.Settings.Country, "set-country", "", "ISO 3166-1 alpha-2 country (default "+store.DefaultCountry+")")
	fs.StringVar(&s.Settings.Language, "set-language", "", "woocommerce: WordPress locale (default "+store.DefaultLanguage+")")
	fs.StringVar(&s.Settings.RegionName, "set-region-name", "", "medusa: first region's name (default "+store.DefaultRegionName+")")
	fs.StringVar(&state, "state", "live", "what to render: live, retained (deleted, data kept) or purge1 (first purge commit)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gitops-api render --name N --engine E --plan P --set-admin-email A [flags]")
		fmt.Fprintln(stderr, "\nPrints the store's manifests (the local cluster's options) as multi-document YAML.\n\nFlags:")
		fs.PrintDefaults()
	}
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	s.Engine, s.Plan = store.Engine(engine), store.PlanName(plan)

	var fn func(store.Store, render.Options) ([]render.File, error)
	switch state {
	case "live":
		fn = render.Store
	case "retained":
		fn = render.Retained
	case "purge1":
		fn = render.PurgeStep1
	default:
		return usageError{fmt.Sprintf("--state must be live, retained or purge1, not %q", state)}
	}
	files, err := fn(s, render.LocalOptions())
	if err != nil {
		if fes := store.FieldErrors(err); len(fes) > 0 {
			fmt.Fprintln(stderr, "error:", store.ErrorMessage(err))
			for _, fe := range fes {
				fmt.Fprintf(stderr, "  %s\n", fe)
			}
			return fmt.Errorf("%w: %d field error(s)", ErrReported, len(fes))
		}
		return err
	}
	for _, f := range files {
		if path.Base(f.Path) == render.KustomizationFile {
			continue // kustomize's file, not an object
		}
		fmt.Fprintf(stdout, "---\n# %s\n", f.Path)
		if _, err := stdout.Write(f.Content); err != nil {
			return err
		}
	}
	return nil
}
