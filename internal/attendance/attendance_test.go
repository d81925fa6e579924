package attendance_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
)

const testSecret = "whsec_C2FSb3ZlbHlQb255MTIzNDU2Nzg5MGFiY2RlZmdoaWo="

// event is one webhook the loopback receiver got.
type event struct {
	Type string `json:"type"`
	Data struct {
		ClassroomID string     `json:"classroom_id"`
		SessionID   string     `json:"session_id"`
		UserID      string     `json:"user_id"`
		Role        string     `json:"role"`
		JoinedAt    time.Time  `json:"joined_at"`
		LeftAt      *time.Time `json:"left_at"`
	} `json:"data"`
}

type receiver struct {
	mu  sync.Mutex
	got []event
}

func (rc *receiver) participants() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, e := range rc.got {
		if strings.HasPrefix(e.Type, "participant.") {
			out = append(out, e.Type+" "+e.Data.UserID)
		}
	}
	return out
}

func newReceiver(t *testing.T) (*receiver, string) {
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e event
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &e)
		rc.mu.Lock()
		rc.got = append(rc.got, e)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

// webhookFixture is a service alone sending its webhooks to a loopback receiver.
func webhookFixture(t *testing.T) (fixture, *receiver) {
	t.Helper()
	rc, url := newReceiver(t)
	return fixture{apptest.NewClassrooms(t, map[string]string{"WEBHOOK_URL": url, "WEBHOOK_SECRET": testSecret}), t}, rc
}

type fixture struct {
	apptest.Classrooms
	t *testing.T
}

func (f fixture) path() string {
	return "/api/v1/classrooms/" + f.Class.Id.String() + "/sessions/" + f.Session.Id.String() + "/attendance/"
}

func (f fixture) dial(tok string) *websocket.Conn {
	f.t.Helper()
	url := "ws" + strings.TrimPrefix(f.Env.Server.URL, "http") + "/ws/classroom/" + f.Class.Id.String() + "/session/" + f.Session.Id.String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	f.t.Cleanup(func() { _ = c.CloseNow() })
	if _, _, err := c.Read(ctx); err != nil { // the snapshot: joined
		f.t.Fatalf("snapshot: %v", err)
	}
	// Read on so that the server's frames never back up; the reader ends with the socket.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return c
}

// rows reads every JSON page of the attendance, limit rows a page, as tina.
func (f fixture) rows(limit int) []api.AttendanceRow {
	f.t.Helper()
	var all []api.AttendanceRow
	q := "?limit=" + strconv.Itoa(limit)
	for {
		r := f.Env.Do(apptest.Request{Method: http.MethodGet, Path: f.path() + q, Token: f.Tina})
		if r.Status != http.StatusOK {
			f.t.Fatalf("GET attendance = %d: %s", r.Status, r.Body)
		}
		var p api.AttendancePage
		r.Decode(f.t, &p)
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			return all
		}
		q = "?limit=" + strconv.Itoa(limit) + "&cursor=" + *p.NextCursor
	}
}

