package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/apitoken"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/oidcauth"
	"github.com/storefleet/storefleet/internal/store"
)

// insecureFlag is loud on purpose: whoever types it, or reads it in a manifest,
// should see what it does.
const insecureFlag = "insecure-allow-unauthenticated-network"

// authFlags say who may use the API.
type authFlags struct {
	// configFile is the access configuration (--auth-config); empty = no
	// authentication, which serve allows on loopback only unless insecure.
	configFile string
	insecure   bool
	// removalsPerHour is the mass-deletion guard's limit without a configuration
	// (with one, its limits.removalsPerHour).
	removalsPerHour int

	// conf is configFile, loaded and validated by check.
	conf *access.Config
}

func authFlagSet(fs *flag.FlagSet, a *authFlags, env func(string) string) {
	def := env("STOREFLEET_AUTH_CONFIG")
	fs.StringVar(&a.configFile, "auth-config", def, "access configuration (YAML: OpenID Connect issuer, API token file, Kubernetes tokens, rules mapping subjects and groups to tenants and roles, limits; see docs/examples/auth.yaml); empty = no authentication, allowed only on a loopback --listen [STOREFLEET_AUTH_CONFIG]")
	insecure, _ := strconv.ParseBool(env("STOREFLEET_INSECURE_ALLOW_UNAUTHENTICATED_NETWORK"))
	removals := access.DefaultRemovalsPerHour
	if n, err := strconv.Atoi(env("STOREFLEET_REMOVALS_PER_HOUR")); err == nil {
		removals = n
	}
	fs.IntVar(&a.removalsPerHour, "removals-per-hour", removals, "without --auth-config: deletes and purges in the whole fleet within an hour past which each one needs ?force=true (the mass-deletion guard; with --auth-config, its limits.removalsPerHour) [STOREFLEET_REMOVALS_PER_HOUR]")
	fs.BoolVar(&a.insecure, insecureFlag, insecure, "serve WITHOUT authentication on a non-loopback --listen: anyone who reaches the port can create, change, delete and purge every store, and name any actor in the audit log. Never in production [STOREFLEET_INSECURE_ALLOW_UNAUTHENTICATED_NETWORK]")
}

