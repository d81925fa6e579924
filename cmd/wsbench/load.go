package main

// This file is the logic of the shared yardstick driver (shared/bench/wsload), kept close to
// it so that figures stay comparable; main.go runs it against both servers in one go.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

var (
	target   = new(string)
	addr     = new(string)
	rooms    = flag.Int("rooms", 50, "rooms")
	users    = flag.Int("users", 20, "users per room")
	hz       = flag.Float64("hz", 20, "cursor updates per user per second")
	warmup   = flag.Duration("warmup", 3*time.Second, "warm-up before measuring")
	duration = flag.Duration("duration", 10*time.Second, "measured window")
	pid      = new(int)
	secret   = flag.String("secret", benchSecret, "HS256 secret")
	idle     = new(int)
	label    = new(string)
	// For a cluster: every process whose CPU counts (nodes and NATS) besides *pid, and the
	// nodes that clients are spread over (by user index, so each room spans the nodes).
	extraPids   = new([]int)
	spreadAddrs = new([]string)
	// The presence and tutoring mix of a run beside the cursors (m4sh only): presence
	// states per user per second, the spotlight viewport of each room's tutor (user 0) per
	// second, reactions per user per second.
	mix = new(mixRates)
)

type mixRates struct{ state, viewport, reaction float64 }

// cpuAll is the CPU ticks of *pid and *extraPids together.
func cpuAll() int64 {
	t := cpuTicks(*pid)
	for _, p := range *extraPids {
		t += cpuTicks(p)
	}
	return t
}

// rssAll is the RSS of *pid and *extraPids together, in KiB.
func rssAll() int64 {
	r := rss(*pid)
	for _, p := range *extraPids {
		r += rss(p)
	}
	return r
}

var start = time.Now()

func nowUS() float64 { return float64(time.Since(start).Microseconds()) }

// runLoad is wsload's main: one workload against the server at *addr (pid *pid).
func runLoad() (map[string]any, error) {
	sent.Store(0)
	recv.Store(0)
	for i := range recvKind {
		recvKind[i].Store(0)
	}
	ctx := context.Background()
	conns, rssBefore, err := connectAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		for _, c := range conns {
			c.ws.CloseNow()
		}
	}()
	if *idle > 0 {
		time.Sleep(5 * time.Second)
		after := rss(*pid)
		per := float64(after-rssBefore) / float64(len(conns))
		return map[string]any{"label": *label, "target": *target, "idle_conns": len(conns), "rss_before_kib": rssBefore, "rss_after_kib": after, "kib_per_conn": round1(per)}, nil
	}
	for _, c := range conns {
		go c.readLoop()
	}
	interval := time.Duration(float64(time.Second) / *hz)
	stop := make(chan struct{})
	for i, c := range conns {
		off := time.Duration(i) * interval / time.Duration(len(conns))
		go c.sendLoop(interval, off, stop)
		if mix.state > 0 {
			go c.mixLoop(kindState, mix.state, off, stop)
		}
		if mix.reaction > 0 {
			go c.mixLoop(kindReaction, mix.reaction, off, stop)
		}
		if mix.viewport > 0 && c.user == 0 {
			go c.mixLoop(kindViewport, mix.viewport, off, stop)
		}
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	cpu0, t0 := cpuAll(), time.Now()
	sent0, recv0 := sent.Load(), recv.Load()
	var kind0 [3]int64
	for i := range kind0 {
		kind0[i] = recvKind[i].Load()
	}
	time.Sleep(*duration)
	sent1, recv1 := sent.Load(), recv.Load()
	var kind1 [3]int64
	for i := range kind1 {
		kind1[i] = recvKind[i].Load()
	}
	cpu1, t1 := cpuAll(), time.Now()
	measuring.Store(false)
	close(stop)
	secs := t1.Sub(t0).Seconds()
	lat := collectLatency(conns)
	closed := 0
	for _, c := range conns {
		if c.closed.Load() {
			closed++
		}
	}
	fanout := float64(*users - 1)
	if *target == "centrifugo" {
		fanout = float64(*users) // it delivers to the publisher too
	}
	cursorsDelivered := float64(recv1-recv0) / secs
	delivered := cursorsDelivered
	perKind := map[string]float64{}
	for i, name := range kindNames {
		n := float64(kind1[i]-kind0[i]) / secs
		if n > 0 {
			perKind[name] = round1(n)
			delivered += n
		}
	}
	res := map[string]any{
		"label": *label, "target": *target, "conns": len(conns), "rooms": *rooms, "users": *users, "hz": *hz,
		"sent_per_s":      round1(float64(sent1-sent0) / secs),
		"delivered_per_s": round1(delivered),
		"cursors_per_s":   round1(cursorsDelivered),
		"mix_per_s":       perKind,
		"expected_per_s":  round1(float64(sent1-sent0) / secs * fanout), // cursors
		"p50_ms":          round1(pct(lat, 0.50) / 1000),
		"p99_ms":          round1(pct(lat, 0.99) / 1000),
		"closed_conns":    closed,
	}
	if *pid > 0 {
		cores := float64(cpu1-cpu0) / 100 / secs
		res["server_cores"] = round2(cores)
		if delivered > 0 {
			res["server_us_per_delivery"] = round2(cores * 1e6 / delivered)
		}
		res["server_rss_mib"] = round1(float64(rssAll()) / 1024)
	}
	return res, nil
}

