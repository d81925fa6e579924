package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/m4sh/backend/internal/dbtest"
)

// childEnv marks a re-executed test binary that runs main() — the real m4sh binary's
// entry point — instead of the tests, so the cluster tests run real processes without a
// separate build.
const childEnv = "M4SH_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// natsServer is an embedded NATS server on a fixed loopback port, restartable in place.
type natsServer struct {
	t    *testing.T
	port int
	s    *natsserver.Server
}

func startNATS(t *testing.T, port int) *natsServer {
	t.Helper()
	n := &natsServer{t: t, port: port}
	n.start()
	t.Cleanup(func() {
		if n.s != nil {
			n.s.Shutdown()
		}
	})
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: n.port, NoLog: true, NoSigs: true})
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats server not ready within 10s")
	}
	n.s = s
}

func (n *natsServer) stop() {
	n.s.Shutdown()
	n.s.WaitForShutdown()
	n.s = nil
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// node is one m4sh serve process.
type node struct {
	name string
	cmd  *exec.Cmd
	addr string // http://127.0.0.1:port
	done chan struct{}
}

func startNode(t *testing.T, name string, env map[string]string) *node {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testLogWriter{t, name}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_ = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() { n.kill() })
	select {
	case n.addr = <-addr:
	case <-n.done:
		t.Fatalf("node %s exited before listening", name)
	case <-time.After(60 * time.Second):
		t.Fatalf("node %s not listening within 60s", name)
	}
	return n
}

// kill ends the process at once (SIGKILL): no leave, no cleanup.
func (n *node) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (n *node) ws(class, session string) string {
	return "ws" + strings.TrimPrefix(n.addr, "http") + "/ws/classroom/" + class + "/session/" + session + "/"
}

type testLogWriter struct {
	t    *testing.T
	name string
}

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// cluster is a database, a NATS server and the nodes' shared environment.
type cluster struct {
	t    *testing.T
	nats *natsServer
	env  map[string]string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	n := startNATS(t, freePort(t))
	env := map[string]string{
		"DATABASE_URL":    dbtest.NewURL(t),
		"AUTH_JWT_SECRET": testSecret,
		"HTTP_ADDR":       "127.0.0.1:0",
		"LOG_LEVEL":       "warn",
		"PUBSUB":          "nats",
		"NATS_URL":        n.url(),
		// CLUSTER_HEARTBEAT_INTERVAL and CLUSTER_PURGE_AFTER keep their defaults (10s,
		// 30s): the kill -9 case checks the documented bound, a leave within 40 s.
		"TELEMETRY_FLUSH_INTERVAL": "1s",
	}
	return &cluster{t: t, nats: n, env: env}
}

func (c *cluster) token(user string) string {
	c.t.Helper()
	out, err := runCmd(c.t, c.env, "token", "-user", user, "-name", strings.ToUpper(user[:1])+user[1:])
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// api calls the REST API on a node and decodes the JSON answer (if any) into v.
func api(t *testing.T, method, url, tok, body string, want int, v any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
}

// wsFrame is a decoded server message.
type wsFrame struct {
	Type  string `json:"type"`
	Users []struct {
		UserID string `json:"user_id"`
	} `json:"users"`
	User *struct {
		UserID string `json:"user_id"`
	} `json:"user"`
	UserID  string `json:"user_id"`
	Cursors []struct {
		UserID string  `json:"user_id"`
		X      float64 `json:"x"`
	} `json:"cursors"`
}

func (f wsFrame) isCursor() bool { return f.Type == "cursor" || f.Type == "cursors" }

func (f wsFrame) String() string {
	switch f.Type {
	case "presence.join":
		return "join " + f.User.UserID
	case "presence.leave":
		return "leave " + f.UserID
	case "presence.snapshot":
		ids := make([]string, len(f.Users))
		for i, u := range f.Users {
			ids[i] = u.UserID
		}
		return "snapshot " + strings.Join(ids, ",")
	}
	return f.Type
}

// client is one WebSocket connection; a goroutine reads its frames into a channel.
type client struct {
	t      *testing.T
	name   string
	c      *websocket.Conn
	frames chan wsFrame
	mu     sync.Mutex
	err    error // how the connection ended
	ended  chan struct{}
}

func connect(t *testing.T, name, url, tok string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	cl := &client{t: t, name: name, c: c, frames: make(chan wsFrame, 4096), ended: make(chan struct{})}
	go func() {
		defer close(cl.ended)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				cl.mu.Lock()
				cl.err = err
				cl.mu.Unlock()
				return
			}
			var f wsFrame
			if err := json.Unmarshal(b, &f); err != nil {
				cl.mu.Lock()
				cl.err = err
				cl.mu.Unlock()
				return
			}
			cl.frames <- f
		}
	}()
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl
}

