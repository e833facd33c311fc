package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/storefleet/storefleet/internal/store"
)

// admit adds to Validate's verdict (valErr) what Validate cannot know alone, for a
// new store (old nil) or a change from old, so a client learns every problem in one
// answer:
//
//   - cluster: a new store's must be one this service writes for (Config.Clusters);
//   - domain: a new or changed one must meet store.ValidateNewDomain;
//   - version: a new or changed one must be offered by the chart source, where the
//     source can tell (Config.Charts).
//
// A field Validate already refused is not judged again. Whether another store has
// the domain is claimDomain's to say, once everything here passed: it may wait for
// the index.
func (s *Service) admit(ctx context.Context, st store.Store, old *store.Store, valErr error) error {
	var base *store.Error
	if valErr != nil && !errors.As(valErr, &base) {
		return valErr
	}
	out := &store.Error{Code: store.EINVALID, Message: "invalid store"}
	if base != nil {
		out.Message, out.Fields = base.Message, slices.Clone(base.Fields)
	}
	bad := func(field string) bool {
		return slices.ContainsFunc(out.Fields, func(f store.FieldError) bool { return f.Field == field })
	}
	if old == nil && !bad("cluster") && !slices.Contains(s.clusters, st.Cluster) {
		out.Fields = append(out.Fields, store.FieldError{Field: "cluster", Rule: "oneOf",
			Message: fmt.Sprintf("cluster must be one this API writes stores for: %s", strings.Join(s.clusters, ", "))})
	}
	if (old == nil || old.Domain != st.Domain) && !bad("domain") && !bad("name") {
		out.Fields = append(out.Fields, store.FieldErrors(store.ValidateNewDomain(st.Name, st.Domain, s.baseDomain))...)
	}
	var unavailable error
	if (old == nil || old.Version != st.Version) && !bad("version") && !bad("engine") {
		fe, err := s.checkVersion(ctx, st.Engine, st.Version)
		if fe != nil {
			out.Fields = append(out.Fields, *fe)
		}
		unavailable = err
	}
	if len(out.Fields) > 0 {
		return out
	}
	return unavailable
}

// checkVersion reports a version the chart source does not offer as a field error.
// A source that cannot tell accepts every version; one that cannot be read now
// yields EUNAVAILABLE: better no store than one whose chart Flux cannot fetch.
func (s *Service) checkVersion(ctx context.Context, e store.Engine, version string) (*store.FieldError, error) {
	if s.charts == nil {
		return nil, nil
	}
	offered, err := s.charts.Versions(ctx, e)
	switch {
	case errors.Is(err, store.ErrVersionsUnknown):
		return nil, nil
	case err != nil:
		s.log.Warn("chart versions not readable", "engine", e, "err", err)
		return nil, store.Errorf(store.EUNAVAILABLE, "the chart source's versions of %s cannot be read just now, so version %s cannot be checked; nothing was changed, retry shortly", e, version)
	case slices.Contains(offered, version):
		return nil, nil
	case len(offered) == 0:
		return &store.FieldError{Field: "version", Rule: "oneOf",
			Message: fmt.Sprintf("the chart source offers no version of the %s chart", e)}, nil
	}
	list := strings.Join(offered, ", ")
	if len(offered) > maxListed {
		list = strings.Join(offered[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(offered)-maxListed)
	}
	return &store.FieldError{Field: "version", Rule: "oneOf",
		Message: fmt.Sprintf("version %s of the %s chart is not offered by the chart source; offered: %s", version, e, list)}, nil
}

// maxListed bounds the versions a refusal lists, so a long-lived chart repository
// does not make the answer huge.
const maxListed = 20