var (
	sent, recv atomic.Int64
	measuring  atomic.Bool
	// recvKind counts the delivered frames of the mix, by kind.
	recvKind [3]atomic.Int64
)

// Kinds of the presence and tutoring mix.
const (
	kindState = iota
	kindViewport
	kindReaction
)

var (
	kindNames  = [...]string{"state", "viewport", "reaction"}
	kindPrefix = [...][]byte{[]byte(`{"type":"state",`), []byte(`{"type":"viewport",`), []byte(`{"type":"reaction",`)}
)

// mixLoop sends one kind of the mix at hz from this connection. The viewport sender turns its
// spotlight on first (it is each room's tutor).
func (c *conn) mixLoop(kind int, hz float64, offset time.Duration, stop chan struct{}) {
	write := func(msg string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			c.closed.Store(true)
			return false
		}
		return true
	}
	if kind == kindViewport && !write(`{"type":"spotlight","on":true}`) {
		return
	}
	time.Sleep(offset)
	t := time.NewTicker(time.Duration(float64(time.Second) / hz))
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if c.closed.Load() {
			return
		}
		var msg string
		switch kind {
		case kindState:
			msg = `{"type":"state","state":{"color":"#e8590c","n":` + strconv.Itoa(n) + `,"tool":"pen"}}`
		case kindViewport:
			msg = `{"type":"viewport","x":` + strconv.Itoa(n%100) + `,"y":0,"w":1280,"h":720}`
		case kindReaction:
			msg = `{"type":"reaction","emoji":"👏"}`
		}
		if !write(msg) {
			return
		}
	}
}

type conn struct {
	ws     *websocket.Conn
	room   int
	user   int
	pubID  atomic.Int64
	closed atomic.Bool
	mu     sync.Mutex
	lat    []float64
	n      int
}

func (c *conn) readLoop() {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.closed.Store(true)
			return
		}
		now := nowUS()
		if k := mixKind(b); k >= 0 {
			if measuring.Load() {
				recvKind[k].Add(1)
			}
			continue
		}
		// Count every cursor position in the frame (servers may batch).
		for {
			i := bytes.Index(b, []byte(`"x":`))
			if i < 0 {
				break
			}
			b = b[i+4:]
			j := 0
			for j < len(b) && (b[j] == '.' || b[j] == '-' || b[j] == 'e' || b[j] == '+' || (b[j] >= '0' && b[j] <= '9')) {
				j++
			}
			v, err := strconv.ParseFloat(string(b[:j]), 64)
			if err != nil || v < 1000 { // not one of ours
				continue
			}
			if measuring.Load() {
				recv.Add(1)
				c.n++
				if c.n%7 == 0 {
					c.mu.Lock()
					c.lat = append(c.lat, now-(v-1000))
					c.mu.Unlock()
				}
			}
		}
	}
}

