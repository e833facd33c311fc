package gitrepo

import (
	"fmt"
	"sort"
	"strings"
)

// Trailer keys written per change, in this order; a "Store" trailer starts a change.
const (
	TrailerStore      = "Store"
	TrailerAction     = "Action"
	TrailerCluster    = "Cluster"
	TrailerTenant     = "Tenant"
	TrailerActor      = "Actor"
	TrailerOnBehalfOf = "On-Behalf-Of"
	TrailerRequestID  = "Request-Id"
)

// ChangeRecord is one change as recorded in a commit's trailers. Tenant and
// OnBehalfOf are empty in commits from before tenants, and whenever not given.
type ChangeRecord struct {
	Store, Action, Cluster, Tenant, Actor, OnBehalfOf, RequestID string
}

// Trailer is one "Key: Value" line of a commit's trailer block.
type Trailer struct {
	Key, Value string
}

// commitMessage renders the summary line, one readable line per change, and the trailer
// block git parses (the last paragraph, nothing but trailers).
func commitMessage(changes []*Change) string {
	var b strings.Builder
	if len(changes) == 1 {
		c := changes[0]
		fmt.Fprintf(&b, "%s store %s in %s\n\n", c.Action, c.Store, c.Cluster)
	} else {
		counts := map[Action]int{}
		for _, c := range changes {
			counts[c.Action]++
		}
		acts := make([]string, 0, len(counts))
		for a, n := range counts {
			acts = append(acts, fmt.Sprintf("%s %d", a, n))
		}
		sort.Strings(acts)
		fmt.Fprintf(&b, "%d store changes (%s)\n\n", len(changes), strings.Join(acts, ", "))
		for _, c := range changes {
			fmt.Fprintf(&b, "- %s store %s in %s", c.Action, c.Store, c.Cluster)
			if c.Actor != "" {
				fmt.Fprintf(&b, " by %s", c.Actor)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, c := range changes {
		fmt.Fprintf(&b, "%s: %s\n%s: %s\n%s: %s\n", TrailerStore, c.Store, TrailerAction, c.Action, TrailerCluster, c.Cluster)
		for _, t := range []Trailer{
			{TrailerTenant, c.Tenant}, {TrailerActor, c.Actor}, {TrailerOnBehalfOf, c.OnBehalfOf}, {TrailerRequestID, c.RequestID},
		} {
			if t.Value != "" {
				fmt.Fprintf(&b, "%s: %s\n", t.Key, t.Value)
			}
		}
	}
	return b.String()
}

// parseTrailers reads the last paragraph of a commit message if every line in it is a
// "Key: Value" trailer (the writer's own form; a looser block from elsewhere yields
// nothing rather than a guess).
func parseTrailers(msg string) []Trailer {
	msg = strings.TrimRight(msg, "\n")
	i := strings.LastIndex(msg, "\n\n")
	if i < 0 {
		return nil
	}
	var out []Trailer
	for _, line := range strings.Split(msg[i+2:], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil
		}
		out = append(out, Trailer{Key: k, Value: strings.TrimSpace(v)})
	}
	return out
}

// changeRecords groups trailers into changes: each Store trailer starts one.
func changeRecords(tr []Trailer) []ChangeRecord {
	var out []ChangeRecord
	for _, t := range tr {
		if t.Key == TrailerStore {
			out = append(out, ChangeRecord{Store: t.Value})
			continue
		}
		if len(out) == 0 {
			continue
		}
		r := &out[len(out)-1]
		switch t.Key {
		case TrailerAction:
			r.Action = t.Value
		case TrailerCluster:
			r.Cluster = t.Value
		case TrailerTenant:
			r.Tenant = t.Value
		case TrailerActor:
			r.Actor = t.Value
		case TrailerOnBehalfOf:
			r.OnBehalfOf = t.Value
		case TrailerRequestID:
			r.RequestID = t.Value
		}
	}
	return out
}
