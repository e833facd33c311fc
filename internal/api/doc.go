// Package api is Storefleet's HTTP front door and the only package that imports go-chi.
//
// It owns the wire: routes, JSON decoding (strict, size-limited), RFC 9457 problem
// responses, request ids, request logging, per-route write deadlines, the OpenAPI
// document and graceful shutdown. It holds no business rules: every store operation
// is delegated to a Service (implemented by internal/fleet), and domain error codes
// become HTTP statuses only here.
package api
