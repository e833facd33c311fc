package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes bounds every request body. A store request is well under 4 KiB; the
// limit leaves room for long unicode titles while keeping a hostile client from
// making the server buffer megabytes.
const MaxBodyBytes = 64 << 10

// Content types the API speaks.
const (
	ContentJSON       = "application/json"
	ContentProblem    = "application/problem+json"
	ContentMergePatch = "application/merge-patch+json"
)

// FieldError names one input field and the rule it broke. The same shape is used for
// decoding errors (rule "type", "unknown", "syntax") and domain validation errors.
type FieldError struct {
	Field  string `json:"field"`
	Rule   string `json:"rule"`
	Detail string `json:"detail,omitempty"`
}

// Problem is an RFC 9457 problem detail with Storefleet's extension members.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"requestId,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// challenge is a 401's WWW-Authenticate value (RFC 9110 11.6.1 requires one).
	challenge string
}

// Error makes a Problem usable as an error inside the HTTP layer.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// problemType is the stable, documented identifier of each problem kind; clients
// switch on it rather than on the human-readable title.
func problemType(code string) string { return "urn:storefleet:problem:" + code }

// newProblem builds a problem of the given kind.
func newProblem(status int, code, title, detail string, errs ...FieldError) *Problem {
	return &Problem{Type: problemType(code), Title: title, Status: status, Detail: detail, Errors: errs}
}

// Write sends v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, ContentJSON, v)
}

// WriteProblem sends p as application/problem+json, stamped with the request id.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.RequestID == "" {
		p.RequestID = RequestIDFrom(r.Context())
	}
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	if p.challenge != "" {
		w.Header().Set("WWW-Authenticate", p.challenge)
	}
	writeJSON(w, p.Status, ContentProblem, p)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Store titles are any unicode and may contain <, > and &; HTML escaping would
	// only make them harder to read for API clients.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"title":"encoding response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	// Known here, so a HEAD answers it as its GET would; net/http works it out on its
	// own only for bodies that fit its buffer.
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func badBody(fe FieldError) *Problem {
	return newProblem(http.StatusBadRequest, "malformed-body", "Malformed request body", fe.Detail, fe)
}

// readRaw checks the Content-Type and reads at most MaxBodyBytes of the body.
func readRaw(w http.ResponseWriter, r *http.Request, contentTypes ...string) ([]byte, *Problem) {
	if len(contentTypes) == 0 {
		contentTypes = []string{ContentJSON}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !contains(contentTypes, mt) {
		return nil, newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"Content-Type must be one of: "+strings.Join(contentTypes, ", "),
			FieldError{Field: "Content-Type", Rule: "mediaType", Detail: "expected " + strings.Join(contentTypes, " or ")})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
				fmt.Sprintf("the request body must be at most %d bytes", MaxBodyBytes),
				FieldError{Field: "", Rule: "maxBytes", Detail: fmt.Sprintf("at most %d bytes", MaxBodyBytes)})
		}
		return nil, newProblem(http.StatusBadRequest, "malformed-body", "Malformed request body", "reading the body failed")
	}
	return body, nil
}

// Decode is the strict JSON decoder behind Read, separate so that it can be fuzzed.
// It returns nil or the one field error that stopped decoding.
func Decode(body []byte, v any) *FieldError {
	if !utf8.Valid(body) {
		// encoding/json would silently replace invalid bytes with U+FFFD and store a
		// title that is not what the client sent.
		return &FieldError{Field: "", Rule: "utf8", Detail: "the body is not valid UTF-8"}
	}
	// Before encoding/json, which silently takes a key given twice or spelled in
	// another case; checkKeys also names an unknown key by its full path
	// ("settings.colour"), where encoding/json names only "colour".
	if fe := checkKeys(body, reflect.TypeOf(v)); fe != nil {
		return fe
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "", Rule: "syntax", Detail: "the body must hold exactly one JSON value"}
	}
	return nil
}

func decodeError(err error) *FieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &FieldError{Rule: "syntax", Detail: fmt.Sprintf("invalid JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.Is(err, io.EOF):
		return &FieldError{Rule: "syntax", Detail: "the body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Rule: "syntax", Detail: "the body ends in the middle of a JSON value"}
	case errors.As(err, &typ):
		field := typ.Field
		return &FieldError{Field: field, Rule: "type",
			Detail: fmt.Sprintf("%s must be %s, not %s", orBody(field), jsonKind(typ.Type.Kind().String()), typ.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		f = strings.TrimSuffix(f, `"`)
		if f == "" {
			f = `""`
		}
		return &FieldError{Field: f, Rule: "unknown", Detail: fmt.Sprintf("unknown field %q", f)}
	}
	return &FieldError{Rule: "syntax", Detail: msg}
}

func orBody(field string) string {
	if field == "" {
		return "the body"
	}
	return field
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float64", "float32":
		return "a number"
	}
	return goKind
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func join(prefix, k string) string {
	if k == "" {
		// An empty key must still be visible in the error.
		k = `""`
	}
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}
