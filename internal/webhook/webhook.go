// Package webhook delivers the service's events to one configured receiver, signed as the
// Standard Webhooks specification defines. A feature reports a change by calling Publish with
// the transaction that makes the change: the event becomes a River job in that transaction,
// so an event exists exactly when its change committed (none for a rolled-back change, none
// lost on a crash). A River worker on its own queue POSTs it, retrying with exponential
// back-off for at least 24 hours (see Schedule), so a slow or dead receiver delays nothing
// else.
//
// Adding an event is one call: define its type name and data struct here, then call
// Publish(ctx, tx, Event{Type: …, Data: …}) beside the row it reports. participant.joined
// and participant.left are defined for the attendance recorder, which calls
// Publish with the transaction that writes the attendance span.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Event type names, as receivers see them in `type` and WEBHOOK_EVENTS lists them. Stored in
// River's tables and in receivers' code: never rename one.
const (
	SessionStarted     = "session.started"
	SessionEnded       = "session.ended"
	ParticipantJoined  = "participant.joined"
	ParticipantLeft    = "participant.left"
	SoloQuotaExceeded  = "solo.quota_exceeded"
	Ping               = "ping"
	secretPrefix       = "whsec_"
	minSecretBytes     = 24
	maxSecretBytes     = 64
	headerID           = "Webhook-Id" // webhook-id, in Go's canonical form
	headerTimestamp    = "Webhook-Timestamp"
	headerSignature    = "Webhook-Signature"
	signatureVersionV1 = "v1"
)

// Types lists every event type, in the order the documentation gives them. Metrics are
// labelled by these names only, so their label set is bounded.
var Types = []string{SessionStarted, SessionEnded, ParticipantJoined, ParticipantLeft, SoloQuotaExceeded, Ping}

