package serve

import (
	"context"
	"log/slog"

	"github.com/storefleet/storefleet/internal/gitrepo"
)

// Credentials reach serve from --fleet-url (https://user:token@host/…) and from the
// environment (STOREFLEET_FLEET_PASSWORD, _TOKEN, _SSH_KEY_PASSPHRASE). gitrepo masks
// them in its own errors, but a log line is written by many hands (an error from a
// library, an attribute someone adds later): so every record serve logs passes
// through the fleet's Redactor, the one definition of what is secret, on its way
// out.

// redactHandler masks credentials in a record's message and every attribute before
// the handler below writes it.
type redactHandler struct {
	next slog.Handler
	red  gitrepo.Redactor
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.red.Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return redactHandler{next: h.next.WithAttrs(clean), red: h.red}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{next: h.next.WithGroup(name), red: h.red}
}

// attr masks the text of a value that could hold a secret (strings, errors, anything
// printed); a value whose text holds none is kept as it is, so structured handlers
// still see numbers, durations and lists.
func (h redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, x := range g {
			clean[i] = h.attr(x)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindString, slog.KindAny:
		text := v.String()
		if err, ok := v.Any().(error); ok {
			text = err.Error()
		}
		if clean := h.red.Text(text); clean != text {
			return slog.String(a.Key, clean)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
