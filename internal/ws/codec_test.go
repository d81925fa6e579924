package ws

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/internal/presence"
)

func schemas(t testing.TB) *Schemas {
	t.Helper()
	s, err := CompileSchemas(asyncapi.YAML)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzDecode proves the fast decoder equivalent to the schema: whatever it accepts, the
// AsyncAPI validator accepts and decodes to the same message. Seeds are in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	s := schemas(f)
	for _, seed := range []string{
		`{"type":"cursor","x":1,"y":2}`, `{"type":"ping"}`, `{"type":"cursor","x":-0.5e3,"y":1E2}`,
		`{"type":"cursor","x":999999999.99999999,"y":0}`, `{"type":"cursor","x":1e9,"y":0}`,
		`{"type":"state","state":{"a":1}}`, `{"type":"state","state":{}}`, `{"type":"state","state":null}`,
		`{"type":"cursor","x":01,"y":0}`, `{"type":"cursor","x":1.,"y":0}`, `{"type":"cursor","x":1e400,"y":0}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		slow, err := s.decodeSlow(b)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("decodeFast accepted %q, the schema refuses it: %v", b, err)
		}
		if fast != slow {
			t.Fatalf("decodeFast(%q) = %+v, schema path = %+v", b, fast, slow)
		}
	})
}

func TestDecode(t *testing.T) {
	t.Parallel()
	s := schemas(t)
	tests := []struct {
		in   string
		want inbound
		ok   bool
		fast bool
	}{
		{`{"type":"cursor","x":1,"y":2}`, inbound{kind: msgCursor, x: 1, y: 2}, true, true},
		{`{"type":"ping"}`, inbound{kind: msgPing}, true, true},
		{` {"x":3,"type":"cursor","y":4}`, inbound{kind: msgCursor, x: 3, y: 4}, true, false},
		{`{"type":"cursor","x":1e9,"y":-1e9}`, inbound{kind: msgCursor, x: 1e9, y: -1e9}, true, false},
		{`{"type":"cursor","x":1.0000000001e9,"y":0}`, inbound{}, false, false},
		{`{"type":"cursor","x":1,"y":2,"x":3}`, inbound{kind: msgCursor, x: 3, y: 2}, true, false},
		{`{"type":"pong"}`, inbound{}, false, false},
		{`{"type":"state","state":{"tool":"pen","color":"<#e8590c>","n":1.50}}`, inbound{kind: msgState, state: `{"color":"<#e8590c>","n":1.50,"tool":"pen"}`}, true, false},
		{`{"state":{},"type":"state"}`, inbound{kind: msgState, state: `{}`}, true, false},
		{`{"type":"state","state":[1]}`, inbound{}, false, false},
		{`{"type":"state","state":{},"x":1}`, inbound{}, false, false},
		{`{"type":"state"}`, inbound{}, false, false},
		{`{"type":"ping","x":1}`, inbound{}, false, false},
		{`{"type":"hand","raised":true}`, inbound{kind: msgHand, on: true}, true, false},
		{`{"type":"hand","raised":false,"user_id":"sam"}`, inbound{kind: msgHand, target: "sam"}, true, false},
		{`{"type":"hand","raised":1}`, inbound{}, false, false},
		{`{"type":"hand","raised":true,"user_id":""}`, inbound{}, false, false},
		{`{"type":"reaction","emoji":"❤️"}`, inbound{kind: msgReaction, emoji: "❤️"}, true, false},
		{`{"type":"reaction","emoji":"❤"}`, inbound{}, false, false},
		{`{"type":"spotlight","on":false}`, inbound{kind: msgSpotlight}, true, false},
		{`{"type":"spotlight"}`, inbound{}, false, false},
		{`{"type":"viewport","x":-1,"y":2,"w":3.5,"h":1e9}`, inbound{kind: msgViewport, x: -1, y: 2, w: 3.5, h: 1e9}, true, false},
		{`{"type":"viewport","x":0,"y":0,"w":-1,"h":1}`, inbound{}, false, false},
		{`{"type":"viewport","x":0,"y":0,"w":1}`, inbound{}, false, false},
		{`null`, inbound{}, false, false},
		{``, inbound{}, false, false},
	}
	for _, tt := range tests {
		_, fast := decodeFast([]byte(tt.in))
		got, err := s.decode([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want || fast != tt.fast {
			t.Errorf("decode(%q) = %+v, %v (fast %t), want %+v ok=%t fast=%t", tt.in, got, err, fast, tt.want, tt.ok, tt.fast)
		}
	}
}

// TestServerFramesMatchSchema: every frame the hand-written encoders produce is a
// ServerMessage of the AsyncAPI document and decodes back to what was encoded, so the Go
// side and the contract cannot drift apart.
func TestServerFramesMatchSchema(t *testing.T) {
	t.Parallel()
	s := schemas(t)
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"", "Ann", `quote " back \ slash`, "tab\tnew\nline\x01", "émoji 🎓", "bad \xff utf8", "sep \u2028"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 1e-7, 123456789.125, 1e9, -1e9, 5e-324, math.SmallestNonzeroFloat64 * 3}
	check := func(frame []byte, want map[string]any) {
		t.Helper()
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(frame)))
		if err != nil {
			t.Fatalf("frame %q is not JSON: %v", frame, err)
		}
		if err := s.Server.Validate(doc); err != nil {
			t.Fatalf("frame %q is not a ServerMessage: %v", frame, err)
		}
		var got map[string]any
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatal(err)
		}
		if g, w := mustJSON(got), mustJSON(want); g != w {
			t.Fatalf("frame decodes to %s, want %s", g, w)
		}
	}
	for i := 0; i < 200; i++ {
		name := names[r.IntN(len(names))]
		id := "u" + name
		x, y := floats[r.IntN(len(floats))], (r.Float64()-0.5)*2e9
		u := presence.User{UserID: id, Name: name, Role: []string{"tutor", "student"}[r.IntN(2)]}
		wu := map[string]any{"user_id": valid(id), "name": valid(name), "role": u.Role}
		sess := uuid.New()
		check(appendSnapshot(nil, sess, []presence.User{u, u}), map[string]any{"type": "presence.snapshot", "session_id": sess.String(), "users": []any{wu, wu}})
		check(appendSnapshot(nil, sess, nil), map[string]any{"type": "presence.snapshot", "session_id": sess.String(), "users": []any{}})
		check(appendJoin(nil, u), map[string]any{"type": "presence.join", "user": wu})
		check(appendLeave(nil, id), map[string]any{"type": "presence.leave", "user_id": valid(id)})
		e := cursorEntry(id, x, y)
		check(appendCursors(nil, [][]byte{e}), map[string]any{"type": "cursor", "user_id": valid(id), "x": x, "y": y})
		wc := map[string]any{"user_id": valid(id), "x": x, "y": y}
		check(appendCursors(nil, [][]byte{e, e}), map[string]any{"type": "cursors", "cursors": []any{wc, wc}})
		st := `{"color":"#e8590c","tool":"pen"}`
		ws := map[string]any{"color": "#e8590c", "tool": "pen"}
		us := u
		us.Cursor, us.State = &presence.Point{X: x, Y: y}, st
		wus := map[string]any{"user_id": valid(id), "name": valid(name), "role": u.Role, "cursor": map[string]any{"x": x, "y": y}, "state": ws}
		check(appendSnapshot(nil, sess, []presence.User{us, u}), map[string]any{"type": "presence.snapshot", "session_id": sess.String(), "users": []any{wus, wu}})
		check(appendState(nil, id, []byte(st)), map[string]any{"type": "state", "user_id": valid(id), "state": ws})

		at := time.Date(2026, 11, 30, 18, 2, 11, r.IntN(1e9), time.FixedZone("x", 3600))
		wat := at.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		check(appendHand(nil, id, i%2 == 0, at), map[string]any{"type": "hand", "user_id": valid(id), "raised": i%2 == 0, "at": wat})
		emoji := []string{"👍", "👏", "❤️", "😂", "😮", "❓"}[r.IntN(6)]
		check(appendReaction(nil, id, emoji), map[string]any{"type": "reaction", "user_id": valid(id), "emoji": emoji})
		check(appendSpotlight(nil, id, i%2 == 1), map[string]any{"type": "spotlight", "user_id": valid(id), "on": i%2 == 1})
		w, h := math.Abs(x)+5e-324, r.Float64()*1e9+1
		vf := viewportFrame(id, x, y, w, h)
		check(vf, map[string]any{"type": "viewport", "user_id": valid(id), "x": x, "y": y, "w": w, "h": h})
		tutor, student := u, u
		tutor.UserID = id + "t"
		tutor.Tutoring = &presence.Tutoring{Spotlight: true, Viewport: string(viewportFrame(id+"t", x, y, w, h))}
		student.Tutoring = &presence.Tutoring{HandAt: at}
		check(appendSnapshot(nil, sess, []presence.User{student, tutor}), map[string]any{"type": "presence.snapshot", "session_id": sess.String(),
			"users":     []any{wu, map[string]any{"user_id": valid(id + "t"), "name": valid(name), "role": u.Role}},
			"hands":     []any{map[string]any{"user_id": valid(id), "at": wat}},
			"spotlight": map[string]any{"user_id": valid(id + "t"), "viewport": map[string]any{"x": x, "y": y, "w": w, "h": h}}})
	}
	for _, f := range [][]byte{frameHandForbidden, frameSpotlightForbidden, frameViewportForbidden} {
		var want map[string]any
		if err := json.Unmarshal(f, &want); err != nil || want["code"] != "forbidden" {
			t.Fatalf("%s: %v", f, err)
		}
		check(f, want)
	}
	for _, f := range [][]byte{frameHandRateLimited, frameSpotlightRateLimited} {
		var want map[string]any
		if err := json.Unmarshal(f, &want); err != nil || want["code"] != "rate_limited" {
			t.Fatalf("%s: %v", f, err)
		}
		check(f, want)
	}
	check(framePong, map[string]any{"type": "pong"})
	check(frameStateTooLarge, map[string]any{"type": "error", "code": "state_too_large", "message": "presence state is larger than 512 bytes", "for": "state"})
}

// valid is s as a JSON decoder sees it after encoding (invalid UTF-8 replaced).
func valid(s string) string { return strings.ToValidUTF8(s, "\ufffd") }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func BenchmarkDecode(b *testing.B) {
	s := schemas(b)
	msg := []byte(`{"type":"cursor","x":12345678,"y":0}`)
	b.Run("baseline", func(b *testing.B) { // the full schema path every frame would take
		for b.Loop() {
			if _, err := s.decodeSlow(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.decode(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
