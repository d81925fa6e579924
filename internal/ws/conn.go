package ws

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// conn is one admitted connection: its own goroutine reads, a writer goroutine drains
// the outbox. Everything else (fan-out, timers) only queues into the outbox or asks the
// connection to close, so no one but the writer ever blocks on this peer.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	fw      *frameWriter // under ws: data frames are written here directly
	user    presence.User
	session uuid.UUID
	pc      *presence.Conn

	mu     sync.Mutex
	queue  []outItem // in send order
	frames int       // presence/pong frames in queue (bounded by SendQueue)
	batch  int       // index in queue of the open cursor batch, or -1
	// batches counts the cursor batches in queue: a sender's second update opens a new batch
	// while fewer than maxCursorBatches wait, and replaces the first only beyond that.
	batches int
	code    int // close code once closing
	reason  string

	// writing is true while a writer goroutine runs (under mu). The writer is started when
	// something is queued and exits when the queue is empty, so an idle connection costs
	// no writer stack; there is never more than one.
	writing  bool
	closing  atomic.Bool
	finished chan struct{} // closed when the writer has left the session and closed the socket
	joined   chan struct{} // closed once pc is set

	pingTimer *time.Timer
	expTimer  *time.Timer
}

// outItem is one frame to send: a ready frame, or a batch of cursor positions (at most one
// per sender: the latest) encoded when it is sent.
type outItem struct {
	frame   []byte
	cursors *cursorBatch
}

type cursorRef struct {
	userID string
	wire   []byte
}

// cursorBatch is the open batch of a connection's outbox. Batches and the writer's scratch
// space are pooled: under load every connection opens tens of batches a second, and
// allocating them was most of the process's garbage; an idle connection holds neither.
type cursorBatch struct {
	refs []cursorRef
}

var cursorBatches = sync.Pool{New: func() any { return &cursorBatch{refs: make([]cursorRef, 0, 32)} }}

func (b *cursorBatch) release() {
	clear(b.refs) // drop the references to the senders' encodings
	b.refs = b.refs[:0]
	cursorBatches.Put(b)
}

// writeScratch is a writer's working space while it runs.
type writeScratch struct {
	items   []outItem
	buf     []byte
	entries [][]byte
}

var writeScratches = sync.Pool{New: func() any { return &writeScratch{buf: make([]byte, 0, 2<<10)} }}

func newConn(s *Server, c *websocket.Conn, sb *smallBuffers, u presence.User, session uuid.UUID) *conn {
	return &conn{s: s, ws: c, fw: sb.fw, user: u, session: session, batch: -1, finished: make(chan struct{}), joined: make(chan struct{})}
}

// join enters the session (the snapshot is queued first) and arms the heartbeat and the
// token-expiry timers. It runs on the upgrade handler's goroutine, so that the connection's
// own goroutine, which lives as long as the connection, never grows its stack past what
// reading needs (memory per idle connection, issue 4).
func (c *conn) join(classID uuid.UUID, expires time.Time) {
	c.pc = c.s.hub.Join(classID, c.session, c.user, c, func(users []presence.User) {
		c.enqueueFrame(appendSnapshot(nil, c.session, users))
	})
	close(c.joined)
	c.mu.Lock()
	c.pingTimer = time.AfterFunc(c.s.opts.PingInterval, c.heartbeat)
	if !expires.IsZero() {
		c.expTimer = time.AfterFunc(time.Until(expires), func() { c.CloseWith(CodeUnauthorized, ReasonTokenExpired) })
	}
	c.mu.Unlock()
}

// serve reads until the connection ends, then waits for the writer to leave the session
// and close the socket.
func (c *conn) serve() {
	code := c.readLoop()
	c.CloseWith(code, "")
	<-c.finished
}

// Deliver queues a session event; it never blocks (presence.Sink).
func (c *conn) Deliver(e *presence.Event) {
	switch e.Kind {
	case presence.KindCursor:
		c.enqueueCursor(e.User.UserID, e.Wire)
	case presence.KindJoin:
		c.enqueueFrame(appendJoin(nil, e.User))
	case presence.KindLeave:
		c.enqueueFrame(appendLeave(nil, e.User.UserID))
	}
}