// next returns the next frame that is not a cursor batch, within a generous deadline.
func (cl *client) next() wsFrame {
	cl.t.Helper()
	return cl.nextWithin(20 * time.Second)
}

func (cl *client) nextWithin(d time.Duration) wsFrame {
	cl.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-cl.frames:
			if f.isCursor() {
				continue
			}
			return f
		case <-cl.ended:
			cl.t.Fatalf("%s: connection ended: %v", cl.name, cl.endErr())
		case <-deadline:
			cl.t.Fatalf("%s: no frame within %v", cl.name, d)
		}
	}
}

// expect asserts the next non-cursor frame.
func (cl *client) expect(want string) {
	cl.t.Helper()
	if got := cl.next().String(); got != want {
		cl.t.Fatalf("%s: next frame = %q, want %q", cl.name, got, want)
	}
}

// expectNothingElse sends a ping and asserts the pong is the next non-cursor frame.
func (cl *client) expectNothingElse() {
	cl.t.Helper()
	cl.send(`{"type":"ping"}`)
	cl.expect("pong")
}

func (cl *client) send(msg string) {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		cl.t.Fatalf("%s: write: %v", cl.name, err)
	}
}

// cursorFrom sends cursor updates from `from` (one every 100 ms, under the rate) until cl
// sees one from that user, dropping other frames but presence ones, which fail the test.
func (cl *client) cursorFrom(from *client, user string, within time.Duration) {
	cl.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for x := 1; time.Now().Before(deadline); x++ {
		from.send(fmt.Sprintf(`{"type":"cursor","x":%d,"y":1}`, x))
		for {
			select {
			case f := <-cl.frames:
				if !f.isCursor() {
					cl.t.Fatalf("%s: unexpected %q while waiting for a cursor", cl.name, f)
				}
				if f.Type == "cursor" && f.UserID == user {
					return
				}
				for _, c := range f.Cursors {
					if c.UserID == user {
						return
					}
				}
				continue
			case <-cl.ended:
				cl.t.Fatalf("%s: connection ended: %v", cl.name, cl.endErr())
			case <-tick.C:
			}
			break
		}
	}
	cl.t.Fatalf("%s: no cursor from %s within %v", cl.name, user, within)
}

func (cl *client) endErr() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.err
}

// closed waits for the connection to end and returns its close code (-1 without one).
func (cl *client) closed(within time.Duration) int {
	cl.t.Helper()
	select {
	case <-cl.ended:
	case <-time.After(within):
		return 0
	}
	var ce websocket.CloseError
	if errors.As(cl.endErr(), &ce) {
		return int(ce.Code)
	}
	return -1
}

func presenceView(t *testing.T, n *node, tok, class, session string) string {
	t.Helper()
	var v struct {
		Users []struct {
			UserID string `json:"user_id"`
		} `json:"users"`
	}
	api(t, http.MethodGet, n.addr+"/api/v1/classrooms/"+class+"/sessions/"+session+"/presence/", tok, "", 200, &v)
	ids := make([]string, len(v.Users))
	for i, u := range v.Users {
		ids[i] = u.UserID
	}
	return strings.Join(ids, ",")
}

