package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

const usage = `Usage: gitops-api serve [flags]

Serves the Storefleet REST API. A change is answered 202 only once it is committed
and pushed to the fleet repository.

With no --fleet-url, the fleet repository is a local bare repository at
<data-dir>/fleet.git, seeded from --seed-dir (the fleet/ skeleton) on first start:
no Git server and no cluster are needed to try the API.

Every flag can also be set by the environment variable in brackets; a flag given on
the command line wins. Secrets are taken from the environment or files only, never
from flags, so they do not show in the process list.

Flags:
`

const envHelp = `
Credentials for --fleet-url (environment only):
  STOREFLEET_FLEET_USERNAME, STOREFLEET_FLEET_PASSWORD   HTTPS basic auth (a token goes in the password;
                                                         GitHub: username x-access-token)
  STOREFLEET_FLEET_TOKEN                                 HTTPS bearer token
  STOREFLEET_FLEET_SSH_KEY_FILE, STOREFLEET_FLEET_SSH_KNOWN_HOSTS
                                                         SSH private key and known_hosts (required for SSH)
  STOREFLEET_FLEET_SSH_KEY_PASSPHRASE                    passphrase of the SSH key

Examples:
  gitops-api serve
  STOREFLEET_FLEET_USERNAME=x-access-token STOREFLEET_FLEET_PASSWORD=$GITHUB_TOKEN \
    gitops-api serve --fleet-url https://github.com/acme/fleet.git --cluster prod-eu --base-domain shops.acme.com
`

// config is everything serve reads from flags and environment.
type config struct {
	logLevel, ingressClass, clusterIssuer, tlsSecret, ingressNamespace string
	listen, dataDir, seedDir, fleetURL, branch, cluster, baseDomain    string
	chartSource, chartURL, medusaImage, logFormat                      string
	chartVersions                                                      string
	authorName, authorEmail                                            string
	chartRepository                                                    string
	kube                                                               kubeFlags
	grace                                                              time.Duration
	auth                                                               gitrepo.Auth
}

// Run is `gitops-api serve`. It returns when ctx is done (after a graceful
// shutdown) or on a start-up error. env looks up environment variables.
func Run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	url := cfg.fleetURL
	if url == "" {
		url = filepath.Join(cfg.dataDir, "fleet.git")
		var seed = os.DirFS(cfg.seedDir)
		if _, err := os.Stat(cfg.seedDir); err != nil {
			return fmt.Errorf("seed skeleton %s: %w (run from the repository root, or pass --seed-dir)", cfg.seedDir, err)
		}
		tip, err := gitrepo.Seed(ctx, url, cfg.branch, seed, gitrepo.Signature{Name: cfg.authorName, Email: cfg.authorEmail})
		if err != nil {
			return err
		}
		log.Info("embedded fleet repository", "path", url, "tip", tip)
	}
	sig := gitrepo.Signature{Name: cfg.authorName, Email: cfg.authorEmail}
	start := time.Now()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{
		URL: url, Auth: cfg.auth, Branch: cfg.branch,
		Dir:    filepath.Join(cfg.dataDir, "clone.git"),
		Author: sig,
	})
	if err != nil {
		return err
	}
	defer repo.Close()

	opts := render.LocalOptions()
	opts.BaseDomain = cfg.baseDomain
	opts.IngressClassName, opts.ClusterIssuer, opts.TLSSecretName = cfg.ingressClass, cfg.clusterIssuer, cfg.tlsSecret
	if cfg.ingressNamespace != "" {
		opts.IngressNamespace = cfg.ingressNamespace
	}
	switch cfg.chartSource {
	case "helmrepository":
	case "oci":
		opts.Chart = render.ChartSource{Kind: render.SourceOCIRepository, URL: cfg.chartURL}
	default:
		return fmt.Errorf("--chart-source must be helmrepository or oci, not %q", cfg.chartSource)
	}
	if cfg.medusaImage != "" {
		repoName, tag, ok := strings.Cut(cfg.medusaImage, ":")
		if !ok {
			return fmt.Errorf("--medusa-image must be repository:tag")
		}
		opts.MedusaImage = render.Image{Repository: repoName, Tag: tag}
	}
	if cfg.chartRepository != "" {
		opts.Chart.Name = cfg.chartRepository
	}
	charts, err := chartVersions(cfg.chartSource, cfg.chartVersions, log)
	if err != nil {
		return err
	}
	svc, err := fleet.New(ctx, fleet.Config{
		Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: opts},
		BaseDomain: cfg.baseDomain, Cluster: cfg.cluster, Log: log,
		RequestLog: filepath.Join(cfg.dataDir, "requests.jsonl"),
		Charts:     charts,
	})
	if err != nil {
		return err
	}
	defer svc.Close()

	// Listening first: the shard artifacts' URLs name the address.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	handlerSvc, apiOpts, stopStatus, err := attachStatus(ctx, cfg.kube, svc, repo, cfg.cluster, cfg.branch, cfg.dataDir, ln.Addr().String(), log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopStatus()

	log.Info("ready", "fleet", redact(url), "cluster", cfg.cluster, "startup", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "gitops-api listening on http://%s\n", ln.Addr())
	// Shutdown order: stop taking requests and let in-flight ones finish (each
	// waits for its push), then close the writer (deferred above).
	return api.Serve(ctx, ln, api.Handler(handlerSvc, apiOpts), cfg.grace, log)
}

