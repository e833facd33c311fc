package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// WebhookPath is where GitHub's webhook deliveries arrive. It is outside the bearer
// authentication of /api/v1: GitHub signs its deliveries instead, and only that
// signature (X-Hub-Signature-256) is checked.
const WebhookPath = "/api/v1/github/webhook"

// maxDelivery is GitHub's own cap on a webhook payload.
const maxDelivery = 25 << 20

// webhookDeadline: GitHub gives up on a delivery after 10 s; the receiver only
// checks and queues, so this is far more than it needs.
const webhookDeadline = 10 * time.Second

func githubWebhook(rcv store.DeliveryReceiver, a *api) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDelivery))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				WriteProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Delivery too large",
					"a delivery is at most 25 MiB", FieldError{Field: "body", Rule: "max-size", Detail: "at most 25 MiB"}))
				return
			}
			WriteProblem(w, r, badBody(FieldError{Field: "body", Rule: "readable", Detail: "the delivery's body could not be read"}))
			return
		}
		d := store.Delivery{Event: r.Header.Get("X-GitHub-Event"), ID: r.Header.Get("X-GitHub-Delivery"),
			Signature: r.Header.Get("X-Hub-Signature-256"), Payload: body}
		err = rcv.Receive(r.Context(), d)
		switch store.ErrorCode(err) {
		case "":
			Write(w, http.StatusAccepted, map[string]string{"status": "accepted"})
		case store.EUNAUTHORIZED:
			// No Bearer challenge: this route takes no token, only GitHub's signature.
			WriteProblem(w, r, newProblem(http.StatusUnauthorized, "bad-signature", "Signature missing or wrong",
				store.ErrorMessage(err), FieldError{Field: "X-Hub-Signature-256", Rule: "hmac-sha256",
					Detail: "must be sha256=<hex HMAC-SHA256 of the body with the webhook secret>"}))
		case store.EINVALID:
			fe := []FieldError{}
			for _, f := range store.FieldErrors(err) {
				fe = append(fe, FieldError{Field: f.Field, Rule: f.Rule, Detail: f.Message})
			}
			WriteProblem(w, r, newProblem(http.StatusBadRequest, "bad-delivery", "Bad delivery", store.ErrorMessage(err), fe...))
		default:
			a.writeError(w, r, err)
		}
	}
}
