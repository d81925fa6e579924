// Package natsbus carries presence events between the nodes of a cluster over core NATS
// (presence.Bus). Each classroom session has one subject; a node subscribes to it only while
// it has local connections in that session. Events published on a node are delivered to its
// own subscribers in process, synchronously (the order presence relies on), and sent to NATS
// stamped with the node's id, so that a node ignores its own messages coming back and local
// peers are not served twice. Core NATS is at-most-once: a cursor update lost in an outage is
// simply superseded by the next one (latest wins). Close requests (a removed member's
// connections, an ended session's) travel on one cluster-wide control subject
// (presence.Controller).
package natsbus

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/tracing"
)

// SubjectPrefix prefixes every subject the service uses.
const SubjectPrefix = "m4sh.presence."

// controlSubject carries cluster-wide control events.
const controlSubject = SubjectPrefix + "control"

// syncPrefix prefixes the subjects on which a node opening a session asks the others for
// its users' state (presence.Syncer): one per session, all answered by one subscription.
const syncPrefix = SubjectPrefix + "sync."

// Options configure a Bus.
type Options struct {
	URL  string
	Node uuid.UUID // this node's id, stamped on every message
	Log  *slog.Logger
	// ReconnectWait is the base back-off between reconnect attempts (jittered).
	ReconnectWait time.Duration
	Name          string // connection name shown by the server's monitoring
	// Tracing carries the trace of a join or leave to the receiving nodes in message
	// headers (nil: off). Cursor messages never carry headers.
	Tracing *tracing.Provider
	// SyncTimeout bounds how long a node opening a session waits for the other nodes'
	// answers to its sync (default 300 ms); a join's snapshot waits for it.
	SyncTimeout time.Duration
}

// Bus is a presence.Bus over NATS.
type Bus struct {
	nc    *nats.Conn
	node  uuid.UUID
	log   *slog.Logger
	local *presence.LocalBus
	trace *tracing.Provider

	mu   sync.Mutex
	subs map[uuid.UUID]*sessionSub

	ctlMu sync.RWMutex
	onCtl []func(presence.Close)
	ctl   *nats.Subscription

	syncTimeout time.Duration
	syncMu      sync.RWMutex
	onSync      func(session uuid.UUID, want []string) []presence.UserState
	syncSub     *nats.Subscription
}

// sessionSub is the node's NATS subscription to one session, shared by its local
// subscribers.
type sessionSub struct {
	refs int
	sub  *nats.Subscription
}

// Connect connects to NATS. It retries the first connection in the background when the
// server is down (the node still serves its local connections) and reconnects forever with
// jittered back-off; NATS restores subscriptions on reconnect, so fan-out resumes without
// clients reconnecting.
func Connect(o Options) (*Bus, error) {
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 300 * time.Millisecond
	}
	b := &Bus{node: o.Node, log: o.Log, trace: o.Tracing, local: presence.NewLocalBus(), subs: map[uuid.UUID]*sessionSub{}, syncTimeout: o.SyncTimeout}
	nc, err := nats.Connect(o.URL,
		nats.Name(o.Name),
		// The server does not send a node its own messages back: it delivered them
		// locally already (the origin check below stays as a guard).
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		// Back-off grows by ReconnectWait per attempt up to 8×, plus up to one
		// ReconnectWait of jitter so that nodes do not reconnect in lockstep.
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return o.ReconnectWait*time.Duration(min(max(attempts, 1), 8)) + rand.N(o.ReconnectWait)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			o.Log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			o.Log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			// Slow consumer: the subscription's pending limit dropped messages. Cursor
			// traffic tolerates it; log so an operator can see it.
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			o.Log.Warn("nats async error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("config: NATS_URL: %w", err)
	}
	b.nc = nc
	b.ctl, err = nc.Subscribe(controlSubject, b.receiveControl)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: subscribing to control events: %w", err)
	}
	b.syncSub, err = nc.Subscribe(syncPrefix+"*", b.answerSync)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: subscribing to sync requests: %w", err)
	}
	return b, nil
}

