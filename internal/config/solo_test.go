package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/config"
)

func TestLoadSolo(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Solo{QuotaBytes: 104857600, SnapshotMaxBytes: 5242880, StorageBackend: "local", StorageDir: "./.data/blobs",
		S3: config.S3{Region: "us-east-1"}, KeepLast: 20, GCInterval: time.Hour, UploadsInFlight: 4, DeletionGrace: 2 * time.Minute}
	if c.Solo != want {
		t.Errorf("Solo defaults = %+v, want %+v", c.Solo, want)
	}
	c, err = config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret, "SOLO_QUOTA_BYTES": "0", "SOLO_SNAPSHOT_MAX_BYTES": "1", "STORAGE_DIR": "/srv/blobs",
		"SOLO_UPLOADS_IN_FLIGHT": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Solo{QuotaBytes: 0, SnapshotMaxBytes: 1, StorageBackend: "local", StorageDir: "/srv/blobs",
		S3: config.S3{Region: "us-east-1"}, KeepLast: 20, GCInterval: time.Hour, UploadsInFlight: 1, DeletionGrace: 2 * time.Minute}); c.Solo != want {
		t.Errorf("Solo = %+v, want %+v", c.Solo, want)
	}
	tests := []struct {
		name, key, value string
	}{
		{"negative quota", "SOLO_QUOTA_BYTES", "-1"},
		{"quota not a number", "SOLO_QUOTA_BYTES", "100MB"},
		{"zero max", "SOLO_SNAPSHOT_MAX_BYTES", "0"},
		{"max over the in-memory limit", "SOLO_SNAPSHOT_MAX_BYTES", "268435457"},
		{"unknown backend", "STORAGE_BACKEND", "gcs"},
		{"s3 without bucket", "STORAGE_BACKEND", "s3"}, // "S3_BUCKET: must be set when STORAGE_BACKEND=s3"
		{"bad s3 endpoint", "S3_ENDPOINT", "localhost:9000"},
		{"bad path style", "S3_FORCE_PATH_STYLE", "maybe"},
		{"keep zero", "SOLO_SNAPSHOT_RETENTION_KEEP_LAST", "0"},
		{"gc too often", "SOLO_SNAPSHOT_GC_INTERVAL", "1s"},
		{"deletion grace too long", "SOLO_SNAPSHOT_DELETION_GRACE", "25h"},
		{"no uploads in flight", "SOLO_UPLOADS_IN_FLIGHT", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret, tt.key: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Load(%s=%q) = %v, want an error naming %s", tt.key, tt.value, err, tt.key)
			}
		})
	}
}