func parse(args []string, env func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, name, envName, def, help string) {
		if v := env(envName); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, help+" ["+envName+"]")
	}
	str(&c.listen, "listen", "STOREFLEET_LISTEN", "127.0.0.1:8080", "address to serve the API on")
	str(&c.dataDir, "data-dir", "STOREFLEET_DATA_DIR", ".data", "where the clone, the request log and the embedded fleet repository live")
	str(&c.fleetURL, "fleet-url", "STOREFLEET_FLEET_URL", "", "fleet repository URL (https://, ssh://, user@host:path, file:// or a path); empty = embedded <data-dir>/fleet.git")
	str(&c.branch, "fleet-branch", "STOREFLEET_FLEET_BRANCH", "main", "branch of the fleet repository")
	str(&c.seedDir, "seed-dir", "STOREFLEET_SEED_DIR", "fleet", "skeleton the embedded fleet repository is seeded with on first start")
	str(&c.cluster, "cluster", "STOREFLEET_CLUSTER", store.DefaultCluster, "default cluster of new stores")
	str(&c.baseDomain, "base-domain", "STOREFLEET_BASE_DOMAIN", store.DefaultBaseDomain, "stores get <name>.<base-domain> unless they ask for a domain")
	str(&c.chartSource, "chart-source", "STOREFLEET_CHART_SOURCE", "helmrepository", "where store charts come from: helmrepository (flux-system/storefleet) or oci")
	str(&c.chartURL, "chart-oci-url", "STOREFLEET_CHART_OCI_URL", "", "OCI prefix of the charts for --chart-source oci, e.g. oci://ghcr.io/acme/charts")
	str(&c.chartVersions, "chart-versions", "STOREFLEET_CHART_VERSIONS", defaultChartVersions, "where the chart versions the HelmRepository offers are listed, so a store asking for another is refused (422): its index.yaml (https://… or a path), or a folder of charts (<folder>/<chart>/Chart.yaml, such as this repository's charts/, which the local environment serves); \"none\" = not checked. Not used with --chart-source oci (a registry lists no versions: any version is accepted)")
	str(&c.medusaImage, "medusa-image", "STOREFLEET_MEDUSA_IMAGE", "", "medusa image repository:tag for this cluster")
	str(&c.logLevel, "log-level", "STOREFLEET_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	str(&c.ingressClass, "store-ingress-class", "STOREFLEET_STORE_INGRESS_CLASS", "", "IngressClass of store Ingresses; empty = the cluster default")
	str(&c.clusterIssuer, "store-cluster-issuer", "STOREFLEET_STORE_CLUSTER_ISSUER", "", "cert-manager ClusterIssuer for store TLS; empty = none")
	str(&c.tlsSecret, "store-tls-secret", "STOREFLEET_STORE_TLS_SECRET", "", "existing TLS Secret for store Ingresses (e.g. a wildcard); empty = none")
	str(&c.ingressNamespace, "store-ingress-namespace", "STOREFLEET_STORE_INGRESS_NAMESPACE", "", "namespace of the ingress controller that store NetworkPolicies admit; empty = "+render.LocalOptions().IngressNamespace)
	str(&c.authorName, "author-name", "STOREFLEET_AUTHOR_NAME", "Storefleet", "author of fleet commits")
	str(&c.authorEmail, "author-email", "STOREFLEET_AUTHOR_EMAIL", "storefleet@localhost", "author e-mail of fleet commits")
	str(&c.logFormat, "log-format", "STOREFLEET_LOG_FORMAT", "text", "log format: text or json")
	str(&c.chartRepository, "chart-repository", "STOREFLEET_CHART_REPOSITORY", "", "name of the HelmRepository in flux-system that serves the store charts (--chart-source helmrepository); empty = "+render.LocalOptions().Chart.Name)
	kubeFlagSet(fs, &c.kube, env)
	grace := "30s"
	if v := env("STOREFLEET_SHUTDOWN_GRACE"); v != "" {
		grace = v
	}
	fs.StringVar(&grace, "shutdown-grace", grace, "how long in-flight requests may take to finish on shutdown [STOREFLEET_SHUTDOWN_GRACE]")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprint(stderr, envHelp)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	if err := c.kube.validate(fs); err != nil {
		return c, err
	}
	d, err := time.ParseDuration(grace)
	if err != nil {
		return c, fmt.Errorf("--shutdown-grace: %w", err)
	}
	c.grace = d
	c.auth = gitrepo.Auth{
		Username: env("STOREFLEET_FLEET_USERNAME"), Password: env("STOREFLEET_FLEET_PASSWORD"),
		BearerToken: env("STOREFLEET_FLEET_TOKEN"), SSHKeyPassphrase: env("STOREFLEET_FLEET_SSH_KEY_PASSPHRASE"),
	}
	if f := env("STOREFLEET_FLEET_SSH_KEY_FILE"); f != "" {
		key, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("STOREFLEET_FLEET_SSH_KEY_FILE: %w", err)
		}
		c.auth.SSHKey = key
	}
	if kh := env("STOREFLEET_FLEET_SSH_KNOWN_HOSTS"); kh != "" {
		c.auth.KnownHosts = strings.Split(kh, string(os.PathListSeparator))
	}
	return c, nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// defaultChartVersions is this repository's charts/, relative to where gitops-api