// Close drains nothing: presence events are ephemeral.
func (b *Bus) Close() { b.nc.Close() }

// Check reports whether the connection to NATS is up (for /readyz).
func (b *Bus) Check() error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats: %s", s)
	}
	return nil
}

// Subject is the session's subject.
func Subject(session uuid.UUID) string { return SubjectPrefix + session.String() }

// Subscribe adds deliver to the session's local subscribers and subscribes the node to the
// session's subject while there is at least one.
func (b *Bus) Subscribe(session uuid.UUID, deliver func(*presence.Event)) func() {
	unsub := b.local.Subscribe(session, deliver)
	b.mu.Lock()
	s := b.subs[session]
	if s == nil {
		s = &sessionSub{}
		sub, err := b.nc.Subscribe(Subject(session), func(m *nats.Msg) { b.receive(session, m) })
		if err != nil {
			b.log.Error("nats: subscribing to a session", "session", session, "err", err)
		} else {
			// A node that cannot keep up loses messages rather than memory; cursor
			// updates are superseded by the next ones.
			_ = sub.SetPendingLimits(65536, 64<<20)
		}
		s.sub = sub
		b.subs[session] = s
	}
	s.refs++
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			unsub()
			b.mu.Lock()
			defer b.mu.Unlock()
			s.refs--
			if s.refs == 0 {
				if s.sub != nil {
					_ = s.sub.Unsubscribe()
				}
				delete(b.subs, session)
			}
		})
	}
}

// Publish delivers e to the node's own subscribers, then sends it to the other nodes.
func (b *Bus) Publish(session uuid.UUID, e *presence.Event) {
	b.local.Publish(session, e)
	if e.Trace.IsValid() && b.trace.Enabled() {
		b.publishTraced(session, e)
		return
	}
	if err := b.nc.Publish(Subject(session), encode(b.node, e)); err != nil {
		b.log.Debug("nats: publish failed", "session", session, "err", err)
	}
}

// publishTraced sends e in a "nats publish" span, child of e.Trace, whose context travels
// in the message headers.
func (b *Bus) publishTraced(session uuid.UUID, e *presence.Event) {
	ctx := trace.ContextWithSpanContext(context.Background(), e.Trace)
	ctx, span := b.trace.Tracer().Start(ctx, "nats publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.Int("presence.kind", int(e.Kind))))
	defer span.End()
	m := &nats.Msg{Subject: Subject(session), Data: encode(b.node, e), Header: nats.Header{}}
	b.trace.Propagator().Inject(ctx, propagation.HeaderCarrier(m.Header))
	if err := b.nc.PublishMsg(m); err != nil {
		span.RecordError(err)
		b.log.Debug("nats: publish failed", "session", session, "err", err)
	}
}

// receive delivers another node's event to this node's subscribers. NATS calls it from one
// goroutine per subscription, in the order the origin published.
func (b *Bus) receive(session uuid.UUID, m *nats.Msg) {
	origin, e, _, err := decode(m.Data)
	if err != nil {
		b.log.Warn("nats: undecodable presence message", "subject", m.Subject, "err", err)
		return
	}
	if origin == b.node {
		return
	}
	if e.At == 0 && timed(e.Kind) {
		e.At = time.Now().UnixMicro() // sent without its time: it is the newest we know of
	}
	if len(m.Header) > 0 && b.trace.Enabled() {
		ctx := b.trace.Propagator().Extract(context.Background(), propagation.HeaderCarrier(m.Header))
		ctx, span := b.trace.Tracer().Start(ctx, "nats receive", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.Int("presence.kind", int(e.Kind))))
		defer span.End()
		e.Trace = trace.SpanContextFromContext(ctx)
	}
	b.local.Publish(session, e)
}

// OnClose registers fn for close requests from any node, this one included
// (presence.Controller).
func (b *Bus) OnClose(fn func(presence.Close)) {
	b.ctlMu.Lock()
	b.onCtl = append(b.onCtl, fn)
	b.ctlMu.Unlock()
}