// startWriterLocked starts the writer unless one runs; c.mu is held.
func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// maxCursorBatches is how many cursor batches may wait for one connection before a sender's
// new position replaces its previous one. A writer pausing under load (see pacer) then still
// delivers every update of a sender whose two updates fall in one pause; only a receiver
// that is really behind loses intermediate positions.
const maxCursorBatches = 2

// enqueueCursor adds a position to the open batch. When the sender is already in it, the
// position goes into a new batch, or replaces the previous one once maxCursorBatches wait.
func (c *conn) enqueueCursor(userID string, wire []byte) {
	coalesced := false
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return
	}
	open := c.batch >= 0
	if open {
		b := c.queue[c.batch].cursors
		for i := range b.refs {
			if b.refs[i].userID == userID {
				if c.batches >= maxCursorBatches {
					b.refs[i].wire = wire
					coalesced = true
				} else {
					open = false // keep this one: it goes in the next batch
				}
				break
			}
		}
		if open && !coalesced {
			b.refs = append(b.refs, cursorRef{userID, wire})
		}
	}
	if !open {
		b := cursorBatches.Get().(*cursorBatch)
		b.refs = append(b.refs, cursorRef{userID, wire})
		c.queue = append(c.queue, outItem{cursors: b})
		c.batch = len(c.queue) - 1
		c.batches++
		c.startWriterLocked()
	}
	c.mu.Unlock()
	if coalesced {
		c.s.m.droppedCoalesced.Inc()
	}
}

// enqueueFrame queues a frame that must not be dropped; a connection with SendQueue of them
// waiting cannot keep up and is closed with 1013.
func (c *conn) enqueueFrame(f []byte) {
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return
	}
	if c.frames >= c.s.opts.SendQueue {
		c.mu.Unlock()
		c.s.m.slowClosed.Inc()
		c.CloseWith(CodeSlowConsumer, ReasonSlowConsumer)
		return
	}
	c.queue = append(c.queue, outItem{frame: f})
	c.frames++
	c.batch = -1
	c.startWriterLocked()
	c.mu.Unlock()
}

// CloseWith starts closing the connection with code (presence.Sink). The first call wins.
func (c *conn) CloseWith(code int, reason string) {
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return
	}
	c.closing.Store(true)
	c.code, c.reason = code, reason
	// A running writer notices closing and finishes; otherwise start one just for that.
	c.startWriterLocked()
	c.mu.Unlock()
}

// writeLoop sends what is queued until the queue is empty (then it exits) or the
// connection closes (then it leaves the session and closes the WebSocket with the recorded
// code).
func (c *conn) writeLoop() {
	sc := writeScratches.Get().(*writeScratch)
	defer writeScratches.Put(sc)
	m := c.s.m
	for {
		c.mu.Lock()
		if c.closing.Load() {
			items := c.queue
			c.queue = nil
			c.mu.Unlock()
			releaseItems(items)
			c.finish()
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			// The queue's array goes with the scratch space: an idle connection keeps none.
			if cap(c.queue) > cap(sc.items) {
				sc.items = c.queue
			}
			c.queue = nil
			c.mu.Unlock()
			return
		}
		items := c.queue
		c.queue = sc.items[:0]
		c.frames, c.batch, c.batches = 0, -1, 0
		c.mu.Unlock()
		paced := false // a cursor batch went out: pause after this drain when behind
		for i := range items {
			if c.closing.Load() {
				break
			}
			it := &items[i]
			sc.buf = append(sc.buf[:0], make([]byte, frameHeaderRoom)...)
			if it.cursors != nil {
				paced = true
				sc.entries = sc.entries[:0]
				for _, cr := range it.cursors.refs {
					sc.entries = append(sc.entries, cr.wire)
				}
				sc.buf = appendCursors(sc.buf, sc.entries)
				m.cursorsOut.Add(float64(len(sc.entries)))
			} else {
				sc.buf = append(sc.buf, it.frame...)
			}
			// The write timeout is the socket's deadline, kept by frameWriter (no context,
			// allocation or timer per frame).
			if err := c.fw.writeText(sc.buf); err != nil {
				c.CloseWith(codeAbnormal, "")
				break
			}
			m.framesOut.Inc()
		}
		releaseItems(items)
		clear(sc.entries)
		sc.items = items[:0]
		if d := c.s.pacer.current(); paced && d > 0 {
			// The process is behind: let this peer's next updates coalesce (see pacer).
			time.Sleep(d)
		}
	}
}