func waitReady(t *testing.T, n *node, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(n.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("node %s not ready within %v", n.name, within)
}

// TestCluster runs two (then three) real m4sh processes on loopback sharing one database
// and an embedded NATS server, and drives WebSocket clients across them (issue 9).
func TestCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts several processes")
	}
	cl := newCluster(t)
	a := startNode(t, "a", cl.env)
	b := startNode(t, "b", cl.env)
	tina, mia, sam := cl.token("tina"), cl.token("mia"), cl.token("sam")

	var class, session struct {
		ID string `json:"id"`
	}
	api(t, http.MethodPost, a.addr+"/api/v1/classrooms/", tina, `{"title":"Cluster"}`, 201, &class)
	for _, u := range []string{"mia", "sam"} {
		api(t, http.MethodPost, a.addr+"/api/v1/classrooms/"+class.ID+"/members/", tina, `{"user_id":"`+u+`"}`, 201, nil)
	}
	api(t, http.MethodPost, b.addr+"/api/v1/classrooms/"+class.ID+"/sessions/", tina, `{}`, 201, &session)

	// Users on different nodes see each other's presence and cursors.
	tinaA := connect(t, "tina@a", a.ws(class.ID, session.ID), tina)
	tinaA.expect("snapshot tina")
	miaB := connect(t, "mia@b", b.ws(class.ID, session.ID), mia)
	miaB.expect("snapshot mia,tina")
	tinaA.expect("join mia")
	tinaA.cursorFrom(miaB, "mia", 20*time.Second)
	miaB.cursorFrom(tinaA, "tina", 20*time.Second)

	// One user with tabs on both nodes is present once and leaves once.
	samA := connect(t, "sam@a", a.ws(class.ID, session.ID), sam)
	samA.expect("snapshot mia,sam,tina")
	tinaA.expect("join sam")
	miaB.expect("join sam")
	samB := connect(t, "sam@b", b.ws(class.ID, session.ID), sam)
	samB.expect("snapshot mia,sam,tina")
	for _, n := range []*node{a, b} {
		if got := presenceView(t, n, tina, class.ID, session.ID); got != "mia,sam,tina" {
			t.Fatalf("presence view on %s = %q, want mia,sam,tina", n.name, got)
		}
	}
	_ = samA.c.Close(websocket.StatusNormalClosure, "")
	_ = samB.c.Close(websocket.StatusNormalClosure, "")
	tinaA.expect("leave sam")
	miaB.expect("leave sam")
	tinaA.expectNothingElse()
	miaB.expectNothingElse()

	// NATS restarted mid-session: fan-out resumes and no client was closed.
	cl.nats.stop()
	// The node learns of the lost connection when its socket reports it: poll, as a balancer does.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(a.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 && strings.Contains(string(body), "nats") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz 10s after NATS stopped = %d %s, want 503 naming nats", resp.StatusCode, body)
		}
	}
	time.Sleep(500 * time.Millisecond)
	cl.nats.start()
	waitReady(t, a, 30*time.Second)
	waitReady(t, b, 30*time.Second)
	tinaA.cursorFrom(miaB, "mia", 30*time.Second)
	miaB.cursorFrom(tinaA, "tina", 30*time.Second)

	// Removing a member connected to another node closes that connection with 4403 within 1s.
	start := time.Now()
	api(t, http.MethodDelete, a.addr+"/api/v1/classrooms/"+class.ID+"/members/mia/", tina, "", 204, nil)
	if code := miaB.closed(time.Second + time.Since(start)); code != 4403 {
		t.Fatalf("mia@b after removal on a: close %d within 1s, want 4403", code)
	}
	t.Logf("removal on a closed mia@b in %v", time.Since(start))
	tinaA.expect("leave mia")

	// kill -9 of a node: the others emit its users' leave within 40 s, the presence view
	// agrees; the node restarts and its users rejoin.
	samB = connect(t, "sam@b", b.ws(class.ID, session.ID), sam)
	samB.expect("snapshot sam,tina")
	tinaA.expect("join sam")
	killed := time.Now()
	b.kill()
	deadline := time.Now().Add(40 * time.Second)
	for {
		f := tinaA.nextWithin(time.Until(deadline))
		if f.String() == "leave sam" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tina@a: %q, no leave of sam within 40s of the kill", f)
		}
	}
	t.Logf("leave of sam %v after kill -9 of b", time.Since(killed))
	if got := presenceView(t, a, tina, class.ID, session.ID); got != "tina" {
		t.Fatalf("presence view on a after the kill = %q, want tina", got)
	}
	b = startNode(t, "b2", cl.env)
	samB = connect(t, "sam@b2", b.ws(class.ID, session.ID), sam)
	samB.expect("snapshot sam,tina")
	tinaA.expect("join sam")
	tinaA.cursorFrom(samB, "sam", 20*time.Second)
	tinaA.expectNothingElse()
	if got := presenceView(t, b, tina, class.ID, session.ID); got != "sam,tina" {
		t.Fatalf("presence view on restarted b = %q, want sam,tina", got)
	}
}