// PublishClose hands c to this node's OnClose functions, then to every other node's
// (presence.Controller). The message is a close event (user, code, reason) followed by the
// classroom id and, when the close names one session, the session id.
func (b *Bus) PublishClose(c presence.Close) error {
	e := &presence.Event{Kind: presence.KindClose, User: presence.User{UserID: c.UserID}, Code: c.Code, Reason: c.Reason}
	data := encode(b.node, e)
	data = append(data, c.ClassroomID[:]...)
	if c.SessionID != uuid.Nil {
		data = append(data, c.SessionID[:]...)
	}
	b.control(c)
	if err := b.nc.Publish(controlSubject, data); err != nil {
		return fmt.Errorf("nats: publishing a close request: %w", err)
	}
	return nil
}

func (b *Bus) receiveControl(m *nats.Msg) {
	origin, e, rest, err := decode(m.Data)
	if err != nil || e.Kind != presence.KindClose || (len(rest) != 16 && len(rest) != 32) {
		b.log.Warn("nats: undecodable control message", "err", err)
		return
	}
	if origin == b.node {
		return
	}
	c := presence.Close{ClassroomID: uuid.UUID(rest[:16]), UserID: e.User.UserID, Code: e.Code, Reason: e.Reason}
	if len(rest) == 32 {
		c.SessionID = uuid.UUID(rest[16:])
	}
	b.control(c)
}

func (b *Bus) control(c presence.Close) {
	b.ctlMu.RLock()
	fns := b.onCtl
	b.ctlMu.RUnlock()
	for _, fn := range fns {
		fn(c)
	}
}

// OnSync registers fn to answer other nodes' sync requests (presence.Syncer).
func (b *Bus) OnSync(fn func(session uuid.UUID, want []string) []presence.UserState) {
	b.syncMu.Lock()
	b.onSync = fn
	b.syncMu.Unlock()
}

// syncChunk bounds one sync answer message, well within the server's max_payload (1 MB by
// default): a session of 1000 users with 512-byte states does not fit in one.
const syncChunk = 256 << 10

// answerSync answers a sync request with the state of this node's users in the session
// that the request wants (a JSON array of user ids; empty: every user), in as many
// messages of at most syncChunk bytes as it takes; a node without any stays silent.
func (b *Bus) answerSync(m *nats.Msg) {
	session, err := uuid.Parse(m.Subject[len(syncPrefix):])
	if err != nil || m.Reply == "" {
		return
	}
	var want []string
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, &want); err != nil {
			b.log.Warn("nats: undecodable sync request", "session", session, "err", err)
			return
		}
	}
	b.syncMu.RLock()
	fn := b.onSync
	b.syncMu.RUnlock()
	if fn == nil {
		return
	}
	limit := syncChunk
	if p := int(b.nc.MaxPayload()); p > 0 && p/2 < limit {
		limit = p / 2
	}
	for _, data := range chunkStates(fn(session, want), limit) {
		if err := m.Respond(data); err != nil {
			b.log.Warn("nats: answering a sync request", "session", session, "bytes", len(data), "err", err)
			return
		}
	}
}

// chunkStates encodes states as JSON arrays of at most limit bytes each (one state per
// array at least, whatever its size).
func chunkStates(states []presence.UserState, limit int) [][]byte {
	var out [][]byte
	var cur []byte
	for _, st := range states {
		one, err := json.Marshal(st)
		if err != nil {
			continue // a UserState always encodes
		}
		if len(cur) > 0 && len(cur)+1+len(one)+1 > limit {
			out = append(out, append(cur, ']'))
			cur = nil
		}
		if len(cur) == 0 {
			cur = append(cur, '[')
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, one...)
	}
	if len(cur) > 0 {
		out = append(out, append(cur, ']'))
	}
	return out
}

