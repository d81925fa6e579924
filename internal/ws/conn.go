package ws

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// conn is one admitted connection: its own goroutine reads, a writer goroutine drains
// the outbox. Everything else (fan-out, timers) only pushes into the outbox or asks the
// connection to close, so no one but the writer ever blocks on this peer.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	fw      *frameWriter  // under ws: data frames are written here directly
	br      *bufio.Reader // under ws: the reader peeks here between messages (see waitFrame)
	nc      net.Conn
	user    presence.User
	session uuid.UUID
	pc      *presence.Conn

	out outbox

	// Wait groups rather than channels closed once: an idle connection keeps them, and a
	// channel is a 96-byte allocation.
	finished sync.WaitGroup // done when the writer has left the session and closed the socket
	joined   sync.WaitGroup // done once pc is set

	timers    sync.Mutex // guards the timers against a heartbeat re-arming after finish
	pingTimer *time.Timer
	expTimer  *time.Timer
	pingSent  bool // a ping went out and its pong has not come back

	// The reader's shallow wait (see waitFrame) reads br outside coder/websocket, whose close
	// handshake reads br too: finish ends the wait for good before it closes.
	rmu     sync.Mutex
	waiting bool          // the reader is in waitFrame
	noWait  bool          // finish has begun: coder/websocket reads from now on
	left    chan struct{} // closed when the reader leaves the wait finish is waiting for
}

// writeScratch is a writer's working space while it runs. It is pooled with the queue
// array it holds, so that an idle connection keeps neither.
type writeScratch struct {
	items   []outItem
	buf     []byte
	entries [][]byte
}

var writeScratches = sync.Pool{New: func() any { return &writeScratch{buf: make([]byte, 0, 2<<10)} }}

func newConn(s *Server, c *websocket.Conn, sb *smallBuffers, u presence.User, session uuid.UUID) *conn {
	cn := &conn{s: s, ws: c, fw: sb.fw, br: sb.br, nc: sb.nc, user: u, session: session, out: newOutbox(s.opts.SendQueue)}
	cn.finished.Add(1)
	cn.joined.Add(1)
	return cn
}

// join enters the session (the snapshot is queued first) and arms the heartbeat and the
// token-expiry timers. It runs on the upgrade handler's goroutine, so that the connection's
// own goroutine, which lives as long as the connection, never grows its stack past what
// reading needs (memory per idle connection, issue 4). A refused join (presence.Join's
// errors) leaves the connection outside the session, to be closed.
func (c *conn) join(ctx context.Context, classID uuid.UUID, expires time.Time) error {
	pc, err := c.s.hub.JoinContext(ctx, classID, c.session, c.user, c, func(users []presence.User) {
		c.enqueueFrame(appendSnapshot(nil, c.session, users))
	})
	c.pc = pc
	c.joined.Done()
	if err != nil {
		return err
	}
	c.timers.Lock()
	c.pingTimer = time.AfterFunc(c.s.opts.PingInterval, c.heartbeat)
	if !expires.IsZero() {
		c.expTimer = time.AfterFunc(time.Until(expires), func() { c.CloseWith(CodeUnauthorized, ReasonTokenExpired) })
	}
	c.timers.Unlock()
	return nil
}

// serve reads until the connection ends, then waits for the writer to leave the session
// and close the socket.
func (c *conn) serve() {
	code := c.readLoop()
	c.CloseWith(code, "")
	c.finished.Wait()
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
	case presence.KindState:
		c.enqueueLatest(latestState, e.User.UserID, appendState(nil, e.User.UserID, e.Wire))
	case presence.KindViewport:
		c.enqueueLatest(latestViewport, e.User.UserID, e.Wire)
	case presence.KindHand:
		c.enqueueFrame(appendHand(nil, e.User.UserID, e.Code != 0, e.Time()))
	case presence.KindReaction:
		wake, dropped := c.out.pushLossy(appendReaction(nil, e.User.UserID, e.Reason))
		if wake {
			go c.writeLoop()
		}
		if dropped {
			c.s.m.droppedCoalesced.Inc()
		}
	case presence.KindSpotlight:
		c.enqueueFrame(appendSpotlight(nil, e.User.UserID, e.Code != 0))
	}
}

// enqueueLatest queues a frame of which the reader needs only the user's latest (see
// outbox.pushLatest).
func (c *conn) enqueueLatest(kind latestKind, userID string, f []byte) {
	wake, full, coalesced := c.out.pushLatest(kind, userID, f)
	if wake {
		go c.writeLoop()
	}
	if coalesced {
		c.s.m.droppedCoalesced.Inc()
	}
	if full {
		c.s.m.slowClosed.Inc()
		c.CloseWith(CodeSlowConsumer, ReasonSlowConsumer)
	}
}

