// Package review reads the approval policy: which store changes need a reviewer's
// approval (a pull request to the fleet repository) before they reach the fleet's
// branch, by action, plan, engine, tenant and cluster. The rest are committed
// directly. The file is checked whole at start, so a typo (an unknown plan, a
// misspelt key) stops the server instead of silently sending nothing to review.
//
// It implements the domain's store.ReviewPolicy and imports nothing else of the
// project.
package review