func (f fixture) row(user string) (api.AttendanceRow, bool) {
	for _, r := range f.rows(100) {
		if r.UserId == user {
			return r, true
		}
	}
	return api.AttendanceRow{}, false
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAttendanceOnOneNode: tabs and a reconnect within the leave grace make one span, a
// leave ends it after the grace, a later return is a second join; each span's start and end
// reach the webhook receiver once; CSV and JSON agree; only the tutor may read it; a
// shutdown ends the open spans.
func TestAttendanceOnOneNode(t *testing.T) {
	t.Parallel()
	rc, url := newReceiver(t)
	const grace = time.Second
	f := fixture{apptest.NewClassrooms(t, map[string]string{"WS_LEAVE_GRACE": "1s", "WEBHOOK_URL": url, "WEBHOOK_SECRET": testSecret}), t}

	// Two tabs, one closed, then the other closed and back within the grace: one span.
	tab1, tab2 := f.dial(f.Mia), f.dial(f.Mia)
	_ = tab1.Close(websocket.StatusNormalClosure, "")
	_ = tab2.Close(websocket.StatusNormalClosure, "")
	time.Sleep(grace / 4)
	tab3 := f.dial(f.Mia)
	for range 30 { // cursors write nothing
		_ = tab3.Write(context.Background(), websocket.MessageText, []byte(`{"type":"cursor","x":1,"y":2}`))
	}
	time.Sleep(grace) // past the first close's grace
	r, ok := f.row("mia")
	if !ok || r.Joins != 1 || r.LastLeftAt != nil || r.Role != "student" || r.Name != "Mia" {
		t.Fatalf("mia after tabs and a reconnect within the grace: %+v (found %v), want one open span", r, ok)
	}
	var spans int
	if err := f.Env.Pool.QueryRow(context.Background(), "SELECT count(*) FROM attendance_spans").Scan(&spans); err != nil || spans != 1 {
		t.Fatalf("attendance_spans rows = %d, %v; want 1", spans, err)
	}

	// The leave ends the span once the grace is over, not before.
	closed := time.Now()
	_ = tab3.Close(websocket.StatusNormalClosure, "")
	waitFor(t, 10*time.Second, "mia's span to end", func() bool { r, _ := f.row("mia"); return r.LastLeftAt != nil })
	if d := time.Since(closed); d < grace {
		t.Fatalf("mia's span ended %v after her last tab closed, want after the grace (%v)", d, grace)
	}
	r, _ = f.row("mia")
	if r.Joins != 1 || r.LastLeftAt.Before(r.FirstJoinedAt) || r.PresentSeconds < 1 || r.PresentSeconds > 10 {
		t.Fatalf("mia after leaving: %+v", r)
	}

	// Back later: a second join. Tina comes too.
	mia, tina := f.dial(f.Mia), f.dial(f.Tina)
	waitFor(t, 5*time.Second, "two rows", func() bool { return len(f.rows(100)) == 2 })
	if r, _ := f.row("mia"); r.Joins != 2 || r.LastLeftAt != nil {
		t.Fatalf("mia back: %+v, want 2 joins and connected", r)
	}

	// Only the tutor reads it: a member 403, a stranger and another classroom's tutor 404,
	// another classroom's session under this classroom 404.
	for _, c := range []struct {
		name, tok, path string
		want            int
		code            string
	}{
		{"member", f.Mia, f.path(), 403, "forbidden"},
		{"stranger", f.Sam, f.path(), 404, "not_found"},
		{"other tutor", f.Oscar, f.path(), 404, "not_found"},
		{"other session", f.Tina, "/api/v1/classrooms/" + f.Class.Id.String() + "/sessions/" + f.OtherSession.Id.String() + "/attendance/", 404, "not_found"},
		{"bad limit", f.Tina, f.path() + "?limit=0", 400, "validation_error"},
	} {
		r := f.Env.Do(apptest.Request{Method: http.MethodGet, Path: c.path, Token: c.tok, Header: map[string]string{"Accept": "text/csv"}})
		if r.Status != c.want || !strings.Contains(string(r.Body), `"code":"`+c.code+`"`) {
			t.Errorf("%s: GET attendance = %d %s, want %d %s", c.name, r.Status, r.Body, c.want, c.code)
		}
	}

	// Everyone leaves; CSV and JSON (one row a page) then agree exactly.
	_ = mia.Close(websocket.StatusNormalClosure, "")
	_ = tina.Close(websocket.StatusNormalClosure, "")
	waitFor(t, 10*time.Second, "both spans to end", func() bool {
		rows := f.rows(100)
		return len(rows) == 2 && rows[0].LastLeftAt != nil && rows[1].LastLeftAt != nil
	})
	jsonRows := f.rows(1)
	resp := f.Env.Do(apptest.Request{Method: http.MethodGet, Path: f.path(), Token: f.Tina, Header: map[string]string{"Accept": "application/json;q=0.5, text/csv"}})
	if resp.Status != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("GET attendance as CSV = %d %q: %s", resp.Status, resp.Header.Get("Content-Type"), resp.Body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(resp.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"user_id", "name", "role", "first_joined_at", "last_left_at", "present_seconds", "joins"}}
	for _, r := range jsonRows {
		want = append(want, []string{r.UserId, r.Name, string(r.Role), r.FirstJoinedAt.UTC().Format(time.RFC3339Nano),
			r.LastLeftAt.UTC().Format(time.RFC3339Nano), strconv.FormatInt(r.PresentSeconds, 10), strconv.Itoa(r.Joins)})
	}
	if g, w := fmtRecs(recs), fmtRecs(want); g != w {
		t.Fatalf("CSV:\n%s\nJSON as CSV:\n%s", g, w)
	}
	if len(jsonRows) != 2 || jsonRows[0].UserId != "tina" || jsonRows[1].UserId != "mia" {
		t.Fatalf("rows = %+v, want tina (the latest first join) then mia", jsonRows)
	}

	// Each span's start and end, once each.
	wantEvents := map[string]int{"participant.joined mia": 2, "participant.left mia": 2, "participant.joined tina": 1, "participant.left tina": 1}
	waitFor(t, 30*time.Second, "six participant events", func() bool { return len(rc.participants()) >= 6 })
	time.Sleep(200 * time.Millisecond)
	got := map[string]int{}
	for _, p := range rc.participants() {
		got[p]++
	}
	if len(got) != len(wantEvents) {
		t.Fatalf("participant events = %v, want %v", got, wantEvents)
	}
	for k, n := range wantEvents {
		if got[k] != n {
			t.Fatalf("participant events = %v, want %v", got, wantEvents)
		}
	}
	rc.mu.Lock()
	for _, e := range rc.got {
		if strings.HasPrefix(e.Type, "participant.") && (e.Data.ClassroomID != f.Class.Id.String() || e.Data.SessionID != f.Session.Id.String() ||
			(e.Type == "participant.left") != (e.Data.LeftAt != nil)) {
			t.Errorf("event %+v", e)
		}
	}
	rc.mu.Unlock()

	// Six transitions went through the lone hub's writer, none lost.
	if err := f.Env.App.Attendance.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	metrics := scrape(t, f.Env)
	for _, line := range []string{"m4sh_attendance_transitions_written_total 6", "m4sh_attendance_transitions_lost_total 0", "m4sh_attendance_queued_transitions 0"} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// A shutdown ends the spans still open.
	f.dial(f.Mia)
	dbURL := f.Env.Config.DatabaseURL
	f.Env.Stop()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var open, total int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE left_at IS NULL), count(*) FROM attendance_spans").Scan(&open, &total); err != nil {
		t.Fatal(err)
	}
	if open != 0 || total != 4 {
		t.Fatalf("after shutdown: %d open spans of %d, want 0 of 4", open, total)
	}
}

