// Package dashboard serves the web dashboard: a page and its scripts and styles,
// embedded in the binary so that gitops-api needs nothing beside it and `make run`
// needs no JavaScript toolchain. The page speaks only the public API (/api/v1,
// its event stream and /openapi.json), so it can do nothing a curl user cannot,
// and it is itself public: it holds no data until the API gives it some.
package dashboard
