package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type attendanceRow struct {
	UserID        string     `json:"user_id"`
	FirstJoinedAt time.Time  `json:"first_joined_at"`
	LastLeftAt    *time.Time `json:"last_left_at"`
	Joins         int        `json:"joins"`
}

func attendance(t *testing.T, n *node, tok, class, session string) map[string]attendanceRow {
	t.Helper()
	var v struct {
		Items []attendanceRow `json:"items"`
	}
	api(t, http.MethodGet, n.addr+"/api/v1/classrooms/"+class+"/sessions/"+session+"/attendance/", tok, "", 200, &v)
	out := map[string]attendanceRow{}
	for _, r := range v.Items {
		out[r.UserID] = r
	}
	return out
}

// TestClusterAttendance runs two real m4sh processes: a user with tabs on both nodes has one
// span; when one node is killed with SIGKILL, a user who reconnects to the other within the
// leave grace keeps their span, and one who does not is seen to leave only after the grace,
// their span ending at the dead node's last heartbeat (issues 17 and 19).
func TestClusterAttendance(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts several processes")
	}
	const grace = 2 * time.Second
	cl := newCluster(t)
	cl.env["CLUSTER_HEARTBEAT_INTERVAL"] = "300ms"
	cl.env["CLUSTER_PURGE_AFTER"] = "900ms" // below the grace: the purge waits for the grace
	cl.env["WS_LEAVE_GRACE"] = grace.String()
	a := startNode(t, "a", cl.env)
	b := startNode(t, "b", cl.env)
	tina, mia, sam := cl.token("tina"), cl.token("mia"), cl.token("sam")
	var class, session struct {
		ID string `json:"id"`
	}
	api(t, http.MethodPost, a.addr+"/api/v1/classrooms/", tina, `{"title":"Attendance"}`, 201, &class)
	for _, u := range []string{"mia", "sam"} {
		api(t, http.MethodPost, a.addr+"/api/v1/classrooms/"+class.ID+"/members/", tina, `{"user_id":"`+u+`"}`, 201, nil)
	}
	api(t, http.MethodPost, a.addr+"/api/v1/classrooms/"+class.ID+"/sessions/", tina, `{}`, 201, &session)

	tinaA := connect(t, "tina@a", a.ws(class.ID, session.ID), tina)
	tinaA.expect("snapshot tina")
	// Sam with a tab on each node, one closed: one span, still connected.
	samA := connect(t, "sam@a", a.ws(class.ID, session.ID), sam)
	samA.expect("snapshot sam,tina")
	tinaA.expect("join sam")
	samB := connect(t, "sam@b", b.ws(class.ID, session.ID), sam)
	samB.expect("snapshot sam,tina")
	_ = samA.c.Close(websocket.StatusNormalClosure, "")
	miaB := connect(t, "mia@b", b.ws(class.ID, session.ID), mia)
	miaB.expect("snapshot mia,sam,tina")
	tinaA.expect("join mia")
	time.Sleep(grace + 500*time.Millisecond) // sam@a's grace is over: still one span
	tinaA.expectNothingElse()
	rows := attendance(t, a, tina, class.ID, session.ID)
	if r := rows["sam"]; r.Joins != 1 || r.LastLeftAt != nil {
		t.Fatalf("sam with a tab on each node, one closed: %+v, want one open span", r)
	}

	killed := time.Now()
	b.kill()
	// Mia comes back on a within the grace: nobody sees anything, her span goes on.
	time.Sleep(grace / 4)
	miaA := connect(t, "mia@a", a.ws(class.ID, session.ID), mia)
	miaA.expect("snapshot mia,sam,tina")
	deadline := time.Now().Add(20 * time.Second)
	for {
		f := tinaA.nextWithin(time.Until(deadline))
		if f.String() == "leave sam" {
			break
		}
		t.Fatalf("tina@a: %q, want only sam's leave", f)
	}
	// The grace counts from b's last heartbeat, at most one interval (300 ms) before the kill.
	left := time.Since(killed)
	if left < grace-400*time.Millisecond {
		t.Fatalf("sam left %v after b was killed, want no sooner than the grace (%v) after its last heartbeat", left, grace)
	}
	t.Logf("leave of sam %v after kill -9 of b (grace %v)", left, grace)
	tinaA.expectNothingElse()
	rows = attendance(t, a, tina, class.ID, session.ID)
	if r := rows["mia"]; r.Joins != 1 || r.LastLeftAt != nil {
		t.Fatalf("mia, back on a within the grace: %+v, want her one span still open", r)
	}
	r := rows["sam"]
	if r.Joins != 1 || r.LastLeftAt == nil {
		t.Fatalf("sam after b's death: %+v, want one closed span", r)
	}
	// b's last heartbeat: at most one interval (300 ms) before the kill, with slack for load.
	if end := *r.LastLeftAt; end.After(killed) || end.Before(killed.Add(-1500*time.Millisecond)) {
		t.Fatalf("sam's span ended at %v, want b's last heartbeat (shortly before the kill at %v)", end, killed)
	}
	if r := rows["tina"]; r.Joins != 1 || r.LastLeftAt != nil {
		t.Fatalf("tina: %+v", r)
	}
}
