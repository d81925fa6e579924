package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// unwrapper is a middleware's writer around another, as http.ResponseController expects.
type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestResponseStarted: an error after the status line went out is only logged (the strict
// handler's ResponseErrorHandlerFunc), found through any number of wrapping writers.
func TestResponseStarted(t *testing.T) {
	rec := &statusRecorder{ResponseWriter: httptest.NewRecorder()}
	w := unwrapper{unwrapper{rec}}
	if responseStarted(w) {
		t.Fatal("responseStarted before any write = true")
	}
	w.WriteHeader(http.StatusOK)
	if !responseStarted(w) {
		t.Fatal("responseStarted after WriteHeader = false")
	}
	if responseStarted(httptest.NewRecorder()) {
		t.Fatal("responseStarted on a writer with no statusRecorder = true")
	}
}
