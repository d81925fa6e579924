// Package webhookverify checks the M4SH service's webhooks on the receiving side: the
// Standard Webhooks signature over the raw body, and the timestamp's freshness. Receivers
// import it (with the generated gen/client types) instead of re-deriving the scheme.
package webhookverify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/m4sh/backend/gen/client"
)

// Tolerance is how far webhook-timestamp may be from the receiver's clock: older requests
// are refused as possible replays.
const Tolerance = 5 * time.Minute

// Errors Verify returns.
var (
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp      = errors.New("webhook: timestamp missing, malformed or outside the tolerance")
	ErrSignature      = errors.New("webhook: no signature matches")
	ErrSecret         = errors.New(`webhook: secret must be "whsec_" followed by base64`)
)

// Verify checks the request's headers and raw body against secret (the WEBHOOK_SECRET the
// service uses, "whsec_…") at time now, and returns nil when one v1 signature matches.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) == 0 {
		return ErrSecret
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return ErrTimestamp
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, _ := strings.Cut(s, ",")
		if version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}

// Event verifies the request as Verify does (at the current time) and decodes the body.
// Switch on the result's Discriminator() and read it with As…Event.
func Event(secret string, h http.Header, body []byte) (client.WebhookEvent, error) {
	var e client.WebhookEvent
	if err := Verify(secret, h, body, time.Now()); err != nil {
		return e, err
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("webhook: decoding the body: %w", err)
	}
	return e, nil
}
