package serve

import (
	"github.com/storefleet/storefleet/internal/render"
)

// RenderOptions are the render options gitops-api serve renders stores with when
// all its settings come from env (STOREFLEET_*, no flags), as in the platform
// chart's pod: `gitops-api rerender --serve-env`, run there, renders every store as
// serve would render its next change, whatever the cluster's helm-wait, images,
// ingress and chart settings, without a second list of them to keep in step. A
// setting serve would refuse is a *UsageError naming its variable or flag.
func RenderOptions(env func(string) string) (render.Options, error) {
	c := NewCommand("gitops-api serve", env)
	if err := c.Flags.Parse(nil); err != nil {
		return render.Options{}, &UsageError{Problems: []error{err}}
	}
	var problems []error
	if err := c.cfg.kube.envErrs["flux-shards"]; err != nil {
		problems = append(problems, err)
	}
	opts, errs := c.cfg.renderOptions()
	problems = append(problems, errs...)
	if len(problems) == 0 {
		if err := opts.Validate(); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return render.Options{}, &UsageError{Problems: problems}
	}
	return opts, nil
}
