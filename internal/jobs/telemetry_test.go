package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/jobs"
	"github.com/m4sh/backend/internal/telemetry"
)

// TestTelemetryPartitionsJob runs the job through the wired River client and checks it
// recreates a missing partition ahead of today.
func TestTelemetryPartitionsJob(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	ctx := context.Background()
	ahead := "telemetry_events_p" + telemetry.Day(time.Now()).AddDate(0, 0, telemetry.PartitionsAhead).Format("20060102")
	exists := func() bool {
		var ok bool
		if err := env.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ahead).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// The job also runs at start: wait for that run, then take its work away and run it again.
	deadline := time.Now().Add(10 * time.Second)
	for !exists() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not created at start", ahead)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := env.Pool.Exec(ctx, "DROP TABLE "+ahead); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.River.Insert(ctx, jobs.TelemetryPartitionsArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	for !exists() {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("%s not recreated by the job", ahead)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
