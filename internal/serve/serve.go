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
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/chartindex"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/github"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/metrics"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

const help = `Serves the Storefleet REST API. A change is answered 202 only once it is committed
and pushed to the fleet repository.

With no --fleet-url, the fleet repository is a local bare repository at
<data-dir>/fleet.git, seeded from --seed-dir (the fleet/ skeleton) on first start:
no Git server and no cluster are needed to try the API.

Every flag can also be set by the environment variable in brackets; a flag given on
the command line wins. Secrets are taken from the environment or files only, never
from flags, so they do not show in the process list. The whole configuration is
checked before anything is created or cloned.
`

const envHelp = `Credentials for --fleet-url (environment only):
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

// config is everything serve reads from flags and environment. The first fields
// are as given; check fills the rest from them.
type config struct {
	logLevel, ingressClass, clusterIssuer, tlsSecret, ingressNamespace string
	listen, dataDir, seedDir, fleetURL, branch, cluster, baseDomain    string
	chartSource, chartURL, medusaImage, logFormat                      string
	chartVersions                                                      string
	writeTimeoutFlag                                                   string
	authorName, authorEmail                                            string
	chartRepository                                                    string
	// helmWait ("on"/"off") and serviceImages: render options of clusters
	// that run Pods (the test environment's node, real clusters).
	helmWait, serviceImages string
	// releaseInterval is the HelmReleases' spec.interval (render.Options.Interval).
	releaseInterval string
	// internalListen serves /metrics (metrics.go); internalListenSet: given by
	// flag or variable rather than defaulted.
	internalListen    string
	internalListenSet bool
	// metricsTenants caps the tenants with a stores-by-tenant series of their own.
	metricsTenants int
	// badTenantsEnv is STOREFLEET_METRICS_TENANTS when it is not a number.
	badTenantsEnv string
	kube          kubeFlags
	replicas      replicaFlags
	access        authFlags
	review        reviewFlags
	dash          dashboardFlags

	level slog.Level
	grace time.Duration
	auth  gitrepo.Auth
	// url is the repository serve opens: --fleet-url, or the embedded one
	// (<data-dir>/fleet.git, seeded from --seed-dir).
	url  string
	opts render.Options

	// writeTimeout is every write's deadline (--write-timeout).
	writeTimeout time.Duration
}

// maxWriteTimeout leaves the API room to answer before its own write deadline on the
// connection.
const maxWriteTimeout = api.RouteWriteDeadline - 10*time.Second

// embedded reports whether serve creates and seeds the fleet repository itself.
func (c config) embedded() bool { return c.fleetURL == "" }

// UsageError is a mistake in serve's flags or environment. serve returns it before it
// has created anything, so fixing the mistake and starting again is always safe; the
// command line exits with code 2 on it.
type UsageError struct {
	Problems []error
}

func (e *UsageError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in the configuration:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.Error())
	}
	return b.String()
}

func (e *UsageError) Unwrap() []error { return e.Problems }

// Command is `gitops-api serve` before it runs: its flags, bound to the configuration
// they fill, and the help around them. The command line (cmd/gitops-api) parses Flags
// and prints the help by its own conventions, so that every subcommand's help and
// errors look alike; Run does the rest.
type Command struct {
	Flags *flag.FlagSet
	// Help says what serve does (the help before the flags); Env lists the variables
	// that have no flag, and examples (after them).
	Help, Env string

	cfg   config
	grace string
	env   func(string) string
}

// NewCommand defines serve's flags, with defaults from env (which looks up
// environment variables). Flags prints nothing: Parse's errors are returned, for the
// caller to report once.
func NewCommand(name string, env func(string) string) *Command {
	c := &Command{Flags: flag.NewFlagSet(name, flag.ContinueOnError), Help: help, Env: envHelp, env: env}
	c.Flags.SetOutput(io.Discard)
	c.Flags.Usage = func() {}
	defineFlags(c.Flags, &c.cfg, &c.grace, env)
	return c
}

// Run runs serve once Flags are parsed: it checks the whole configuration (a
// *UsageError, before any side effect), opens the fleet repository, builds the store
// service and serves the API. It returns when ctx is done (after a graceful shutdown)
// or on a start-up error.
func (c *Command) Run(ctx context.Context, stdout, stderr io.Writer) error {
	cfg, err := c.check()
	if err != nil {
		return err
	}
	return run(ctx, cfg, stdout, stderr)
}

// Run is `gitops-api serve` for a program that holds its arguments (tests): flags and
// variables as on the command line. It prints no help; -h is a *UsageError wrapping
// flag.ErrHelp. env looks up environment variables.
func Run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, env)
	if err != nil {
		return err
	}
	return run(ctx, cfg, stdout, stderr)
}

// parse is flags and variables to a checked configuration, with no side effect.
func parse(args []string, env func(string) string) (config, error) {
	c := NewCommand("gitops-api serve", env)
	if err := c.Flags.Parse(args); err != nil {
		return config{}, &UsageError{Problems: []error{err}}
	}
	return c.check()
}

// run is serve once its configuration is known to be good: open the fleet
// repository, build the service on it, serve until ctx is done. Every line it logs
// and the error it returns pass through the fleet's Redactor (redact.go).
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	red := cfg.redactor()
	log := slog.New(redactHandler{next: newHandler(cfg.logFormat, cfg.level, stderr), red: red})
	if red.HasCredentials() {
		log.Warn("--fleet-url carries credentials: they are masked in every log line and error, but they show in the process list " +
			"and the environment; give them as STOREFLEET_FLEET_USERNAME and STOREFLEET_FLEET_PASSWORD (or STOREFLEET_FLEET_TOKEN) instead")
	}
	return red.Err(start(ctx, cfg, log, stdout))
}

// redactor knows every secret of the configuration. A user name with no password
// is a token (some hosts take it so), and is masked as one.
func (c config) redactor() gitrepo.Redactor {
	secrets := []string{c.auth.Password, c.auth.BearerToken, c.auth.SSHKeyPassphrase}
	if c.auth.Password == "" {
		secrets = append(secrets, c.auth.Username)
	}
	return gitrepo.NewRedactor(c.url, secrets...)
}

func start(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	t0 := time.Now()
	m := metrics.New()
	repo, err := openRepo(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	defer repo.Close()
	m.WatchQueue(repo.QueueDepth)
	merged := &mergedHook{}
	writer, reviews, err := reviewing(cfg.review, repo, cfg.branch, merged, log)
	if err != nil {
		return err
	}
	if reviews != nil {
		defer reviews.Close()
	}
	svc, err := buildService(ctx, cfg, writer, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	m.WatchTenants(svc.TenantCounts, cfg.metricsTenants)
	return serveAPI(ctx, cfg, svc, repo, reviews, merged, log, t0, stdout, m)
}

// openRepo opens the fleet repository, creating and seeding the embedded one on
// first start. These are serve's first side effects. A remote that does not answer
// is no reason to exit: the repository serves what its clone holds and keeps trying
// (gitrepo.OpenBackground; available.go).
func openRepo(ctx context.Context, cfg config, log *slog.Logger, obs gitrepo.Observer) (*gitrepo.Repo, error) {
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	sig := gitrepo.Signature{Name: cfg.authorName, Email: cfg.authorEmail}
	if cfg.embedded() {
		tip, err := gitrepo.Seed(ctx, cfg.url, cfg.branch, os.DirFS(cfg.seedDir), sig)
		if err != nil {
			return nil, err
		}
		log.Info("embedded fleet repository", "path", cfg.url, "tip", tip)
	}
	return gitrepo.OpenBackground(ctx, gitrepo.Options{
		URL: cfg.url, Auth: cfg.auth, Branch: cfg.branch, Logger: log,
		Dir:    filepath.Join(cfg.dataDir, "clone.git"),
		Author: sig, WriteTimeout: cfg.writeTimeout, Observer: obs,
		// The quota check at commit time counts a store's tenant as the store
		// service's count does: its renderer, and its default tenant (buildService
		// leaves fleet.Config.DefaultTenant at store.DefaultTenant).
		TenantOf: func(files []store.File) (string, error) {
			return store.FolderTenant(render.Renderer{Options: cfg.opts}, store.DefaultTenant, files)
		},
		TenantQuota: cfg.access.conf != nil, // an access configuration always holds limits.storesPerTenant
	})
}

// buildService builds the store service on the fleet repository, with this cluster's
// render options.
func buildService(ctx context.Context, cfg config, repo store.Repository, log *slog.Logger) (*fleet.Service, error) {
	opts := cfg.opts
	charts, err := chartVersions(cfg.chartSource, cfg.chartVersions, log)
	if err != nil {
		return nil, err
	}
	svc, err := fleet.New(ctx, fleet.Config{
		Repo: repo, Renderer: render.Renderer{Options: opts}, Review: cfg.review.reviewPolicy(),
		BaseDomain: cfg.baseDomain, Cluster: cfg.cluster, Log: log,
		RequestLog: filepath.Join(cfg.dataDir, "requests.jsonl"),
		Charts:     charts, WriteTimeout: cfg.writeTimeout,
		// A store may name only a cluster some Flux applies: with none configured,
		// just the default one, as always.
		Clusters: names(cfg.kube.clusters),
	})
	if err != nil {
		return nil, err
	}
	return svc, nil
}

// serveAPI listens, connects the cluster when one is configured and serves the API
// until ctx is done.
func serveAPI(ctx context.Context, cfg config, svc *fleet.Service, repo *gitrepo.Repo, reviews *github.Writer, merged *mergedHook, log *slog.Logger, start time.Time, stdout io.Writer, m *metrics.Metrics) error {
	// Listening first: a port in use stops serve before it connects the cluster.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	iln, err := listenInternal(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer serveInternal(iln, m, log)()
	fl := newFollower(repo, svc, cfg.replicas.fetchInterval, log)
	go fl.run(ctx)
	merged.set(fl.miss)
	handlerSvc, apiOpts, clusters, stopStatus, err := attachStatus(ctx, cfg.kube, replicas{cfg.replicas, fl}, svc, repo, cfg.cluster, cfg.branch, cfg.dataDir, merged, log, m)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopStatus()
	apiOpts.Diffs = fleet.Differ{R: gitrepo.Fleet{R: repo}}
	handlerSvc = missService{Service: handlerSvc, known: svc.Known, miss: fl.miss}
	auth, err := wireAuth(ctx, cfg.access, cfg.kube, cfg.listen, handlerSvc, svc, log)
	if err != nil {
		ln.Close()
		return err
	}

	g := newGate(auth.svc, repo)
	gctx, stopGate := context.WithCancel(ctx)
	gateDone := g.openWhenSynced(gctx, svc.Reload, log)
	// The index must not be rebuilt under a service being closed (deferred by run).
	defer func() { stopGate(); <-gateDone }()

	if g.open.Load() {
		log.Info("ready", "fleet", cfg.redactor().URL(), "cluster", cfg.cluster, "startup", time.Since(start).Round(time.Millisecond))
	} else {
		log.Warn("serving without the fleet remote: not ready, writes refused until it answers", "fleet", cfg.redactor().URL(),
			"cluster", cfg.cluster, "reads", map[bool]string{true: "from the clone on disk", false: "refused: no clone yet"}[repo.HasTip()])
	}
	fmt.Fprintf(stdout, "gitops-api listening on http://%s\n", ln.Addr())
	// Shutdown order: stop taking requests and let in-flight ones finish (each
	// waits for its push), then close the writer (deferred by run).
	apiOpts.Log = log
	apiOpts.Authenticate, apiOpts.Limits = auth.authenticate, auth.limits
	// /metrics is on the internal listener only (metrics.go), never on this port.
	apiOpts.Observer = m
	if reviews != nil {
		apiOpts.GitHub = reviews
		go reviews.RunPoll(ctx, cfg.review.poll)
		go func() {
			// In the background: GitHub down at start is no reason not to serve;
			// until it answers, the pull requests of earlier runs are unknown here.
			if err := reviews.Recover(ctx); err != nil {
				log.Warn("open pull requests of earlier runs not learnt from GitHub", "err", err)
			}
		}()
	}
	h := verboseReadyz(api.Handler(g, apiOpts), g.Ready, clusters, log)
	return api.Serve(ctx, ln, withDashboard(h, cfg.dash.signIn(cfg.access.conf)), cfg.grace, log)
}

func defineFlags(fs *flag.FlagSet, c *config, grace *string, env func(string) string) {
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
	str(&c.helmWait, "helm-wait", "STOREFLEET_HELM_WAIT", "off", "on: Helm waits until a store's workloads are ready (timeouts per engine and plan), so ready means serving; off: only for a cluster where no kubelet runs (the test environment without its node)")
	str(&c.releaseInterval, "release-interval", "STOREFLEET_RELEASE_INTERVAL", render.LocalOptions().Interval.String(), "how often helm-controller reconciles each store's HelmRelease when nothing changed, correcting drift (a change committed to the fleet is applied at once, whatever this is); each reconcile costs the API server a dry-run apply of every object of the store, so at thousands of stores a cluster raise it (docs/scale.md, \"helm-controller's periodic pass\"), from 1m to 24h")
	str(&c.serviceImages, "service-images", "STOREFLEET_SERVICE_IMAGES", "", "the engines' service images this cluster uses instead of the charts' official ones: ENGINE.KEY=repository:tag,... (e.g. woocommerce.wordpress=localhost/storefleet/wordpress:6.1.9-deb12)")
	str(&c.logLevel, "log-level", "STOREFLEET_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	str(&c.ingressClass, "store-ingress-class", "STOREFLEET_STORE_INGRESS_CLASS", "", "IngressClass of store Ingresses; empty = the cluster default")
	str(&c.clusterIssuer, "store-cluster-issuer", "STOREFLEET_STORE_CLUSTER_ISSUER", "", "cert-manager ClusterIssuer for store TLS; empty = none")
	str(&c.tlsSecret, "store-tls-secret", "STOREFLEET_STORE_TLS_SECRET", "", "existing TLS Secret for store Ingresses (e.g. a wildcard); empty = none")
	str(&c.ingressNamespace, "store-ingress-namespace", "STOREFLEET_STORE_INGRESS_NAMESPACE", "", "namespace of the ingress controller that store NetworkPolicies admit; empty = "+render.LocalOptions().IngressNamespace)
	str(&c.authorName, "author-name", "STOREFLEET_AUTHOR_NAME", "Storefleet", "author of fleet commits")
	str(&c.authorEmail, "author-email", "STOREFLEET_AUTHOR_EMAIL", "storefleet@localhost", "author e-mail of fleet commits")
	str(&c.logFormat, "log-format", "STOREFLEET_LOG_FORMAT", "text", "log format: text or json")
	str(&c.chartRepository, "chart-repository", "STOREFLEET_CHART_REPOSITORY", "", "name of the HelmRepository in flux-system that serves the store charts (--chart-source helmrepository); empty = "+render.LocalOptions().Chart.Name)
	str(&c.writeTimeoutFlag, "write-timeout", "STOREFLEET_WRITE_TIMEOUT", "30s", "every write's deadline: by then it is answered 202 (landed), 503 (certain nothing landed, and it never will) or 202 pending (decided later: GET /api/v1/requests/{id}); at most "+maxWriteTimeout.String())
	c.internalListenSet = env("STOREFLEET_INTERNAL_LISTEN") != ""
	str(&c.internalListen, "internal-listen", "STOREFLEET_INTERNAL_LISTEN", defaultInternalListen, "address /metrics is served on for Prometheus, never the API's --listen; none = no metrics. If the default is taken (another gitops-api on this machine) serve warns and runs without metrics")
	tenants := 50
	if v := env("STOREFLEET_METRICS_TENANTS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			tenants = n
		} else {
			c.badTenantsEnv = v
		}
	}
	fs.IntVar(&c.metricsTenants, "metrics-tenants", tenants, "at most this many tenants (those with the most stores) get a storefleet_stores_by_tenant series of their own; the rest are summed as tenant=\"_other\", so a fleet of many tenants does not make many series [STOREFLEET_METRICS_TENANTS]")
	kubeFlagSet(fs, &c.kube, env)
	fluxShardsFlagSet(fs, &c.kube, env)
	replicaFlagSet(fs, &c.replicas, env)
	authFlagSet(fs, &c.access, env)
	reviewFlagSet(fs, &c.review, env)
	dashboardFlagSet(fs, &c.dash, env)
	*grace = "30s"
	if v := env("STOREFLEET_SHUTDOWN_GRACE"); v != "" {
		*grace = v
	}
	fs.StringVar(grace, "shutdown-grace", *grace, "how long in-flight requests may take to finish on shutdown [STOREFLEET_SHUTDOWN_GRACE]")
}

// check completes the configuration once Flags are parsed and checks all of it. It
// reads files (the seed skeleton, SSH key, kubeconfig) but creates nothing, so a
// mistake stops serve before it seeds, clones or fetches the fleet repository, which
// for a large remote fleet takes minutes, rather than after. Every problem is
// reported at once.
func (c *Command) check() (config, error) {
	cfg := c.cfg
	var problems []error
	add := func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			problems = append(problems, j.Unwrap()...)
		} else if err != nil {
			problems = append(problems, err)
		}
	}
	bad := func(format string, args ...any) { add(fmt.Errorf(format, args...)) }

	if c.Flags.NArg() > 0 {
		bad("serve takes no arguments, got %q", c.Flags.Args())
	}
	add(cfg.kube.validate(c.Flags))
	clusters, errs := cfg.kube.served(c.Flags, cfg.cluster)
	problems = append(problems, errs...)
	cfg.kube.clusters = clusters
	if cfg.kube.configured() && !cfg.kube.inCluster {
		// Loaded again when the watcher starts; a path that does not load should not
		// wait for the fleet repository to be cloned first.
		if _, err := kube.RestConfig(cfg.kube.kubeconfig); err != nil {
			bad("--kubeconfig: %w", err)
		}
	}
	problems = append(problems, cfg.replicas.validate()...)
	problems = append(problems, cfg.review.validate()...)
	if cfg.kube.publishInterval <= 0 {
		bad("--publish-interval must be positive, not %s", cfg.kube.publishInterval)
	}
	if u := cfg.kube.artifactURL; u != "" {
		if msg := artifactURLProblem(u); msg != "" {
			bad("--artifact-url %q %s", u, msg)
		}
	}
	if d, err := time.ParseDuration(c.grace); err != nil {
		bad("--shutdown-grace: %w", err)
	} else if d < 0 {
		bad("--shutdown-grace must not be negative, not %s", d)
	} else {
		cfg.grace = d
	}
	if d, err := time.ParseDuration(cfg.writeTimeoutFlag); err != nil {
		bad("--write-timeout: %w", err)
	} else if d <= 0 || d > maxWriteTimeout {
		bad("--write-timeout must be more than 0 and at most %s (the API's own write deadline is %s), not %s", maxWriteTimeout, api.RouteWriteDeadline, d)
	} else {
		cfg.writeTimeout = d
	}
	if err := cfg.level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		bad("--log-level must be debug, info, warn or error, not %q", cfg.logLevel)
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		bad("--log-format must be text or json, not %q", cfg.logFormat)
	}
	tenantsSet := false
	c.Flags.Visit(func(f *flag.Flag) {
		cfg.internalListenSet = cfg.internalListenSet || f.Name == "internal-listen"
		tenantsSet = tenantsSet || f.Name == "metrics-tenants"
	})
	if cfg.badTenantsEnv != "" && !tenantsSet {
		bad("STOREFLEET_METRICS_TENANTS %q is not a whole number", cfg.badTenantsEnv)
	}
	if cfg.internalListen != "none" {
		if _, port, err := net.SplitHostPort(cfg.internalListen); err != nil {
			bad("--internal-listen %q must be host:port or none: %w", cfg.internalListen, err)
		} else if _, err := net.LookupPort("tcp", port); err != nil {
			bad("--internal-listen %q: %w", cfg.internalListen, err)
		} else if cfg.internalListen == cfg.listen && port != "0" {
			bad("--internal-listen %q must not be the API's --listen: /metrics is never served on the API's port", cfg.internalListen)
		}
	}
	if cfg.metricsTenants < 0 || cfg.metricsTenants > 1000 {
		bad("--metrics-tenants must be from 0 to 1000, not %d", cfg.metricsTenants)
	}
	if _, port, err := net.SplitHostPort(cfg.listen); err != nil {
		bad("--listen %q must be host:port (an empty host listens on every address): %w", cfg.listen, err)
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		bad("--listen %q: %w", cfg.listen, err)
	}
	problems = append(problems, cfg.access.check(cfg.listen, cfg.kube)...)
	problems = append(problems, cfg.dash.check(cfg.access.conf)...)

	if cfg.dataDir == "" {
		bad("--data-dir must not be empty")
	} else if fi, err := os.Stat(cfg.dataDir); err == nil && !fi.IsDir() {
		bad("--data-dir %s is not a directory", cfg.dataDir)
	}
	cfg.url = cfg.fleetURL
	if cfg.embedded() {
		cfg.url = filepath.Join(cfg.dataDir, "fleet.git")
		if fi, err := os.Stat(cfg.seedDir); err != nil {
			bad("seed skeleton %s: %w (run from the repository root, or pass --seed-dir)", cfg.seedDir, err)
		} else if !fi.IsDir() {
			bad("seed skeleton %s is not a directory (--seed-dir)", cfg.seedDir)
		}
	}
	auth, err := readAuth(c.env)
	add(err)
	cfg.auth = auth

	opts, errs := cfg.renderOptions()
	add(errors.Join(errs...))
	cfg.opts = opts
	add(cfg.checkStoreDefaults())

	if len(problems) > 0 {
		return cfg, &UsageError{Problems: problems}
	}
	return cfg, nil
}

// readAuth reads the fleet repository's credentials, which only the environment
// gives.
func readAuth(env func(string) string) (gitrepo.Auth, error) {
	auth := gitrepo.Auth{
		Username: env("STOREFLEET_FLEET_USERNAME"), Password: env("STOREFLEET_FLEET_PASSWORD"),
		BearerToken: env("STOREFLEET_FLEET_TOKEN"), SSHKeyPassphrase: env("STOREFLEET_FLEET_SSH_KEY_PASSPHRASE"),
	}
	var errs []error
	if f := env("STOREFLEET_FLEET_SSH_KEY_FILE"); f != "" {
		key, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("STOREFLEET_FLEET_SSH_KEY_FILE: %w", err))
		}
		auth.SSHKey = key
	}
	if kh := env("STOREFLEET_FLEET_SSH_KNOWN_HOSTS"); kh != "" {
		auth.KnownHosts = strings.Split(kh, string(os.PathListSeparator))
		for _, f := range auth.KnownHosts {
			if _, err := os.Stat(f); err != nil {
				errs = append(errs, fmt.Errorf("STOREFLEET_FLEET_SSH_KNOWN_HOSTS: %w", err))
			}
		}
	}
	return auth, errors.Join(errs...)
}

// renderOptions are the cluster's render options. render checks options only when it
// renders a store, so options it would refuse would otherwise let serve start and
// then fail every create; they are checked here, by the flag that sets them.
// The bounds of --release-interval: below a minute helm-controller would spend its
// workers re-checking releases nothing changed, and a day is the longest a drifted
// store should stay uncorrected.
const (
	minReleaseInterval = time.Minute
	maxReleaseInterval = 24 * time.Hour
)

func (c config) renderOptions() (render.Options, []error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	name := func(flagName, v string, check func(string) []string) {
		if v == "" {
			return
		}
		if p := check(v); len(p) > 0 {
			bad("--%s %q is not a Kubernetes name: %s", flagName, v, strings.Join(p, "; "))
		}
	}

	opts := render.LocalOptions()
	opts.BaseDomain = c.baseDomain
	opts.FluxShards = c.kube.shards.FluxShards
	opts.IngressClassName, opts.ClusterIssuer, opts.TLSSecretName = c.ingressClass, c.clusterIssuer, c.tlsSecret
	name("store-ingress-class", c.ingressClass, validation.IsDNS1123Subdomain)
	name("store-cluster-issuer", c.clusterIssuer, validation.IsDNS1123Subdomain)
	name("store-tls-secret", c.tlsSecret, validation.IsDNS1123Subdomain)
	if c.ingressNamespace != "" {
		opts.IngressNamespace = c.ingressNamespace
		name("store-ingress-namespace", c.ingressNamespace, validation.IsDNS1123Label)
	}
	switch c.chartSource {
	case "helmrepository":
		if c.chartRepository != "" {
			opts.Chart.Name = c.chartRepository
			name("chart-repository", c.chartRepository, validation.IsDNS1123Subdomain)
		}
	case "oci":
		// The shared chart sources go where the HelmRepository would have been: the Flux namespace.
		opts.Chart = render.ChartSource{Kind: render.SourceOCIRepository, URL: c.chartURL, Namespace: opts.Chart.Namespace}
		if !strings.HasPrefix(c.chartURL, "oci://") || strings.HasSuffix(c.chartURL, "/") {
			bad("--chart-oci-url %q must begin with oci:// and not end with / (--chart-source oci)", c.chartURL)
		}
	default:
		bad("--chart-source must be helmrepository or oci, not %q", c.chartSource)
	}
	if c.medusaImage != "" {
		img, err := parseImage(c.medusaImage)
		if err != nil {
			bad("--medusa-image %q: %w", c.medusaImage, err)
		}
		opts.MedusaImage = img
	}
	if d, err := time.ParseDuration(c.releaseInterval); err != nil || d < minReleaseInterval || d > maxReleaseInterval {
		bad("--release-interval %q must be a duration from %v to %v", c.releaseInterval, minReleaseInterval, maxReleaseInterval)
	} else {
		opts.Interval = d
	}
	switch c.helmWait {
	case "on":
		opts.DisableWait = false
	case "off":
		opts.DisableWait = true
	default:
		bad("--helm-wait must be on or off, not %q", c.helmWait)
	}
	for _, item := range strings.FieldsFunc(c.serviceImages, func(r rune) bool { return r == ',' }) {
		key, ref, _ := strings.Cut(strings.TrimSpace(item), "=")
		engine, name, _ := strings.Cut(key, ".")
		img, err := parseImage(ref)
		if !slices.Contains(store.Engines, store.Engine(engine)) || name == "" || err != nil {
			bad("--service-images %q: each item must be ENGINE.KEY=repository:tag with ENGINE one of %v", item, store.Engines)
			continue
		}
		if opts.ServiceImages == nil {
			opts.ServiceImages = map[store.Engine]map[string]render.Image{}
		}
		if opts.ServiceImages[store.Engine(engine)] == nil {
			opts.ServiceImages[store.Engine(engine)] = map[string]render.Image{}
		}
		opts.ServiceImages[store.Engine(engine)][name] = img
	}
	if len(errs) == 0 {
		// What render itself checks on every store, so that nothing above can miss it.
		if err := opts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return opts, errs
}

// checkStoreDefaults checks what serve hands every new store, --cluster and the
// domain <name>.--base-domain, by the rules a store is validated with (so the two
// cannot drift apart): with the longest name a store may have, since a base domain
// that only fits short names would refuse the others.
func (c config) checkStoreDefaults() error {
	probe := store.Store{
		Name: strings.Repeat("a", store.MaxNameLength), Engine: store.WooCommerce, Plan: store.Basic,
		Cluster: c.cluster, Settings: store.Settings{AdminEmail: "probe@example.com"},
	}.WithDefaults(c.baseDomain)
	var errs []error
	for _, fe := range store.FieldErrors(probe.Validate()) {
		switch fe.Field {
		case "cluster":
			errs = append(errs, fmt.Errorf("--cluster %q: %s", c.cluster, fe.Message))
		case "domain":
			errs = append(errs, fmt.Errorf("--base-domain %q does not give every store a valid domain <name>.%s (names have up to %d characters): %s",
				c.baseDomain, c.baseDomain, store.MaxNameLength, fe.Message))
		}
	}
	return errors.Join(errs...)
}

// parseImage splits repository:tag. The tag follows the last colon, and only if no
// slash follows that colon: in localhost:5000/storefleet/medusa:2.8.0 the registry's
// port belongs to the repository.
func parseImage(ref string) (render.Image, error) {
	if strings.Contains(ref, "@") {
		return render.Image{}, errors.New("must be repository:tag (a digest is not supported)")
	}
	i := strings.LastIndex(ref, ":")
	if i <= 0 || i == len(ref)-1 || strings.Contains(ref[i+1:], "/") {
		return render.Image{}, errors.New("must be repository:tag")
	}
	return render.Image{Repository: ref[:i], Tag: ref[i+1:]}, nil
}

// newHandler builds the log handler of a checked configuration (check has refused
// any other format).
func newHandler(format string, level slog.Level, w io.Writer) slog.Handler {
	o := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.NewJSONHandler(w, o)
	}
	return slog.NewTextHandler(w, o)
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
