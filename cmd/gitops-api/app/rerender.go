package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/serve"
	"github.com/storefleet/storefleet/internal/store"
)

func rerenderHelp() helpText {
	return helpText{
		usage: "gitops-api rerender --repo URL (--flux-shards K --chart-source SOURCE | --serve-env) [flags]",
		about: `Renders every store of every cluster again with --flux-shards, the chart source given here and
the fleet's shard count (its "` + store.ShardsFile + `" file), and commits what differs in one commit: after a
change of the cluster's --flux-shards, every store's HelmRelease carries the controller shard label
its shard Kustomization carries; after a change of the chart source, every store references the
new one (and its shared chart source is written). A second run finds nothing to change and commits
nothing.

Only the HelmReleases' controller shard label and chart reference, and the shared chart sources,
may change: no store folder is removed or moved, no Namespace or other file is rewritten. A file
of a store folder that render no longer makes is removed, as the API's next write of the store
would remove it, when the store's kustomization.yaml does not name it (Flux never applied it, so
nothing is pruned); one it names is refused, with nothing committed. Every other render option
is the local cluster's default (as gitops-api render has them); a fleet whose stores were rendered
with others (--helm-wait on, images, ingress settings) is refused whole, with nothing committed.
Restart gitops-api serve with the same --flux-shards and chart source first
(clusters/README.md, "Flux controller sharding"); with --kubeconfig, a K its shard publisher does
not label the shard Kustomizations with is refused before anything is committed. Needs the git CLI.

With --serve-env instead of --flux-shards and the chart flags, every render option is read from the
STOREFLEET_* environment gitops-api serve reads (its --flux-shards, chart source, --helm-wait,
images and ingress settings): run in the gitops-api pod (kubectl exec), it renders every store as
serve renders its next change, so any file may change, and a cluster with other settings than the
local defaults is rendered, not refused. A file render no longer makes is removed even when the
store's kustomization.yaml names it (Flux then prunes its objects), unless one of them could hold
data (a PersistentVolumeClaim, a Namespace, a HelmRelease, any kind rerender does not know to hold
none) and is not marked ` + render.AnnotationPrune + `: ` + render.PruneDisabled + `, or the
kustomization.yaml would stop naming something outside the folder: then nothing is committed.`,
	}
}

// rerender's commit trailers: the action, the actor, and the options the stores were
// rendered with.
const (
	rerenderAction     = "rerender"
	trailerFluxShards  = "Flux-Shards"
	trailerChartSource = "Chart-Source"
	trailerStores      = "Stores-Changed"
)

// Chart source names as serve's --chart-source spells them.
const (
	chartSourceHelm = "helmrepository"
	chartSourceOCI  = "oci"
)

// fluxShardsFlag is --flux-shards: a count with no default, so that a forgotten flag
// never strips a sharded cluster's labels.
type fluxShardsFlag struct {
	k   render.FluxShards
	set bool
}

func (f *fluxShardsFlag) String() string {
	if !f.set {
		return ""
	}
	return strconv.Itoa(int(f.k))
}

func (f *fluxShardsFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	f.k, f.set = render.FluxShards(n), true
	return nil
}

