package api

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// fingerprint hashes a request's parts (method, path, flags, canonical body) so that
// an Idempotency-Key reused for another request is told apart from a retry.
func fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalFlags is the part of the query an Idempotency-Key's fingerprint covers:
// the flags that are set, by name, so "?purge=1" and "?purge=true" are one request
// and "?dryRun=false" is the same as no query. Dry runs are never bound to a key, so
// dryRun never shows here.
func canonicalFlags(q map[string]bool) []byte {
	var set []string
	for k, v := range q {
		if v {
			set = append(set, k+"=true")
		}
	}
	sort.Strings(set)
	return []byte(strings.Join(set, "&"))
}
