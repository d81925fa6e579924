package config

import (
	"fmt"
	"net/url"
	"time"
)

// Webhook configures signed event delivery (README: Webhooks). Kept apart from the other
// sections: the secret and the event names are checked where they are used (the webhook
// builder in internal/app), which refuses a malformed one at start-up naming the variable.
type Webhook struct {
	URL     string        // WEBHOOK_URL: the receiver; empty = webhooks off
	Secret  string        // WEBHOOK_SECRET: whsec_ + base64 (Standard Webhooks)
	Events  []string      // WEBHOOK_EVENTS: comma list of event types to send; empty = all
	Timeout time.Duration // WEBHOOK_TIMEOUT: one attempt, connect to status
	Workers int           // WEBHOOK_WORKERS: concurrent deliveries on the webhooks queue
	// Retry is not read from the environment: zero means the documented schedule (10 s
	// doubling to 6 h, for at least 24 h); tests set a millisecond one.
	Retry WebhookRetry
}

// WebhookRetry overrides the retry back-off (see webhook.Schedule) and how often due retries
// are looked for.
type WebhookRetry struct {
	Base, Cap, For, Poll time.Duration
}

// String keeps the secret out of logs and test output.
func (w Webhook) String() string {
	return fmt.Sprintf("{URL:%s Events:%v Timeout:%s Workers:%d secret set:%t}", w.URL, w.Events, w.Timeout, w.Workers, w.Secret != "")
}

func loadWebhook(p *parser) Webhook {
	w := Webhook{
		URL:     p.str("WEBHOOK_URL", ""),
		Secret:  p.str("WEBHOOK_SECRET", ""),
		Events:  p.list("WEBHOOK_EVENTS"),
		Timeout: p.durationRange("WEBHOOK_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute),
		Workers: p.intRange("WEBHOOK_WORKERS", 20, 1, 1000),
	}
	if w.URL == "" {
		return w
	}
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail("WEBHOOK_URL", "must be an http:// or https:// URL")
	}
	if w.Secret == "" {
		p.fail("WEBHOOK_SECRET", "must be set when WEBHOOK_URL is")
	}
	return w
}
