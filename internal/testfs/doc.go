// Package testfs holds what the full-disk tests of several packages share: filling a
// small filesystem to the last byte. Tests only; nothing in the product imports it.
package testfs
