package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/webhook"
)

// TestSignMatchesThePublishedVector signs the example of the Standard Webhooks reference
// libraries' tests: a fixed secret, id, timestamp and body with a known signature.
func TestSignMatchesThePublishedVector(t *testing.T) {
	t.Parallel()
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := secret.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestParseSecretRefusesMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `must start with "whsec_"`},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", `must start with "whsec_"`},
		{"whsec_not base64!", "not valid standard base64"},
		{"whsec_c2hvcnQ=", "must decode to 24 to 64 bytes, got 5"},
	} {
		_, err := webhook.ParseSecret(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSecret(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParseEvents(t *testing.T) {
	t.Parallel()
	if set, err := webhook.ParseEvents(nil); err != nil || set != nil {
		t.Errorf("ParseEvents(nil) = %v, %v; want nil (all), nil", set, err)
	}
	set, err := webhook.ParseEvents([]string{"session.ended", "ping"})
	if err != nil || len(set) != 2 || !set["session.ended"] || !set["ping"] {
		t.Errorf("ParseEvents(session.ended, ping) = %v, %v", set, err)
	}
	if _, err := webhook.ParseEvents([]string{"session.ended", "session.paused"}); err == nil || !strings.Contains(err.Error(), `"session.paused" is not an event`) {
		t.Errorf("ParseEvents(session.paused) = %v, want it refused by name", err)
	}
}

// TestDefaultScheduleCoversADay: the retries of the default schedule span at least 24 h, and
// the documented figures hold.
func TestDefaultScheduleCoversADay(t *testing.T) {
	t.Parallel()
	s := webhook.DefaultSchedule
	n := s.MaxAttempts()
	var total time.Duration
	for a := 1; a < n; a++ {
		total += s.Delay(a)
	}
	if n != 16 || total < 24*time.Hour || total != 29*time.Hour+22*time.Minute+30*time.Second {
		t.Errorf("default schedule: %d attempts over %s, want 16 over 29h22m30s", n, total)
	}
	for a, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 11: 10240 * time.Second, 12: 20480 * time.Second, 13: 6 * time.Hour, 15: 6 * time.Hour} {
		if got := s.Delay(a); got != want {
			t.Errorf("Delay(%d) = %s, want %s", a, got, want)
		}
	}
}
