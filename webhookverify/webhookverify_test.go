package webhookverify_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/webhook"
	"github.com/m4sh/backend/webhookverify"
)

const secret = "whsec_C2FSb3ZlbHlQb255MTIzNDU2Nzg5MGFiY2RlZmdoaWo="

// signed returns headers and body as the service's sender builds them.
func signed(t *testing.T, at time.Time) (http.Header, []byte) {
	t.Helper()
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := webhook.NewMessage(webhook.Event{Type: webhook.SessionStarted, Data: webhook.SessionData{
		ClassroomID: uuid.New(), SessionID: uuid.New(), Title: "Week 1", TutorID: "tina", StartedAt: at,
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", msg.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", "v0,ignored "+key.Sign(msg.ID, at, msg.Body))
	return h, msg.Body
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h, body := signed(t, now)
	if err := webhookverify.Verify(secret, h, body, now.Add(time.Minute)); err != nil {
		t.Fatalf("Verify(a sent event) = %v", err)
	}
	e, err := webhookverify.Event(secret, h, body)
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := e.Discriminator(); typ != "session.started" {
		t.Errorf("Discriminator = %q", typ)
	}
	if s, err := e.AsWebhookSessionEvent(); err != nil || s.Data.Title != "Week 1" || s.Data.TutorId != "tina" {
		t.Errorf("AsWebhookSessionEvent = %+v, %v", s, err)
	}
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2] ^= 1
	for name, tc := range map[string]struct {
		secret string
		body   []byte
		at     time.Time
		want   error
	}{
		"tampered body": {secret, tampered, now, webhookverify.ErrSignature},
		"other secret":  {"whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0xMjM0", body, now, webhookverify.ErrSignature},
		"stale":         {secret, body, now.Add(6 * time.Minute), webhookverify.ErrTimestamp},
		"bad secret":    {"C2FSb3Zl", body, now, webhookverify.ErrSecret},
	} {
		if err := webhookverify.Verify(tc.secret, h, tc.body, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
	if err := webhookverify.Verify(secret, http.Header{}, body, now); !errors.Is(err, webhookverify.ErrMissingHeaders) {
		t.Errorf("no headers: Verify = %v", err)
	}
}