// check loads the access configuration and holds serve to the safe default: no
// authentication only where nobody else can connect.
func (a *authFlags) check(listen string, k kubeFlags) []error {
	var errs []error
	if a.removalsPerHour <= 0 {
		errs = append(errs, errors.New("--removals-per-hour must be positive: the mass-deletion guard cannot be turned off"))
	}
	if a.configFile != "" {
		conf, err := access.Load(a.configFile)
		if err != nil {
			errs = append(errs, configErrors("--auth-config", err)...)
		} else {
			a.conf = conf
			if conf.Kubernetes != nil && conf.Kubernetes.TokenReview && !k.configured() {
				errs = append(errs, errors.New("--auth-config: kubernetes.tokenReview needs a cluster: --kubeconfig or --in-cluster"))
			}
		}
		return errs
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && !loopbackHost(host) && !a.insecure {
		errs = append(errs, fmt.Errorf("--listen %q is not a loopback address and no --auth-config is given: anyone who reaches it could change and destroy every store. "+
			"Give --auth-config, listen on 127.0.0.1, or, knowing the risk, --%s", listen, insecureFlag))
	}
	return errs
}

// configErrors lists each problem of the access configuration on a line of its own,
// named by its field, as the rest of serve's usage errors are.
func configErrors(flagName string, err error) []error {
	fields := store.FieldErrors(err)
	if len(fields) == 0 {
		return []error{fmt.Errorf("%s: %w", flagName, err)}
	}
	out := make([]error, 0, len(fields))
	for _, f := range fields {
		out = append(out, fmt.Errorf("%s: %s: %s (%s)", flagName, f.Field, f.Message, f.Rule))
	}
	return out
}

// loopbackHost reports whether a --listen host can only be reached from this
// machine. An empty host, 0.0.0.0 and :: listen on every address; a name other than
// localhost may resolve anywhere.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticated is what serve puts between the HTTP layer and the store service:
// the authenticator of /api/v1 and the policy's decorator around svc.
type authenticated struct {
	svc          store.Service
	authenticate api.Authenticator
	limits       api.Limits
}

// wireAuth builds the authenticators from the access configuration's sections, the
// Gate over them and the enforcing decorator around svc. Without a configuration it
// says loudly what that means and returns svc as it is. counter answers the quota
// and the mass-deletion guard from the fleet repository, so replicas agree.
func wireAuth(ctx context.Context, a authFlags, k kubeFlags, listen string, svc store.Service, counter store.Counter, log *slog.Logger) (authenticated, error) {
	c := a.conf
	if c == nil {
		announceNoAuth(log, listen)
		// Without a configuration nobody is told apart, so there are no roles and no
		// quota; the mass-deletion guard holds all the same, at its default limit:
		// an accident with a script deletes as many stores without auth as with it.
		return authenticated{svc: access.NewService(svc, counter, access.Options{
			Limits: access.Limits{RemovalsPerHour: a.removalsPerHour}})}, nil
	}
	var auths []store.Authenticator
	// Cheapest first: an API token is recognised by its form, a JWT by its issuer.
	if c.APITokens != nil {
		f, err := apitoken.Open(c.APITokens.File, log)
		if err != nil {
			return authenticated{}, fmt.Errorf("--auth-config apiTokens.file: %w", err)
		}
		auths = append(auths, f)
	}
	if c.OIDC != nil {
		v, err := oidcauth.New(ctx, oidcauth.Config{
			Issuer: c.OIDC.Issuer, Audience: c.OIDC.Audience, ClockSkew: c.OIDC.ClockSkew,
			Algorithms: c.OIDC.Algorithms, SubjectClaim: c.OIDC.SubjectClaim, GroupsClaim: c.OIDC.GroupsClaim,
		}, log)
		if err != nil {
			return authenticated{}, fmt.Errorf("--auth-config oidc: %w", err)
		}
		auths = append(auths, v)
	}
	if c.Kubernetes != nil && c.Kubernetes.TokenReview {
		kubeconfig := k.kubeconfig
		if k.inCluster {
			kubeconfig = ""
		}
		rc, err := kube.RestConfig(kubeconfig)
		if err != nil {
			return authenticated{}, fmt.Errorf("--auth-config kubernetes: %w", err)
		}
		tr, err := kube.NewTokenReviewer(rc, c.Kubernetes.Audiences, log)
		if err != nil {
			return authenticated{}, fmt.Errorf("--auth-config kubernetes: %w", err)
		}
		auths = append(auths, tr)
	}
	gate := access.NewGate(access.NewPolicy(c), auths...)
	log.Info("authentication is on", "config", a.configFile, "oidc", c.OIDC != nil, "apiTokens", c.APITokens != nil,
		"kubernetes", c.Kubernetes != nil && c.Kubernetes.TokenReview, "rules", len(c.Rules),
		"readsPerMinute", c.Limits.ReadsPerMinute, "writesPerMinute", c.Limits.WritesPerMinute)
	return authenticated{
		svc:          access.NewService(svc, counter, access.Options{Limits: c.Limits, DefaultTenant: c.DefaultTenant}),
		authenticate: gate.Principal,
		// Counted in this process: N replicas allow N times these (docs/design.md).
		limits: api.Limits{Reads: c.Limits.ReadsPerMinute, Writes: c.Limits.WritesPerMinute},
	}, nil
}

// announceNoAuth says at start that the API takes no credentials: quietly on
// loopback (make run), as a warning naming the risk anywhere else.
func announceNoAuth(log *slog.Logger, listen string) {
	if host, _, _ := net.SplitHostPort(listen); loopbackHost(host) {
		log.Info("authentication is off: anyone on this machine may use the API, and X-Actor is recorded as the actor; give --auth-config to turn it on", "listen", listen)
		return
	}
	log.Warn("AUTHENTICATION IS OFF ON A NETWORK ADDRESS (--"+insecureFlag+"): anyone who reaches this port can create, change, delete and purge every store and write any actor into the audit log",
		"listen", listen)
}