// enqueueCursor queues a position for the next cursor frame (see outbox.pushCursor).
func (c *conn) enqueueCursor(userID string, wire []byte) {
	wake, coalesced := c.out.pushCursor(userID, wire)
	if wake {
		go c.writeLoop()
	}
	if coalesced {
		c.s.m.droppedCoalesced.Inc()
	}
}

// enqueueFrame queues a frame that must not be dropped; a connection with SendQueue of them
// waiting cannot keep up and is closed with 1013.
func (c *conn) enqueueFrame(f []byte) {
	wake, full := c.out.pushFrame(f)
	if wake {
		go c.writeLoop()
	}
	if full {
		c.s.m.slowClosed.Inc()
		c.CloseWith(CodeSlowConsumer, ReasonSlowConsumer)
	}
}

// CloseWith starts closing the connection with code (presence.Sink). The first call wins.
func (c *conn) CloseWith(code int, reason string) {
	// A running writer notices the close and finishes; otherwise one starts just for that.
	if wake, _ := c.out.close(code, reason); wake {
		go c.writeLoop()
	}
}

// writeLoop sends what is queued until the outbox is empty (then it exits) or closed (then
// it leaves the session and closes the WebSocket with the recorded code).
func (c *conn) writeLoop() {
	sc := writeScratches.Get().(*writeScratch)
	defer writeScratches.Put(sc)
	m := c.s.m
	for {
		items, res := c.out.take(sc.items)
		switch res {
		case takeClosed:
			releaseItems(items)
			c.finish()
			return
		case takeIdle:
			sc.items = items[:0]
			return
		}
		paced := false // a cursor batch went out: pause after this drain when behind
		for i := range items {
			if c.out.isClosed() {
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

// finish runs once on the writer: leave the session first (presence leave must not wait
// for a close handshake), then close the WebSocket.
func (c *conn) finish() {
	defer c.finished.Done()
	code, reason := c.out.closeCode()
	c.timers.Lock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	c.timers.Unlock()
	c.joined.Wait() // a close may be asked for (shutdown) while the connection is joining
	switch {
	case c.pc == nil: // the join was refused
	case code == CodeForbidden:
		c.pc.LeaveNow() // kicked or the session ended: no grace
	default:
		c.pc.Leave()
	}
	c.s.m.closed(code)
	if code == codeAbnormal || code < 1000 {
		_ = c.ws.CloseNow()
		return
	}
	c.stopWaiting()
	_ = c.ws.Close(websocket.StatusCode(code), reason)
}

// heartbeat pings the peer, or drops it when the previous ping got no pong within
// PongTimeout. The ping goes out through frameWriter and the reader notes the pong (see
// waitFrame): coder/websocket's Ping would need its reader to be the one waiting.
func (c *conn) heartbeat() {
	c.timers.Lock()
	closed := c.out.isClosed()
	timedOut := c.pingSent
	if !closed && !timedOut {
		c.pingSent = true
		c.pingTimer.Reset(c.s.opts.PongTimeout)
	}
	c.timers.Unlock()
	switch {
	case closed:
	case timedOut:
		c.CloseWith(codeAbnormal, "")
	default:
		if err := c.fw.writeControl(opPing, nil); err != nil {
			c.CloseWith(codeAbnormal, "")
		}
	}
}

// ponged notes a pong: the next ping goes out PingInterval from now.
func (c *conn) ponged() {
	c.timers.Lock()
	if c.pingSent {
		c.pingSent = false
		if !c.out.isClosed() {
			c.pingTimer.Reset(c.s.opts.PingInterval)
		}
	}
	c.timers.Unlock()
}

var readBufs = sync.Pool{New: func() any { return new([]byte) }}

// readLoop handles inbound frames until the connection fails or closes, and returns the
// close code to record when it ended first.
//
// An idle connection's goroutine spends its life here, so what it keeps is this loop's
// stack: blocked inside coder/websocket's Reader it is ≈ 2.1 KiB deep and keeps a 4 KiB
// stack, which the garbage collector never shrinks (it halves a stack only when less than a
// quarter is used) and counts into the heap goal besides. It waits in waitFrame instead,
// ≈ 0.9 KiB deep, and the message itself is read and handled in readMessage, whose frames
// are gone by the next wait (memory per idle connection).
func (c *conn) readLoop() int {
	for {
		if err := c.waitFrame(); err != nil {
			return codeAbnormal
		}
		if code, end := c.readMessage(); end {
			return code
		}
	}
}

// readMessage reads and handles one message; end says the connection is over, with the
// close code to record.
//
//go:noinline
func (c *conn) readMessage() (code int, end bool) {
	max := c.s.opts.MaxPayloadBytes
	m := c.s.m
	{
		typ, rd, err := c.ws.Reader(context.Background())
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				return int(code), true
			}
			return codeAbnormal, true
		}
		m.framesIn.Inc()
		if c.out.isClosed() {
			// Closing: drain politely so the close handshake can be read.
			if _, err := io.Copy(io.Discard, io.LimitReader(rd, int64(max)+1)); err != nil {
				return codeAbnormal, true
			}
			return 0, false
		}
		if typ != websocket.MessageText {
			c.CloseWith(CodeBadRequest, ReasonBadRequest)
			return CodeBadRequest, true
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
				return CodeBadRequest, true
			}
			return codeAbnormal, true
		}
		msg, err := c.s.schemas.decode(b[:n])
		readBufs.Put(bp)
		if err != nil {
			c.CloseWith(CodeBadRequest, ReasonBadRequest)
			return CodeBadRequest, true
		}
		switch msg.kind {
		case msgCursor:
			switch c.pc.Cursor(msg.x, msg.y, cursorEntry(c.user.UserID, msg.x, msg.y)) {
			case presence.CursorDropped:
				m.droppedRate.Inc()
			case presence.CursorRateClosed:
				m.droppedRate.Inc()
				c.pc.CloseUser(CodeRateLimited, ReasonRateLimited)
			}
		case msgPing:
			c.enqueueFrame(framePong)
		case msgState:
			if len(msg.state) > maxStateBytes {
				c.enqueueFrame(frameStateTooLarge) // refused, not a protocol error
				return 0, false
			}
			c.pc.State([]byte(msg.state))
		case msgHand:
			c.refused(c.pc.Hand(msg.on, msg.target), frameHandForbidden, frameHandRateLimited)
		case msgReaction:
			if c.pc.React(msg.emoji) == presence.Dropped {
				m.droppedRate.Inc()
			}
		case msgSpotlight:
			c.refused(c.pc.Spotlight(msg.on), frameSpotlightForbidden, frameSpotlightRateLimited)
		case msgViewport:
			c.refused(c.pc.Viewport(viewportFrame(c.user.UserID, msg.x, msg.y, msg.w, msg.h)), frameViewportForbidden, nil)
		}
	}
	return 0, false
}

// waitFrame waits until a frame coder/websocket is to read is at the head of br, answering
// the peer's pings and noting its pongs on the way: coder/websocket would handle those
// itself and then block for the next frame inside its own reader, deep again. Anything but
// a well-formed ping or pong (data, close, a malformed frame) is left to coder/websocket, so
// its checks and close codes stay what they were. Once finish has begun it returns at once.
func (c *conn) waitFrame() error {
	c.rmu.Lock()
	if c.noWait {
		c.rmu.Unlock()
		return nil
	}
	c.waiting = true
	c.rmu.Unlock()
	err := c.peekFrames()
	c.rmu.Lock()
	c.waiting = false
	if c.left != nil { // finish interrupted the wait (a read deadline in the past)
		_ = c.nc.SetReadDeadline(time.Time{})
		close(c.left)
		c.left, err = nil, nil
	}
	c.rmu.Unlock()
	return err
}

// peekFrames consumes the pings and pongs at the head of br; it returns when the next
// frame is another kind. Its frame and those under it are what an idle connection's
// stack holds: keep it small.
func (c *conn) peekFrames() error {
	for {
		h, err := c.br.Peek(2)
		if err != nil {
			return err
		}
		// FIN, no RSV bits, a ping or pong opcode; masked, as client frames must be.
		op, n := h[0]&0x0f, int(h[1]&0x7f)
		if h[0]&0xf0 != 0x80 || (op != opPing && op != opPong) || h[1]&0x80 == 0 || n > 125 || 6+n > c.br.Size() {
			return nil
		}
		if err := c.control(op, n); err != nil {
			return err
		}
	}
}

// control reads a whole ping or pong of n payload bytes from br, answers a ping with its
// payload and notes a pong.
//
//go:noinline
func (c *conn) control(op byte, n int) error {
	f, err := c.br.Peek(6 + n)
	if err != nil {
		return err
	}
	var p [125]byte
	key := f[2:6]
	for i, b := range f[6:] {
		p[i] = b ^ key[i&3]
	}
	if _, err := c.br.Discard(6 + n); err != nil {
		return err
	}
	if op == opPong {
		c.ponged()
		return nil
	}
	if err := c.fw.writeControl(opPong, p[:n]); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// stopWaiting makes the reader leave waitFrame for good and waits until it has, so that
// coder/websocket's close handshake is the only one reading br.
func (c *conn) stopWaiting() {
	c.rmu.Lock()
	c.noWait = true
	var left chan struct{}
	if c.waiting {
		left = make(chan struct{})
		c.left = left
		_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // wakes the blocked Peek
	}
	c.rmu.Unlock()
	if left != nil {
		<-left
	}
}

// refused answers a tutoring frame the presence layer refused with its error frame
// (forbidden, or over the rate: limited); the connection stays.
func (c *conn) refused(res presence.Result, forbidden, limited []byte) {
	switch {
	case res == presence.Forbidden:
		c.enqueueFrame(forbidden)
	case res == presence.Dropped && limited != nil:
		c.enqueueFrame(limited)
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