func runRerender(ctx context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	var repo, branch, actor, chartSource, chartURL, chartRepo, kubeconfig, fluxNS string
	var k fluxShardsFlag
	var serveEnv bool
	fs := newFlagSet("gitops-api rerender")
	fs.StringVar(&repo, "repo", "", "fleet repository URL or path; required")
	fs.StringVar(&branch, "branch", "main", "fleet branch")
	fs.StringVar(&actor, "actor", os.Getenv("USER"), "who re-renders the fleet, for the commit's Actor trailer")
	fs.Var(&k, "flux-shards", fmt.Sprintf("the cluster's number `K` of Flux controller shards, as gitops-api serve's --flux-shards: 0 or 1 = no %s label, at most %d; required", render.FluxShardLabel, render.MaxFluxShards))
	fs.StringVar(&chartSource, "chart-source", "", "where store charts come from, as gitops-api serve's --chart-source: "+chartSourceHelm+" or "+chartSourceOCI+"; required")
	fs.StringVar(&chartURL, "chart-oci-url", "", "OCI prefix of the charts, with --chart-source oci (e.g. oci://ghcr.io/acme/charts)")
	fs.StringVar(&chartRepo, "chart-repository", "", "name of the HelmRepository in flux-system, with --chart-source helmrepository (empty = "+render.LocalOptions().Chart.Name+")")
	fs.BoolVar(&serveEnv, "serve-env", false, "take every render option from the STOREFLEET_* environment gitops-api serve reads (run it in the gitops-api pod); instead of --flux-shards and the chart flags")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "a cluster whose shard Kustomizations must already be labelled for --flux-shards (by gitops-api serve's shard publisher) before anything is committed (optional)")
	fs.StringVar(&fluxNS, "flux-namespace", "flux-system", "namespace of the shard Kustomizations (with --kubeconfig)")
	if helped, err := parseFlags(fs, rerenderHelp(), args, stdout); helped || err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return usageError{msg: fmt.Sprintf(format, a...), cmd: fs.Name()} }
	opts := render.LocalOptions()
	switch {
	case repo == "":
		return usage("--repo is required")
	case !validActor(actor):
		return usage("--actor must be one non-empty line")
	case serveEnv:
		if k.set || chartSource != "" || chartURL != "" || chartRepo != "" {
			return usage("--serve-env reads --flux-shards and the chart source from the environment: give none of --flux-shards, --chart-source, --chart-oci-url, --chart-repository with it")
		}
		o, err := serve.RenderOptions(os.Getenv)
		if err != nil {
			return usage("--serve-env: the environment is not one gitops-api serve would start with: %v", err)
		}
		return rerenderWith(ctx, fleetTarget{repo: repo, branch: branch, actor: actor}, o, true, kubeconfig, fluxNS, stdout)
	case !k.set:
		return usage("--flux-shards is required: the cluster's number of Flux controller shards (0 or 1 without sharding)")
	case k.k.Validate() != nil:
		return usage("--flux-shards: %v", k.k.Validate())
	}
	opts.FluxShards = k.k
	switch chartSource {
	case chartSourceHelm:
		if chartURL != "" {
			return usage("--chart-oci-url is for --chart-source %s, not %s", chartSourceOCI, chartSourceHelm)
		}
		if chartRepo != "" {
			opts.Chart.Name = chartRepo
		}
	case chartSourceOCI:
		if chartRepo != "" {
			return usage("--chart-repository is for --chart-source %s, not %s", chartSourceHelm, chartSourceOCI)
		}
		if chartURL == "" {
			return usage("--chart-oci-url is required with --chart-source %s", chartSourceOCI)
		}
		opts.Chart = render.ChartSource{Kind: render.SourceOCIRepository, URL: chartURL, Namespace: opts.Chart.Namespace}
	case "":
		return usage("--chart-source is required: %s or %s, as the cluster's gitops-api serve has it", chartSourceHelm, chartSourceOCI)
	default:
		return usage("--chart-source must be %s or %s, not %q", chartSourceHelm, chartSourceOCI, chartSource)
	}
	// What render checks on every store (the OCI prefix's form), checked once: only
	// the chart source flags can make options it refuses here.
	if err := opts.Validate(); err != nil {
		return usage("--chart-source %s, --chart-oci-url %q, --chart-repository %q: %s", chartSource, chartURL, chartRepo, store.ErrorMessage(err))
	}

	return rerenderWith(ctx, fleetTarget{repo: repo, branch: branch, actor: actor}, opts, false, kubeconfig, fluxNS, stdout)
}

