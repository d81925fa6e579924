package webhook_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/webhook"
)

// TestTypeScriptVerifiesGoSignature signs an event here and has the TypeScript client's
// verifyWebhook (gen/ts/dist, run by node) accept it and parse it, and refuse it with one
// body byte changed or a stale timestamp.
func TestTypeScriptVerifiesGoSignature(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		apptest.Unavailable(t, "node is not installed")
	}
	root, err := dbtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := webhook.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := webhook.NewMessage(webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: "héllo from Go"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	in, _ := json.Marshal(map[string]string{
		"secret": testSecret, "body": string(msg.Body),
		"id": msg.ID, "ts": strconv.FormatInt(now.Unix(), 10), "sig": secret.Sign(msg.ID, now, msg.Body),
	})
	script := `
import { verifyWebhook, WebhookVerificationError } from ` + strconv.Quote("file://"+filepath.Join(root, "gen/ts/dist/index.js")) + `;
const c = JSON.parse(process.argv[1]);
const headers = { "webhook-id": c.id, "webhook-timestamp": c.ts, "webhook-signature": c.sig };
const ev = await verifyWebhook(c.secret, headers, c.body);
const bytes = new TextEncoder().encode(c.body);
const viaBytes = await verifyWebhook(c.secret, new Headers(headers), bytes);
const refused = async (fn) => { try { await fn(); return "accepted"; } catch (e) { return e instanceof WebhookVerificationError ? e.reason : String(e); } };
const tampered = c.body.replace("Go", "Ga");
console.log(JSON.stringify({
  type: ev.type, message: ev.data.message, id: ev.id, bytes: viaBytes.id,
  tampered: await refused(() => verifyWebhook(c.secret, headers, tampered)),
  stale: await refused(() => verifyWebhook(c.secret, headers, c.body, { now: Date.now() + 10 * 60 * 1000 })),
}));
`
	out, err := exec.Command(node, "--input-type=module", "-e", script, string(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := `{"type":"ping","message":"héllo from Go","id":"` + msg.ID + `","bytes":"` + msg.ID + `","tampered":"signature","stale":"timestamp"}`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("node said %s\nwant      %s", got, want)
	}
}
