// Package apitoken owns the API tokens: their form ("sft_" and 32 random bytes), the file that
// lists them by the SHA-256 of each token (never the token itself), and checking a bearer
// token against that file, which is re-read when it changes so that issuing, rotating and
// revoking a token need no restart.
package apitoken
