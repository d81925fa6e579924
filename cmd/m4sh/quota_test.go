package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/m4sh/backend/internal/dbtest"
)

func TestQuotaSet(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	vars := map[string]string{"DATABASE_URL": url, "AUTH_JWT_SECRET": testSecret, "LOG_LEVEL": "warn", "STORAGE_DIR": t.TempDir()}
	pool := dbtest.Pool(t, url)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "INSERT INTO users (id) VALUES ('alice'); INSERT INTO solo_user_storage (user_id, used_bytes, quota_bytes) VALUES ('alice', 700, 1000)"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want map[string]any
	}{
		// Below current usage is allowed; remaining never goes negative.
		{[]string{"quota", "set", "--user", "alice", "--bytes", "500"}, map[string]any{"user_id": "alice", "used": 700.0, "quota": 500.0, "remaining": 0.0}},
		{[]string{"quota", "set", "-user", "alice", "-bytes", "2000"}, map[string]any{"user_id": "alice", "used": 700.0, "quota": 2000.0, "remaining": 1300.0}},
		// A user never seen before is created.
		{[]string{"quota", "set", "--user", "bob", "--bytes", "0"}, map[string]any{"user_id": "bob", "used": 0.0, "quota": 0.0, "remaining": 0.0}},
	}
	for _, tt := range tests {
		out, err := runCmd(t, vars, tt.args...)
		if err != nil {
			t.Fatalf("run(%v) = %v", tt.args, err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("run(%v) printed %q: %v", tt.args, out, err)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("run(%v) %s = %v, want %v", tt.args, k, got[k], v)
			}
		}
	}
	var quota int64
	if err := pool.QueryRow(ctx, "SELECT quota_bytes FROM solo_user_storage WHERE user_id = 'alice'").Scan(&quota); err != nil || quota != 2000 {
		t.Errorf("stored quota = %d, %v; want 2000", quota, err)
	}
}

func TestQuotaErrors(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"AUTH_JWT_SECRET": testSecret}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"quota"}, "want set"},
		{[]string{"quota", "get"}, "want set"},
		{[]string{"quota", "set", "--bytes", "5"}, "-user is required"},
		{[]string{"quota", "set", "--user", "a"}, "-bytes is required"},
		{[]string{"quota", "set", "--user", "a", "--bytes", "-3"}, "must not be negative"},
		{[]string{"quota", "set", "--user", "a", "--bytes", "5"}, "DATABASE_URL"},
	}
	for _, tt := range tests {
		if _, err := runCmd(t, vars, tt.args...); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("run(%v) = %v, want an error containing %q", tt.args, err, tt.wantErr)
		}
	}
}
