package api

import (
	"crypto/sha256"
	"encoding/hex"
)

// fingerprint hashes a request's parts (method, path, query, body) so that an
// Idempotency-Key reused for another request is told apart from a retry.
func fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