// SessionData is the data of session.started and session.ended.
type SessionData struct {
	ClassroomID uuid.UUID  `json:"classroom_id"`
	SessionID   uuid.UUID  `json:"session_id"`
	Title       string     `json:"title"`
	TutorID     string     `json:"tutor_id"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
}

// ParticipantData is the data of participant.joined and participant.left: one attendance
// span's start or end, after presence's leave grace.
type ParticipantData struct {
	ClassroomID uuid.UUID  `json:"classroom_id"`
	SessionID   uuid.UUID  `json:"session_id"`
	UserID      string     `json:"user_id"`
	Role        string     `json:"role"`
	JoinedAt    time.Time  `json:"joined_at"`
	LeftAt      *time.Time `json:"left_at,omitempty"`
}

// QuotaExceededData is the data of solo.quota_exceeded: a snapshot upload refused with 403.
type QuotaExceededData struct {
	UserID    string    `json:"user_id"`
	SessionID uuid.UUID `json:"session_id"`
	Used      int64     `json:"used"`
	Quota     int64     `json:"quota"`
	Remaining int64     `json:"remaining"`
}

// PingData is the data of ping, sent by `m4sh webhooks test`.
type PingData struct {
	Message string `json:"message"`
}

// Event is one event before it is queued. At is when the change happened (now when zero).
type Event struct {
	Type string
	Data any
	At   time.Time
}

// envelope is the JSON body every receiver gets.
type envelope struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// Message is one event ready to send: its id (the webhook-id header, the same on every
// attempt, so receivers can drop duplicates) and its exact body.
type Message struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// NewMessage renders an event: a fresh msg_ id and the JSON envelope.
func NewMessage(e Event) (Message, error) {
	if !slices.Contains(Types, e.Type) {
		return Message{}, fmt.Errorf("webhook: unknown event type %q", e.Type)
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	id := "msg_" + strings.ReplaceAll(uuid.New().String(), "-", "")
	body, err := json.Marshal(envelope{Type: e.Type, ID: id, Timestamp: at.UTC(), Data: e.Data})
	if err != nil {
		return Message{}, fmt.Errorf("webhook: encoding %s: %w", e.Type, err)
	}
	return Message{ID: id, Type: e.Type, Body: body}, nil
}

// Secret is a decoded signing secret.
type Secret []byte

// ParseSecret decodes a secret as Standard Webhooks writes it: "whsec_" then base64 of
// 24 to 64 random bytes. Anything else is refused, so a typo stops start-up rather than
// producing signatures no receiver accepts.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, errors.New(`must start with "whsec_" followed by base64 (as Standard Webhooks defines)`)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New(`the part after "whsec_" is not valid standard base64`)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("must decode to %d to %d bytes, got %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return Secret(key), nil
}

// Sign returns the webhook-signature value for one attempt: "v1," and the base64
// HMAC-SHA256 of "id.timestamp.body" keyed with the secret.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	return s.signer().sign(id, strconv.FormatInt(ts.Unix(), 10), body)
}

// signer signs one event after another with one keyed HMAC and one buffer (a batch's
// worker): the key schedule and the buffers are not redone per event.
type signer struct {
	mac hash.Hash
	buf []byte
}

func (s Secret) signer() *signer { return &signer{mac: hmac.New(sha256.New, s)} }

// sign is Sign with the timestamp already formatted (it is also the header's value).
func (g *signer) sign(id, ts string, body []byte) string {
	g.mac.Reset()
	g.buf = append(append(append(append(g.buf[:0], id...), '.'), ts...), '.')
	g.mac.Write(g.buf)
	g.mac.Write(body)
	g.buf = g.mac.Sum(g.buf[:0])
	sum := len(g.buf)
	g.buf = append(g.buf, signatureVersionV1+","...)
	g.buf = base64.StdEncoding.AppendEncode(g.buf, g.buf[:sum])
	return string(g.buf[sum:])
}

// ParseEvents reads a WEBHOOK_EVENTS list: empty means every event; an unknown name is an
// error naming it.
func ParseEvents(list []string) (map[string]bool, error) {
	if len(list) == 0 {
		return nil, nil
	}
	set := map[string]bool{}
	for _, name := range list {
		if !slices.Contains(Types, name) {
			return nil, fmt.Errorf("%q is not an event (known: %s)", name, strings.Join(Types, ", "))
		}
		set[name] = true
	}
	return set, nil
}

// QueueName is the River queue deliveries run on, apart from every other job.
const QueueName = "webhooks"

// TxInserter is the part of the River client Publish and PublishMany need.
type TxInserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Publisher queues events inside the transactions of the changes they report. The zero
// value and a nil *Publisher publish nothing (webhooks off), so features call it
// unconditionally.
type Publisher struct {
	jobs        TxInserter
	events      map[string]bool // nil: all
	maxAttempts int
}

// NewPublisher returns a Publisher inserting through jobs; events filters the types sent
// (nil: all); maxAttempts is the Schedule's attempt count.
func NewPublisher(jobs TxInserter, events map[string]bool, maxAttempts int) *Publisher {
	return &Publisher{jobs: jobs, events: events, maxAttempts: maxAttempts}
}

// Enabled reports whether events of type t are sent.
func (p *Publisher) Enabled(t string) bool {
	return p != nil && p.jobs != nil && (p.events == nil || p.events[t])
}

// Publish queues e in tx: it is delivered once tx commits, and never when tx rolls back.
// Types filtered out by WEBHOOK_EVENTS, and everything when webhooks are off, are skipped.
func (p *Publisher) Publish(ctx context.Context, tx pgx.Tx, e Event) error {
	if !p.Enabled(e.Type) {
		return nil
	}
	msg, err := NewMessage(e)
	if err != nil {
		return err
	}
	if _, err := p.jobs.InsertTx(ctx, tx, DeliverArgs{Message: msg}, &river.InsertOpts{Queue: QueueName, MaxAttempts: p.maxAttempts}); err != nil {
		return fmt.Errorf("queueing webhook %s: %w", e.Type, err)
	}
	return nil
}

// MaxBatch is the most events one batch job carries (PublishMany): enough that a writer's
// batch of joins and leaves is one job, few enough that a batch is sent well within its
// time budget (deliverBatchWorker) on a receiver answering in milliseconds.
const MaxBatch = 100

// PublishMany queues events in tx (a writer recording many changes in one transaction):
// two or more go as batch jobs of up to MaxBatch events, each delivered as its own signed
// POST in order by one worker, so that River fetches and completes one job per batch rather
// than per event; a single event is an ordinary job. Like Publish, filtered types and
// everything when webhooks are off are skipped.
func (p *Publisher) PublishMany(ctx context.Context, tx pgx.Tx, events []Event) error {
	msgs := make([]BatchEvent, 0, len(events))
	for _, e := range events {
		if !p.Enabled(e.Type) {
			continue
		}
		msg, err := NewMessage(e)
		if err != nil {
			return err
		}
		msgs = append(msgs, BatchEvent{ID: msg.ID, Type: msg.Type, Body: string(msg.Body)})
	}
	if len(msgs) == 0 {
		return nil
	}
	opts := &river.InsertOpts{Queue: QueueName, MaxAttempts: p.maxAttempts}
	if len(msgs) == 1 {
		if _, err := p.jobs.InsertTx(ctx, tx, DeliverArgs{Message: msgs[0].message()}, opts); err != nil {
			return fmt.Errorf("queueing webhook %s: %w", msgs[0].Type, err)
		}
		return nil
	}
	params := make([]river.InsertManyParams, 0, (len(msgs)+MaxBatch-1)/MaxBatch)
	for batch := range slices.Chunk(msgs, MaxBatch) {
		params = append(params, river.InsertManyParams{Args: DeliverBatchArgs{Events: batch}, InsertOpts: opts})
	}
	if _, err := p.jobs.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queueing %d webhooks: %w", len(msgs), err)
	}
	return nil
}