// rerenderWith re-renders the fleet with opts and reports it. exact: opts are the
// cluster's own (--serve-env), so any file may change; otherwise only what rerender's
// flags decide may (onlyWhatRerenderChanges).
func rerenderWith(ctx context.Context, t fleetTarget, opts render.Options, exact bool, kubeconfig, fluxNS string, stdout io.Writer) error {
	if kubeconfig != "" {
		if err := checkPublisherFluxShards(ctx, kubeconfig, fluxNS, opts.FluxShards); err != nil {
			return err
		}
	}
	r, err := rerenderFleet(ctx, t, opts, exact)
	if err != nil {
		return err
	}
	if r.commit == "" {
		fmt.Fprintf(stdout, "every store of the %d clusters (%d stores) already renders as committed: nothing to commit\n", len(r.clusters), r.stores())
		return nil
	}
	fmt.Fprintf(stdout, "re-rendered %d of %d stores in commit %s\n", r.changed(), r.stores(), r.commit)
	for _, c := range r.names() {
		cr := r.clusters[c]
		fmt.Fprintf(stdout, "cluster %s: %d of %d stores changed, %d shared chart sources written, %d files removed that render no longer makes\n",
			c, len(cr.changed), cr.stores, cr.sources, len(cr.removed))
		if len(cr.changed) > 0 {
			fmt.Fprintf(stdout, "  %s\n", listSome(cr.changed, 10))
		}
		if len(cr.removed) > 0 {
			fmt.Fprintf(stdout, "  removed: %s\n", listSome(cr.removed, 10))
		}
	}
	return nil
}

// errPublisherFluxShards: the cluster's shard Kustomizations are labelled for
// another K than --flux-shards.
var errPublisherFluxShards = errors.New("the shard publisher labels the shard Kustomizations for another --flux-shards")

// checkPublisherFluxShards refuses a K the cluster's shard publisher does not use:
// it labels each shard Kustomization with render.FluxShards.Key of its shard for the
// K gitops-api serve runs with, and HelmReleases re-rendered for another K would sit
// on other controllers than their Kustomizations, until the next change of each store
// through the API relabelled it with serve's K.
func checkPublisherFluxShards(ctx context.Context, kubeconfig, ns string, k render.FluxShards) error {
	cfg, err := kube.RestConfig(kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	list, err := dyn.Resource(kube.Kustomizations).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: store.ShardLabel})
	if err != nil {
		return fmt.Errorf("reading the shard Kustomizations: %w", err)
	}
	var wrong []string
	for _, o := range list.Items {
		shard := o.GetLabels()[store.ShardLabel]
		if got, want := o.GetLabels()[render.FluxShardLabel], k.Key(shard); got != want {
			wrong = append(wrong, fmt.Sprintf("%s has %q, K=%d gives %q", o.GetName(), got, int(k), want))
		}
	}
	if len(wrong) == 0 {
		return nil
	}
	sort.Strings(wrong)
	return fmt.Errorf("%w (%s label: %s): restart gitops-api serve with --flux-shards %d first, or give the K it runs with; nothing committed",
		errPublisherFluxShards, render.FluxShardLabel, listSome(wrong, 3), int(k))
}

// listSome joins the first n items and says how many more there are: a fleet of
// thousands of stores must not print them all.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, " ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], " "), len(items)-n)
}

// rerendered is what rerenderFleet did.
type rerendered struct {
	commit   string
	clusters map[string]clusterRerender
}

// clusterRerender is what changed in one cluster's folders.
type clusterRerender struct {
	stores int
	// changed are the stores with a file rewritten or removed, by name.
	changed []string
	// removed are the files of its store folders render no longer makes, removed.
	removed []string
	// sources is how many shared chart sources were written.
	sources int
}

