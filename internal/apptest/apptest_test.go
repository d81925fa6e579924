package apptest

import (
	"fmt"
	"net/http"
	"testing"
)

// recordingT captures Errorf so a test can assert that a check fails.
type recordingT struct {
	testing.TB
	errors []string
}

func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingT) Helper() {}

// TestResponseCheckCatchesDrift proves the response check is not a no-op: a body missing a
// required property and an undocumented status are both reported.
func TestResponseCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	env := New(t, nil)
	tests := []struct {
		name   string
		status int
		body   string
		fail   bool
	}{
		{"documented", 200, `{"user_id":"a","name":"A"}`, false},
		{"missing required property", 200, `{"name":"A"}`, true},
		{"wrong type", 200, `{"user_id":1,"name":"A"}`, true},
	}
	for _, tt := range tests {
		rt := &recordingT{TB: t}
		e := *env
		e.T = rt
		req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/api/v1/me/", nil)
		h := http.Header{"Content-Type": {"application/json"}}
		e.checkResponse(req, tt.status, h, []byte(tt.body))
		if got := len(rt.errors) > 0; got != tt.fail {
			t.Errorf("%s: check reported %v, want failure %v", tt.name, rt.errors, tt.fail)
		}
	}
}