// mixKind is the mix kind of a frame, or -1.
func mixKind(b []byte) int {
	for i, p := range kindPrefix {
		if bytes.HasPrefix(b, p) {
			return i
		}
	}
	return -1
}

func (c *conn) sendLoop(interval, offset time.Duration, stop chan struct{}) {
	time.Sleep(offset)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if c.closed.Load() {
			return
		}
		x := strconv.FormatFloat(nowUS()+1000, 'f', 0, 64)
		var msg string
		switch *target {
		case "centrifugo":
			id := c.pubID.Add(1) + 100
			msg = `{"id":` + strconv.FormatInt(id, 10) + `,"publish":{"channel":"room:r` + strconv.Itoa(c.room) + `","data":{"x":` + x + `,"y":0}}}`
		default:
			msg = `{"type":"cursor","x":` + x + `,"y":0}`
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.ws.Write(ctx, websocket.MessageText, []byte(msg))
		cancel()
		if err != nil {
			c.closed.Store(true)
			return
		}
		if measuring.Load() {
			sent.Add(1)
		}
	}
}

func token(sub, name string) string {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "name": name, "exp": time.Now().Add(2 * time.Hour).Unix()})
	s, _ := t.SignedString([]byte(*secret))
	return s
}

func connectAll(ctx context.Context) ([]*conn, int64, error) {
	type slot struct{ room, user int }
	var slots []slot
	nRooms, nUsers := *rooms, *users
	if *idle > 0 {
		nUsers = 50
		nRooms = (*idle + nUsers - 1) / nUsers
	}
	for r := 0; r < nRooms; r++ {
		for u := 0; u < nUsers; u++ {
			slots = append(slots, slot{r, u})
		}
	}
	if *idle > 0 {
		slots = slots[:*idle]
	}
	urls := make([]string, len(slots))
	hdrs := make([]http.Header, len(slots))
	switch *target {
	case "m4sh":
		fx, err := m4shFixtures(nRooms, nUsers)
		if err != nil {
			return nil, 0, err
		}
		for i, s := range slots {
			host := *addr
			if n := len(*spreadAddrs); n > 0 {
				host = (*spreadAddrs)[s.user%n]
			}
			urls[i] = fmt.Sprintf("ws://%s/ws/classroom/%s/session/%s/", host, fx[s.room].class, fx[s.room].session)
			hdrs[i] = http.Header{"Authorization": {"Bearer " + fx[s.room].tokens[s.user]}}
		}
	case "centrifugo":
		for i := range slots {
			urls[i] = "ws://" + *addr + "/connection/websocket"
		}
	default:
		for i, s := range slots {
			urls[i] = fmt.Sprintf("ws://%s/room/%d", *addr, s.room)
		}
	}
	runtime.GC()
	rssBefore := rss(*pid) // after the fixtures: only connections count
	conns := make([]*conn, len(slots))
	var wg sync.WaitGroup
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	for i, s := range slots {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialOne(ctx, urls[i], hdrs[i], s.room, s.user)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return nil, 0, e.(error)
	}
	return conns, rssBefore, nil
}