func (r rerendered) names() []string {
	out := make([]string, 0, len(r.clusters))
	for c := range r.clusters {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func (r rerendered) stores() (n int) {
	for _, c := range r.clusters {
		n += c.stores
	}
	return n
}

func (r rerendered) changed() (n int) {
	for _, c := range r.clusters {
		n += len(c.changed)
	}
	return n
}

// rerenderFleet clones the fleet, renders every store again with opts at the fleet's
// shard count and pushes the difference in one commit (none when there is none).
func rerenderFleet(ctx context.Context, t fleetTarget, opts render.Options, exact bool) (rerendered, error) {
	var r rerendered
	commit, err := commitFleet(ctx, t, func(_ context.Context, dir string) (string, []string, error) {
		var err error
		r, err = rerenderClone(dir, opts, exact)
		if err != nil || r.changed() == 0 && r.sources() == 0 {
			return "", nil, err
		}
		src := opts.Chart.Kind + " " + opts.Chart.Namespace + "/" + opts.Chart.Name
		if opts.Chart.Kind == render.SourceOCIRepository {
			src = opts.Chart.Kind + " " + opts.Chart.URL
		}
		msg := fleetMessage(fmt.Sprintf("rerender %d stores in %d clusters (Flux controller shards %d, %s)", r.changed(), len(r.clusters), int(opts.FluxShards), src),
			rerenderAction, t.actor,
			gitrepo.Trailer{Key: trailerFluxShards, Value: strconv.Itoa(int(opts.FluxShards))},
			gitrepo.Trailer{Key: trailerChartSource, Value: src},
			gitrepo.Trailer{Key: trailerStores, Value: strconv.Itoa(r.changed())})
		return msg, []string{store.StoresRoot, store.ChartSourcesRoot}, nil
	})
	r.commit = commit
	return r, err
}

func (r rerendered) sources() (n int) {
	for _, c := range r.clusters {
		n += c.sources
	}
	return n
}

// rerenderClone renders every store folder of the clone in dir again and writes the
// files whose bytes differ.
func rerenderClone(dir string, opts render.Options, exact bool) (rerendered, error) {
	shards, err := fleetShards(dir)
	if err != nil {
		return rerendered{}, err
	}
	opts.Shards = shards
	rd := render.Renderer{Options: opts}
	clusters, err := fleetClusters(dir)
	if err != nil {
		return rerendered{}, err
	}
	r := rerendered{clusters: map[string]clusterRerender{}}
	for _, c := range clusters {
		cr, err := rerenderCluster(dir, c, rd, shards, exact)
		if err != nil {
			return rerendered{}, err
		}
		r.clusters[c] = cr
	}
	return r, nil
}

// rerenderCluster renders the stores of one cluster folder again.
func rerenderCluster(dir, cluster string, rd render.Renderer, shards int, exact bool) (clusterRerender, error) {
	var cr clusterRerender
	root := filepath.Join(dir, filepath.FromSlash(store.ClusterDir(cluster)))
	shardDirs, err := os.ReadDir(root)
	if err != nil {
		return cr, err
	}
	sources := map[string]bool{}
	for _, sd := range shardDirs {
		if !sd.IsDir() {
			continue
		}
		// Rendering places a store by the count: a folder of another layout is a
		// half-done reshard, and writing it here would leave the store in two places.
		if !store.ShardInRange(sd.Name(), shards) {
			return cr, fmt.Errorf("%s is not a shard folder of a fleet of %d shards (%s): finish the reshard first",
				store.ShardDir(cluster, sd.Name()), shards, store.ShardsFile)
		}
		names, err := os.ReadDir(filepath.Join(root, sd.Name()))
		if err != nil {
			return cr, err
		}
		for _, n := range names {
			if !n.IsDir() {
				continue
			}
			folder := path.Join(store.ShardDir(cluster, sd.Name()), n.Name())
			sr, err := rerenderStore(dir, folder, rd, exact)
			if err != nil {
				return cr, err
			}
			cr.stores++
			if sr.changed {
				cr.changed = append(cr.changed, n.Name())
			}
			cr.removed = append(cr.removed, sr.removed...)
			for _, f := range sr.shared {
				if sources[f.Path] {
					continue
				}
				sources[f.Path] = true
				wrote, err := writeIfDifferent(dir, f)
				if err != nil {
					return cr, err
				}
				if wrote {
					cr.sources++
				}
			}
		}
	}
	sort.Strings(cr.changed)
	sort.Strings(cr.removed)
	return cr, nil
}

// storeRerender is what rerenderStore did to one store folder.
type storeRerender struct {
	// changed: a file was written or removed.
	changed bool
	// removed are the files render no longer makes, removed (paths from the root).
	removed []string
	// shared is the chart source a live store references.
	shared []render.File
}

// rerenderStore reads the store of folder back (render.Parse, as the API's writer
// does), renders it again in its state, writes the files whose bytes differ and
// removes those render no longer makes, so that the folder holds what the API's next
// write of the store would leave.
func rerenderStore(dir, folder string, rd render.Renderer, exact bool) (storeRerender, error) {
	var r storeRerender
	entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(folder)))
	if err != nil {
		return r, err
	}
	var files []render.File
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		p := path.Join(folder, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return r, err
		}
		files = append(files, render.File{Path: p, Content: b})
	}
	s, st, err := rd.Parse(files)
	if err != nil {
		return r, fmt.Errorf("%s: %w", folder, err)
	}
	out, err := rd.Render(s, st)
	if err != nil {
		return r, fmt.Errorf("%s: %s", folder, store.ErrorMessage(err))
	}
	for _, f := range out {
		if path.Dir(f.Path) != folder {
			return r, fmt.Errorf("%s: store %s renders to %s, not its folder", folder, s.Name, path.Dir(f.Path))
		}
	}
	present, subdirs, err := storeFolderFiles(dir, folder)
	if err != nil {
		return r, err
	}
	// Decided before anything is written, so that a refused removal is reported as
	// what it is, not as the kustomization.yaml that no longer names the file.
	gone := notRendered(present, out)
	if len(gone) > 0 {
		if err := checkRemovals(dir, folder, files, gone, exact); err != nil {
			return r, err
		}
	}
	if exact {
		if err := checkDroppedRefs(folder, files, out, gone); err != nil {
			return r, err
		}
	}
	old := map[string][]byte{}
	for _, f := range files {
		old[f.Path] = f.Content
	}
	for _, f := range out {
		if !exact {
			if err := onlyWhatRerenderChanges(old[f.Path], f); err != nil {
				return r, fmt.Errorf("%s: %w", folder, err)
			}
		}
		wrote, err := writeIfDifferent(dir, f)
		if err != nil {
			return r, err
		}
		r.changed = r.changed || wrote
	}
	if err := removeFiles(dir, folder, gone, subdirs); err != nil {
		return r, err
	}
	r.removed = gone
	r.changed = r.changed || len(gone) > 0
	if st != store.StateActive {
		return r, nil
	}
	if r.shared, err = rd.Shared(s); err != nil {
		return r, fmt.Errorf("%s: %s", folder, store.ErrorMessage(err))
	}
	return r, nil
}