func fmtRecs(recs [][]string) string {
	lines := make([]string, len(recs))
	for i, r := range recs {
		lines[i] = strings.Join(r, ",")
	}
	return strings.Join(lines, "\n")
}

// TestNoEventForARolledBackSpan: a span opened in a transaction that rolls back leaves
// neither the span nor its participant.joined; committed, one of each.
func TestNoEventForARolledBackSpan(t *testing.T) {
	t.Parallel()
	f, _ := webhookFixture(t)
	ctx := context.Background()
	mia := presence.User{UserID: "mia", Name: "Mia", Role: "student"}
	count := func() (spans, jobs int) {
		t.Helper()
		err := f.Env.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM attendance_spans),
			(SELECT count(*) FROM `+queuedEvents+` m->>'type' = 'participant.joined')`).Scan(&spans, &jobs)
		if err != nil {
			t.Fatal(err)
		}
		return spans, jobs
	}
	tx, err := f.Env.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Env.App.Attendance.Arrived(ctx, tx, f.Session.Id, mia); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if s, j := count(); s != 0 || j != 0 {
		t.Fatalf("after a rollback: %d spans, %d participant.joined jobs; want none", s, j)
	}
	err = postgres.InTx(ctx, f.Env.Pool, func(tx pgx.Tx) error { return f.Env.App.Attendance.Arrived(ctx, tx, f.Session.Id, mia) })
	if err != nil {
		t.Fatal(err)
	}
	if s, j := count(); s != 1 || j != 1 {
		t.Fatalf("after a commit: %d spans, %d participant.joined jobs; want one of each", s, j)
	}
}

// TestHungReceiverDelaysNoPresence: with every webhook worker stuck on a receiver that never
// answers, joins, leaves and the attendance they write go on at their usual pace.
func TestHungReceiverDelaysNoPresence(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hung.Close)
	f := fixture{apptest.NewClassrooms(t, map[string]string{"WEBHOOK_URL": hung.URL, "WEBHOOK_SECRET": testSecret,
		"WEBHOOK_WORKERS": "2", "WEBHOOK_TIMEOUT": "60s"}), t}
	t.Cleanup(func() { close(release) }) // before the service stops, which waits for running jobs
	var worst time.Duration
	for i := range 10 {
		start := time.Now()
		c := f.dial(f.Mia) // the snapshot: joined
		_ = c.Close(websocket.StatusNormalClosure, "")
		if d := time.Since(start); d > worst {
			worst = d
		}
		if i == 0 { // the first join's event holds a worker; wait until both are stuck
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor(t, 10*time.Second, "ten spans, all ended", func() bool {
		r, ok := f.row("mia")
		return ok && r.Joins == 10 && r.LastLeftAt != nil
	})
	t.Logf("slowest of 10 joins while the receiver hangs: %v", worst)
	if worst > 2*time.Second {
		t.Fatalf("a join took %v while the receiver hung", worst)
	}
}

// TestAttendanceCSVStreamsEveryPage: 250 users (three pages of the CSV writer) come out as
// CSV in the order and with the values of the JSON pages; names a spreadsheet would run are
// disarmed.
func TestAttendanceCSVStreamsEveryPage(t *testing.T) {
	t.Parallel()
	f := fixture{apptest.NewClassrooms(t, nil), t}
	_, err := f.Env.Pool.Exec(context.Background(), `
		INSERT INTO attendance_spans (classroom_id, session_id, user_id, name, role, joined_at, left_at)
		SELECT $1, $2, 'u' || i, CASE WHEN i = 7 THEN '=cmd|'' /C calc''!A0' ELSE 'User, "' || i || '"' END, 'student',
		       now() - make_interval(secs => 1000 - i), CASE WHEN i % 2 = 0 THEN now() - make_interval(secs => 500 - i) END
		FROM generate_series(1, 250) i`, f.Class.Id, f.Session.Id)
	if err != nil {
		t.Fatal(err)
	}
	resp := f.Env.Do(apptest.Request{Method: http.MethodGet, Path: f.path(), Token: f.Tina, Header: map[string]string{"Accept": "text/csv"}})
	if resp.Status != 200 {
		t.Fatalf("GET attendance as CSV = %d: %s", resp.Status, resp.Body)
	}
	recs, err := csv.NewReader(strings.NewReader(string(resp.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows := f.rows(100)
	if len(recs) != 251 || len(rows) != 250 {
		t.Fatalf("CSV lines = %d, JSON rows = %d; want 251 and 250", len(recs), len(rows))
	}
	for i, r := range rows {
		left := ""
		if r.LastLeftAt != nil {
			left = r.LastLeftAt.UTC().Format(time.RFC3339Nano)
		}
		name := r.Name
		if strings.HasPrefix(name, "=") {
			name = "'" + name
		}
		want := []string{r.UserId, name, string(r.Role), r.FirstJoinedAt.UTC().Format(time.RFC3339Nano), left, "", strconv.Itoa(r.Joins)}
		got := recs[i+1]
		if r.LastLeftAt != nil { // closed spans: present_seconds is fixed
			want[5] = strconv.FormatInt(r.PresentSeconds, 10)
		} else {
			want[5] = got[5] // open: counts up between the two reads
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("CSV line %d = %q, want %q", i+2, got, want)
		}
	}
	if rows[0].UserId != "u250" || rows[249].UserId != "u1" {
		t.Fatalf("order: first %s, last %s; want the latest first join (u250) first", rows[0].UserId, rows[249].UserId)
	}
	if recs[1+250-7][1] != `'=cmd|' /C calc'!A0` {
		t.Fatalf("u7's name in CSV = %q, want it prefixed with '", recs[1+250-7][1])
	}
}

func scrape(t *testing.T, e *apptest.Env) string {
	t.Helper()
	resp, err := http.Get(e.Server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