// releaseItems returns the items' cursor batches to their pool and drops every reference.
func releaseItems(items []outItem) {
	for i := range items {
		if b := items[i].cursors; b != nil {
			b.release()
		}
	}
	clear(items)
}

// finish runs once on the writer: leave the session first (presence leave must not wait
// for a close handshake), then close the WebSocket.
func (c *conn) finish() {
	defer close(c.finished)
	c.mu.Lock()
	code, reason := c.code, c.reason
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	c.mu.Unlock()
	<-c.joined // a close may be asked for (shutdown) while the connection is joining
	c.pc.Leave()
	c.s.m.closed(code)
	if code == codeAbnormal || code < 1000 {
		_ = c.ws.CloseNow()
		return
	}
	_ = c.ws.Close(websocket.StatusCode(code), reason)
}

// heartbeat pings the peer; one that does not answer within PongTimeout is dropped.
func (c *conn) heartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.opts.PongTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.CloseWith(codeAbnormal, "")
		return
	}
	c.mu.Lock()
	if !c.closing.Load() {
		c.pingTimer.Reset(c.s.opts.PingInterval)
	}
	c.mu.Unlock()
}

var readBufs = sync.Pool{New: func() any { return new([]byte) }}

// readLoop handles inbound frames until the connection fails or closes, and returns the
// close code to record when it ended first.
func (c *conn) readLoop() int {
	max := c.s.opts.MaxPayloadBytes
	m := c.s.m
	for {
		typ, rd, err := c.ws.Reader(context.Background())
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				return int(code)
			}
			return codeAbnormal
		}
		m.framesIn.Inc()
		if c.closing.Load() {
			// Closing: drain politely so the close handshake can be read.
			if _, err := io.Copy(io.Discard, io.LimitReader(rd, int64(max)+1)); err != nil {
				return codeAbnormal
			}
			continue
		}
		if typ != websocket.MessageText {
			c.CloseWith(CodeBadRequest, ReasonBadRequest)
			return CodeBadRequest
		}
		bp := readBufs.Get().(*[]byte)
		if cap(*bp) < max+1 {
			*bp = make([]byte, max+1)
		}
		b := (*bp)[:max+1]
		n, err := readMessage(rd, b)
		if err != nil {
			readBufs.Put(bp)
			if errors.Is(err, errTooBig) {
				c.CloseWith(CodeBadRequest, ReasonBadRequest)
				return CodeBadRequest
			}
			return codeAbnormal
		}
		msg, err := c.s.schemas.decode(b[:n])
		readBufs.Put(bp)
		if err != nil {
			c.CloseWith(CodeBadRequest, ReasonBadRequest)
			return CodeBadRequest
		}
		switch msg.kind {
		case msgCursor:
			switch c.pc.Cursor(msg.x, msg.y, cursorEntry(c.user.UserID, msg.x, msg.y)) {
			case presence.CursorDropped:
				m.droppedRate.Inc()
			case presence.CursorRateClosed:
				m.droppedRate.Inc()
			}
		case msgPing:
			c.enqueueFrame(framePong)
		}
	}
}

var errTooBig = errors.New("frame over the payload limit")

// readMessage reads a whole message into b; a message that does not fit is errTooBig (b is
// one byte longer than the limit).
func readMessage(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, errTooBig
}