func dialOne(ctx context.Context, url string, h http.Header, room, user int) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 22)
	c := &conn{ws: ws, room: room, user: user}
	switch *target {
	case "centrifugo":
		tok := token(fmt.Sprintf("r%du%d", room, user), "load")
		if err := ws.Write(dctx, websocket.MessageText, []byte(`{"id":1,"connect":{"token":"`+tok+`","name":"wsload"}}`)); err != nil {
			return nil, err
		}
		if err := waitReply(dctx, ws, `"id":1`); err != nil {
			return nil, fmt.Errorf("centrifugo connect: %w", err)
		}
		if err := ws.Write(dctx, websocket.MessageText, []byte(`{"id":2,"subscribe":{"channel":"room:r`+strconv.Itoa(room)+`"}}`)); err != nil {
			return nil, err
		}
		if err := waitReply(dctx, ws, `"id":2`); err != nil {
			return nil, fmt.Errorf("centrifugo subscribe: %w", err)
		}
	case "m4sh":
		if err := waitReply(dctx, ws, `presence.snapshot`); err != nil {
			return nil, fmt.Errorf("m4sh snapshot: %w", err)
		}
	}
	return c, nil
}

func waitReply(ctx context.Context, ws *websocket.Conn, want string) error {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), `"error"`) && strings.Contains(string(b), want) {
			return fmt.Errorf("%s", b)
		}
		if strings.Contains(string(b), want) {
			return nil
		}
	}
}

type fixture struct {
	class, session string
	tokens         []string
}

// m4shFixtures makes one classroom + session per room through the project's REST contract.
func m4shFixtures(nRooms, nUsers int) ([]fixture, error) {
	api := "http://" + *addr
	call := func(method, path, tok string, body any) (map[string]any, error) {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, api+path, bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode/100 != 2 {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return m, nil
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	out := make([]fixture, nRooms)
	for r := range out {
		tutor := fmt.Sprintf("load-%s-r%d-u0", run, r)
		f := fixture{tokens: []string{token(tutor, "tutor")}}
		m, err := call("POST", "/api/v1/classrooms/", f.tokens[0], map[string]any{"title": "load"})
		if err != nil {
			return nil, err
		}
		f.class, _ = m["id"].(string)
		for u := 1; u < nUsers; u++ {
			id := fmt.Sprintf("load-%s-r%d-u%d", run, r, u)
			tok := token(id, "student")
			f.tokens = append(f.tokens, tok)
			if _, err := call("POST", "/api/v1/classrooms/"+f.class+"/members/", f.tokens[0], map[string]any{"user_id": id}); err != nil {
				return nil, err
			}
		}
		m, err = call("POST", "/api/v1/classrooms/"+f.class+"/sessions/", f.tokens[0], map[string]any{"title": "load"})
		if err != nil {
			return nil, err
		}
		f.session, _ = m["id"].(string)
		out[r] = f
	}
	return out, nil
}

func collectLatency(conns []*conn) []float64 {
	var all []float64
	for _, c := range conns {
		c.mu.Lock()
		all = append(all, c.lat...)
		c.mu.Unlock()
	}
	sort.Float64s(all)
	return all
}

func pct(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	return s[int(float64(len(s)-1)*p)]
}

func cpuTicks(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return n
		}
	}
	return 0
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// serveBare is the baseline: rooms of connections, each frame forwarded as-is to the others.
func serveBare(addr string) {
	type sub struct{ ch chan []byte }
	var mu sync.Mutex
	roomsMap := map[string]map[*sub]struct{}{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		room := strings.TrimPrefix(r.URL.Path, "/room/")
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		s := &sub{ch: make(chan []byte, 256)}
		mu.Lock()
		if roomsMap[room] == nil {
			roomsMap[room] = map[*sub]struct{}{}
		}
		roomsMap[room][s] = struct{}{}
		mu.Unlock()
		ctx, cancel := context.WithCancel(r.Context())
		defer func() {
			cancel()
			mu.Lock()
			delete(roomsMap[room], s)
			mu.Unlock()
		}()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case b := <-s.ch:
					wctx, wc := context.WithTimeout(ctx, 5*time.Second)
					err := c.Write(wctx, websocket.MessageText, b)
					wc()
					if err != nil {
						cancel()
						return
					}
				}
			}
		}()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			for o := range roomsMap[room] {
				if o != s {
					select {
					case o.ch <- b:
					default:
					}
				}
			}
			mu.Unlock()
		}
	})
	if err := http.ListenAndServe(addr, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var _ = io.Discard
