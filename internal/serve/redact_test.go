package serve

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Whatever a log record carries, in its message, an attribute, an error or a group,
// and in either format, the fleet URL's credentials and the environment's secrets are
// masked; values without a secret keep their kind.
func TestLogLinesHoldNoSecret(t *testing.T) {
	const url = "https://robot:pw-5ecret-77@git.example.com/acme/fleet.git"
	cfg := config{url: url}
	cfg.auth.BearerToken = "tok-abcdef-123456"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log := slog.New(redactHandler{next: newHandler(format, slog.LevelDebug, &buf), red: cfg.redactor()})
		log = log.With("fleet", url)
		log.Warn("fetch "+url+" failed",
			"err", fmt.Errorf("get %q: %w", url+"/info/refs", errors.New("refused")),
			"header", "Authorization: Bearer tok-abcdef-123456",
			slog.Group("remote", "url", url),
			"took", 1500*time.Millisecond, "n", 3)
		out := buf.String()
		for _, secret := range []string{"pw-5ecret-77", "robot", "tok-abcdef-123456"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: %q shows: %s", format, secret, out)
			}
		}
		if !strings.Contains(out, "git.example.com/acme/fleet.git") {
			t.Errorf("%s: the URL itself is gone too: %s", format, out)
		}
		want := map[string]string{"text": "took=1.5s n=3", "json": `"took":1500000000,"n":3`}[format]
		if !strings.Contains(out, want) {
			t.Errorf("%s: plain values changed: want %s in %s", format, want, out)
		}
	}
}
