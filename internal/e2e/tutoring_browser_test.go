package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// TestTutoringDemoInBrowser walks the demo page's presence and tutoring sections in
// headless Chromium as a tutor and a student (e2e/browser/tutoring.mjs), signed in with
// pasted tokens on a service without DEV_TOKENS (no picker offered); a creation over
// API_WRITE_RATE_PER_MIN shows a 429 banner with its Retry-After; cursors take the
// colour and name of the presence state, a network drop within the leave grace makes
// neither window lose the other user for a moment (no flicker), a raised hand and a reaction reach the tutor, a
// student's spotlight is refused with an error frame, the tutor's spotlight moves the
// student's board, and clearing the hands queue empties it in both windows.
func TestTutoringDemoInBrowser(t *testing.T) {
	t.Parallel()
	chromium, root := apptest.Chromium(t)
	env := apptest.New(t, map[string]string{"WS_LEAVE_GRACE": "5s", "API_WRITE_RATE_PER_MIN": "3"})
	type cursor struct{ Colour, Label string }
	var got struct {
		Picker []struct {
			DevOff bool
			Users  int
		} `json:"picker"`
		RateLimited struct {
			Status, Code, RetryAfter string
			RetryButton              bool
		} `json:"rateLimited"`
		SessionsAfter429  int    `json:"sessionsAfter429"`
		TutorID           string `json:"tutorID"`
		TutorSeesCursor   cursor `json:"tutorSeesCursor"`
		StudentSeesCursor cursor `json:"studentSeesCursor"`
		Flicker           struct {
			Tutor, Student int
			WhileOffline   string
		} `json:"flicker"`
		TutorSeesHands          []string `json:"tutorSeesHands"`
		StudentRefused          string   `json:"studentRefused"`
		StudentSpotlightChecked bool     `json:"studentSpotlightChecked"`
		StudentBoard            struct {
			Left, Top int
			Followed  string
		} `json:"studentBoard"`
		StudentHandsAfterClear int      `json:"studentHandsAfterClear"`
		Errors                 []string `json:"errors"`
	}
	apptest.RunBrowserDriver(t, root, 2*time.Minute, "tutoring.mjs", &got,
		chromium, env.Server.URL+"/demo/", env.Token("tina"), "sam", env.Token("sam"))
	if len(got.Picker) != 2 || !got.Picker[0].DevOff || got.Picker[0].Users != 0 || !got.Picker[1].DevOff {
		t.Errorf("sign-in without DEV_TOKENS: %+v, want no picker and the paste-a-token note in both windows", got.Picker)
	}
	if r := got.RateLimited; r.Status != "429" || r.Code != "rate_limited" || !strings.HasPrefix(r.RetryAfter, "Retry after ") || !r.RetryButton || got.SessionsAfter429 != 1 {
		t.Errorf("fourth creation within the minute: banner %+v, %d sessions; want 429 rate_limited, Retry after N s, a Retry button, 1 session", r, got.SessionsAfter429)
	}
	if got.TutorID != "tina" {
		t.Errorf("tutor window signed in as %q, want tina", got.TutorID)
	}
	if got.TutorSeesCursor.Colour != "#2f9e44" || got.TutorSeesCursor.Label != "Sam" {
		t.Errorf("tutor sees the student's cursor as %+v, want #2f9e44 labelled Sam", got.TutorSeesCursor)
	}
	if got.StudentSeesCursor.Colour != "#c2255c" || got.StudentSeesCursor.Label != "Tina" {
		t.Errorf("student sees the tutor's cursor as %+v, want #c2255c labelled Tina", got.StudentSeesCursor)
	}
	if got.Flicker.Tutor != 0 || got.Flicker.Student != 0 || !strings.HasPrefix(got.Flicker.WhileOffline, "closed 1006 offline") {
		t.Errorf("network drop within the grace: %+v; want no moment without the other user in either window", got.Flicker)
	}
	if len(got.TutorSeesHands) != 1 || got.TutorSeesHands[0] != "sam" {
		t.Errorf("tutor's hands queue %v, want [sam]", got.TutorSeesHands)
	}
	if !strings.Contains(got.StudentRefused, "refused spotlight: forbidden") || got.StudentSpotlightChecked {
		t.Errorf("student's spotlight: status %q, checked %t; want refused, unchecked", got.StudentRefused, got.StudentSpotlightChecked)
	}
	if got.StudentBoard.Left != 600 || got.StudentBoard.Top != 300 || got.StudentBoard.Followed != "600,300" {
		t.Errorf("student's board %+v, want scrolled to the tutor's 600,300", got.StudentBoard)
	}
	if got.StudentHandsAfterClear != 0 {
		t.Errorf("student's hands queue has %d after the tutor cleared it", got.StudentHandsAfterClear)
	}
	if len(got.Errors) > 0 {
		t.Errorf("page errors: %v", got.Errors)
	}
}
