package github

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/storefleet/storefleet/internal/store"
)

// maxDiff keeps the body under GitHub's 65,536-character limit with room for the
// table; the branch's commit holds the whole change anyway.
const maxDiff = 60_000

// diff is the unified diff of c against the store's folder at the fleet's head.
func (w *Writer) diff(ctx context.Context, c store.Change) (string, error) {
	_, old, err := w.Repository.ReadDir(ctx, c.Dir)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	before := map[string]string{}
	after := map[string]string{}
	for _, f := range old {
		before[f.Path] = string(f.Content)
	}
	if !c.Remove {
		for _, f := range c.Files {
			after[f.Path] = string(f.Content)
		}
	}
	paths := map[string]bool{}
	for p := range before {
		paths[p] = true
	}
	for p := range after {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, p := range sorted {
		if before[p] == after[p] {
			continue
		}
		from, to := "a/"+p, "b/"+p
		if _, ok := before[p]; !ok {
			from = "/dev/null"
		}
		if _, ok := after[p]; !ok {
			to = "/dev/null"
		}
		d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(before[p]), B: difflib.SplitLines(after[p]),
			FromFile: from, ToFile: to, Context: 3})
		if err != nil {
			return "", err
		}
		b.WriteString(d)
	}
	return b.String(), nil
}

// body is the pull request's description: who asked for what, and the exact diff.
func body(c store.Change, diff string) string {
	var b strings.Builder
	b.WriteString("Storefleet asks for a review of this change to the fleet. Merging this pull request applies it; closing it without merge rejects it.\n\n")
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | `%s` |\n", k, strings.ReplaceAll(v, "`", "'"))
		}
	}
	row("Store", c.Store)
	row("Action", string(c.Action))
	row("Plan", c.Plan)
	row("Engine", c.Engine)
	row("Tenant", c.Tenant)
	row("Cluster", c.Cluster)
	row("Requested by", c.Actor)
	row("On behalf of", c.OnBehalfOf)
	row("Request id", c.RequestID)
	if len(diff) > maxDiff {
		diff = diff[:maxDiff] + "\n… (cut; the branch's commit has the whole change)\n"
	}
	b.WriteString("\n```diff\n" + diff + "```\n")
	return b.String()
}
