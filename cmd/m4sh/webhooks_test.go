package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

const webhookSecret = "whsec_C2FSb3ZlbHlQb255MTIzNDU2Nzg5MGFiY2RlZmdoaWo="

// TestWebhooksTest sends the ping to a loopback receiver that checks its signature, and
// reports the receiver's status; a refusing receiver makes the command fail after printing.
func TestWebhooksTest(t *testing.T) {
	t.Parallel()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(webhookSecret, "whsec_"))
	var status atomic.Int64
	status.Store(http.StatusNoContent)
	var gotType atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.%s", r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
		if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e struct{ Type string }
		_ = json.Unmarshal(body, &e)
		gotType.Store(e.Type)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	vars := map[string]string{"WEBHOOK_URL": srv.URL, "WEBHOOK_SECRET": webhookSecret}
	out, err := runCmd(t, vars, "webhooks", "test")
	var res struct {
		ID        string  `json:"id"`
		Status    int     `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Status != 204 || !strings.HasPrefix(res.ID, "msg_") || res.LatencyMS <= 0 || gotType.Load() != "ping" {
		t.Fatalf("webhooks test = %q, %v (receiver saw %v); want status 204 for a signed ping", out, err, gotType.Load())
	}
	status.Store(http.StatusForbidden)
	out, err = runCmd(t, vars, "webhooks", "test")
	if err == nil || !strings.Contains(err.Error(), "answered 403") || !strings.Contains(out, `"status":403`) {
		t.Errorf("webhooks test against a 403 = %q, %v; want the status printed and an error", out, err)
	}
	if _, err := runCmd(t, map[string]string{}, "webhooks", "test"); err == nil || !strings.Contains(err.Error(), "WEBHOOK_URL is not set") {
		t.Errorf("webhooks test without WEBHOOK_URL = %v", err)
	}
}