// Sync asks the other nodes for the state of the users in want in the session
// (presence.Syncer) and collects every answer until those users are covered, or
// SyncTimeout has passed.
func (b *Bus) Sync(ctx context.Context, session uuid.UUID, want []string) []presence.UserState {
	ctx, cancel := context.WithTimeout(ctx, b.syncTimeout)
	defer cancel()
	req, err := json.Marshal(want)
	if err != nil {
		return nil
	}
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		b.log.Warn("nats: sync inbox", "err", err)
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.nc.PublishRequest(syncPrefix+session.String(), inbox, req); err != nil {
		b.log.Warn("nats: sync request", "session", session, "err", err)
		return nil
	}
	missing := make(map[string]bool, len(want))
	for _, id := range want {
		missing[id] = true
	}
	var out []presence.UserState
	for len(missing) > 0 {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			b.log.Debug("nats: sync answers incomplete", "session", session, "missing", len(missing), "err", err)
			break
		}
		var states []presence.UserState
		if err := json.Unmarshal(m.Data, &states); err != nil {
			b.log.Warn("nats: undecodable sync answer", "err", err)
			continue
		}
		for _, st := range states {
			delete(missing, st.UserID)
		}
		out = append(out, states...)
	}
	return out
}

var (
	_ presence.Bus        = (*Bus)(nil)
	_ presence.Controller = (*Bus)(nil)
	_ presence.Syncer     = (*Bus)(nil)
)

// Wire format, version 1: version byte, origin node (16 bytes), kind byte, close code
// (uvarint), x and y (float64 bits, big endian), then five length-prefixed strings: user id,
// name, role, close reason, transport wire bytes; a hand, state or viewport event ends with
// its time (uvarint Unix microseconds). The time is optional, so the version stays 1
// across a rolling upgrade: a node that does not send it (a state event of the previous
// release) has its events stamped on receipt (see receive), and a node that does not read
// it ignores the bytes after the event.
const wireVersion = 1

func encode(node uuid.UUID, e *presence.Event) []byte {
	b := make([]byte, 0, 64+len(e.User.UserID)+len(e.User.Name)+len(e.Wire))
	b = append(b, wireVersion)
	b = append(b, node[:]...)
	b = append(b, byte(e.Kind))
	b = binary.AppendUvarint(b, uint64(max(e.Code, 0)))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.X))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.Y))
	for _, s := range [...]string{e.User.UserID, e.User.Name, e.User.Role, e.Reason} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Wire)))
	b = append(b, e.Wire...)
	if timed(e.Kind) {
		b = binary.AppendUvarint(b, uint64(max(e.At, 0)))
	}
	return b
}

// timed says whether events of kind carry their time.
func timed(k presence.Kind) bool {
	return k == presence.KindHand || k == presence.KindState || k == presence.KindViewport
}

var errShort = errors.New("truncated presence message")

// decode returns the origin node, the event and the bytes after it.
func decode(b []byte) (uuid.UUID, *presence.Event, []byte, error) {
	var node uuid.UUID
	if len(b) < 18 || b[0] != wireVersion {
		return node, nil, nil, errors.New("unknown presence message version")
	}
	copy(node[:], b[1:17])
	e := &presence.Event{Kind: presence.Kind(b[17])}
	b = b[18:]
	code, n := binary.Uvarint(b)
	if n <= 0 || code > math.MaxInt32 {
		return node, nil, nil, errShort
	}
	e.Code = int(code)
	b = b[n:]
	if len(b) < 16 {
		return node, nil, nil, errShort
	}
	e.X = math.Float64frombits(binary.BigEndian.Uint64(b))
	e.Y = math.Float64frombits(binary.BigEndian.Uint64(b[8:]))
	b = b[16:]
	var fields [5][]byte
	for i := range fields {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return node, nil, nil, errShort
		}
		fields[i] = b[n : n+int(l)]
		b = b[n+int(l):]
	}
	e.User = presence.User{UserID: string(fields[0]), Name: string(fields[1]), Role: string(fields[2])}
	e.Reason = string(fields[3])
	if len(fields[4]) > 0 {
		e.Wire = fields[4]
	}
	if timed(e.Kind) && len(b) > 0 {
		us, n := binary.Uvarint(b)
		if n <= 0 || us > math.MaxInt64 {
			return node, nil, nil, errShort
		}
		e.At = int64(us)
		b = b[n:]
	}
	return node, e, b, nil
}
