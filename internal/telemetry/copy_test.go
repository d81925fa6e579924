package telemetry_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/telemetry"
)

// TestCopyEventsRoundTrip: every field written by the hand-made binary COPY reads back as
// sent — NULLs for absent optional fields, unicode, nested props (jsonb normalises the
// text, so props are compared as jsonb), timestamps before 2000 and far ahead, microsecond
// precision — and a row PostgreSQL refuses fails the whole batch with PostgreSQL's error.
func TestCopyEventsRoundTrip(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := b.store.EnsurePartitions(ctx, now, 1); err != nil {
		t.Fatal(err)
	}
	hash := bytes.Repeat([]byte{0xab, 0x00}, telemetry.ClientHashBytes/2)
	events := []telemetry.Event{
		{ReceivedAt: now, Name: "all.fields", TS: time.Date(2026, 11, 25, 8, 1, 2, 345678000, time.UTC), Level: "warn",
			UserID: "user-1", SessionID: "s-1", Props: []byte(`{"a":{"b":[1,2.5,"x",null,true]},"ü":"ñ"}`),
			UserAgent: "Mozilla/5.0 ☃", ClientHash: hash},
		{ReceivedAt: now, Name: "nulls", TS: time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC), ClientHash: hash},
		{ReceivedAt: now, Name: "名前", TS: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), Props: []byte(`{}`),
			UserAgent: "", ClientHash: hash},
	}
	n, err := b.store.CopyEvents(ctx, events)
	if err != nil || n != int64(len(events)) {
		t.Fatalf("CopyEvents = %d, %v", n, err)
	}
	for _, e := range events {
		var (
			received, ts               time.Time
			name, level, user, session string
			propsNull, propsEqual      bool
			ua                         string
			h                          []byte
		)
		props := e.Props
		if props == nil {
			props = []byte(`{}`)
		}
		err := b.pool.QueryRow(ctx, `SELECT received_at, name, ts, coalesce(level, '<null>'), coalesce(user_id, '<null>'),
			coalesce(session_id, '<null>'), props IS NULL, coalesce(props = $1::jsonb, false), user_agent, client_hash
			FROM telemetry_events WHERE name = $2`, string(props), e.Name).
			Scan(&received, &name, &ts, &level, &user, &session, &propsNull, &propsEqual, &ua, &h)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		opt := func(s string) string {
			if s == "" {
				return "<null>"
			}
			return s
		}
		if !received.Equal(e.ReceivedAt) || !ts.Equal(e.TS) || name != e.Name || level != opt(e.Level) ||
			user != opt(e.UserID) || session != opt(e.SessionID) || propsNull != (e.Props == nil) ||
			propsEqual != (e.Props != nil) || ua != e.UserAgent || !bytes.Equal(h, e.ClientHash) {
			t.Errorf("%s: read back received=%v ts=%v level=%q user=%q session=%q propsNull=%v propsEqual=%v ua=%q hash=%x",
				e.Name, received, ts, level, user, session, propsNull, propsEqual, ua, h)
		}
	}

	// A name over the CHECK's 100 characters: PostgreSQL refuses the batch, nothing is stored.
	bad := []telemetry.Event{events[0], {ReceivedAt: now, Name: string(bytes.Repeat([]byte("n"), 101)), TS: now, ClientHash: hash}}
	if _, err := b.store.CopyEvents(ctx, bad); err == nil {
		t.Fatal("a batch with a refused row was stored")
	}
	if got := b.count(t); got != len(events) {
		t.Fatalf("%d rows after the refused batch, want %d", got, len(events))
	}
}

// TestCopyEventsAsyncCommit: the COPY commits with synchronous_commit off, and the setting
// does not outlive it on the pooled connection (the session keeps its own).
func TestCopyEventsAsyncCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t, dbtest.NewURL(t)+"&pool_max_conns=1") // every statement on one session
	store := telemetry.NewPGStore(pool)
	now := time.Now().UTC()
	if _, err := store.EnsurePartitions(ctx, now, 1); err != nil {
		t.Fatal(err)
	}
	// The trigger notes, in a session variable, the synchronous_commit the COPY ran with.
	for _, sql := range []string{
		`SET synchronous_commit = on`,
		`CREATE FUNCTION note_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			PERFORM set_config('m4sh.copy_sync', current_setting('synchronous_commit'), false); RETURN NEW; END $$`,
		`CREATE TRIGGER note_sync BEFORE INSERT ON telemetry_events FOR EACH ROW EXECUTE FUNCTION note_sync()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	events := []telemetry.Event{{ReceivedAt: now, TS: now, Name: "n", ClientHash: make([]byte, telemetry.ClientHashBytes)}}
	if n, err := store.CopyEvents(ctx, events); err != nil || n != 1 {
		t.Fatalf("CopyEvents = %d, %v", n, err)
	}
	var during, after string
	if err := pool.QueryRow(ctx, `SELECT current_setting('m4sh.copy_sync'), current_setting('synchronous_commit')`).Scan(&during, &after); err != nil {
		t.Fatal(err)
	}
	if during != "off" || after != "on" {
		t.Errorf("synchronous_commit during the COPY = %q, after = %q; want off, on", during, after)
	}
}