// runs (like --seed-dir's fleet/): what the local environment packages into the
// HelmRepository its stores install from.
const defaultChartVersions = "charts"

// chartVersions picks where the lifecycle learns which chart versions exist, or nil:
// then versions are not checked.
func chartVersions(source, where string, log *slog.Logger) (store.Charts, error) {
	switch {
	case source == "oci":
		log.Info("chart versions are not checked: an OCI registry lists no versions")
		return nil, nil
	case where == "" || where == "none":
		log.Info("chart versions are not checked (--chart-versions none)")
		return nil, nil
	case strings.HasPrefix(where, "http://") || strings.HasPrefix(where, "https://"):
		return chartindex.NewIndex(where), nil
	}
	fi, err := os.Stat(where)
	switch {
	case err != nil && where == defaultChartVersions:
		// Run from elsewhere than the repository root (an image): the default
		// cannot apply, and refusing to start over a check would be worse.
		log.Warn("chart versions are not checked: no charts folder here; set --chart-versions", "path", where)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("--chart-versions: %w", err)
	case fi.IsDir():
		return chartindex.Dir{Path: where}, nil
	}
	return chartindex.NewIndex(where), nil
}

// redact drops credentials embedded in a URL before it is logged.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && !strings.Contains(rest[:at], "/") {
			return u[:i+3] + "***@" + rest[at+1:]
		}
	}
	return u
}