// errOtherOptions: a store's new files differ from its committed ones in more than
// rerender's options decide.
var errOtherOptions = errors.New("the cluster's other render options are not the defaults rerender renders with (or render changed since): nothing committed")

// onlyWhatRerenderChanges refuses a new store file that differs from the committed
// one (old) in anything but what --flux-shards and the chart source decide: the
// HelmRelease's controller shard label and its chart reference. rerender takes only
// those options; the others (--helm-wait, images, ingress, the NetworkPolicies'
// namespaces and CIDRs) are the local defaults, so a difference there is a cluster
// that has other values, whose stores this must not rewrite, not a store to change.
func onlyWhatRerenderChanges(old []byte, f render.File) error {
	if bytes.Equal(old, f.Content) {
		return nil
	}
	if path.Base(f.Path) != render.HelmReleaseFile {
		return fmt.Errorf("%s would change: %w", path.Base(f.Path), errOtherOptions)
	}
	var was, now map[string]any
	if err := yaml.Unmarshal(old, &was); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if err := yaml.Unmarshal(f.Content, &now); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	for _, o := range []map[string]any{was, now} {
		if meta, ok := o["metadata"].(map[string]any); ok {
			if labels, ok := meta["labels"].(map[string]any); ok {
				delete(labels, render.FluxShardLabel)
			}
		}
		if spec, ok := o["spec"].(map[string]any); ok {
			// spec.chart: folders written before the shared chart sources.
			delete(spec, "chartRef")
			delete(spec, "chart")
		}
	}
	if !reflect.DeepEqual(was, now) {
		return fmt.Errorf("%s would change beyond its %s label and chart reference: %w", path.Base(f.Path), render.FluxShardLabel, errOtherOptions)
	}
	return nil
}

// writeIfDifferent writes f below dir unless it holds these bytes already.
func writeIfDifferent(dir string, f render.File) (bool, error) {
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	old, err := os.ReadFile(p)
	switch {
	case err == nil && bytes.Equal(old, f.Content):
		return false, nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, err
	}
	return true, os.WriteFile(p, f.Content, 0o644)
}
