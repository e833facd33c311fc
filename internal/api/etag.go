package api

import (
	"net/http"
	"strings"
)

// A store's entity tag is the SHA of the commit that last changed it (View.Commit),
// quoted: a strong tag, since that commit fixes the store's files byte for byte. A
// client sends it back in If-Match on PATCH or DELETE so that its change applies only
// to the version it read, and gets 412 if the store moved on meanwhile.

// etag quotes a commit SHA as an entity tag.
func etag(sha string) string { return `"` + sha + `"` }

// ifMatch reads the If-Match header (RFC 9110, 13.1.1) into the commit SHAs a change
// may apply to. "*" asks only that the store exists, which PATCH and DELETE require
// anyway (404 otherwise), so it is no precondition: nil. If-Match compares strongly,
// so a weak tag can match nothing; it is kept in a form no SHA has (W/<tag>) rather
// than dropped, which would turn the request into an unconditional one. A header that
// is not a list of entity tags is a 400 naming it.
func ifMatch(r *http.Request) ([]string, *Problem) {
	values, present := r.Header["If-Match"]
	if !present {
		return nil, nil
	}
	var tags []string
	star := false
	for _, v := range values {
		for s := strings.TrimLeft(v, " \t,"); s != ""; s = strings.TrimLeft(s, " \t,") {
			if rest, ok := strings.CutPrefix(s, "*"); ok {
				star, s = true, rest
				continue
			}
			weak := strings.HasPrefix(s, `W/`)
			if weak {
				s = s[2:]
			}
			end := strings.IndexByte(s[min(1, len(s)):], '"')
			if !strings.HasPrefix(s, `"`) || end < 0 {
				return nil, badIfMatch()
			}
			tag := s[1 : end+1]
			s = s[end+2:]
			if weak {
				tag = "W/" + tag
			}
			tags = append(tags, tag)
		}
	}
	switch {
	case star:
		return nil, nil
	case len(tags) == 0:
		return nil, badIfMatch()
	}
	return tags, nil
}

func badIfMatch() *Problem {
	const detail = `If-Match must be * or a list of entity tags as the ETag header gives them, such as "0123abc…"`
	return newProblem(http.StatusBadRequest, "invalid-header", "Invalid header", detail,
		FieldError{Field: "If-Match", Rule: "entityTag", Detail: detail})
}
