// Package s3test runs a real S3-compatible server for tests: Versity S3 Gateway with its
// posix backend in a temporary directory, on a free loopback port. The binary is installed
// with `go install` into the repository's .data/bin on first use, so tests need nothing
// preinstalled. Each test gets a bucket of its own.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/dbtest"
)

// Version is the Versity S3 Gateway release the tests run against.
const Version = "v1.8.0"

const (
	accessKey = "m4shtestaccess"
	secretKey = "m4shtestsecret0123456789"
	region    = "us-east-1"
)

var (
	once     sync.Once
	endpoint string
	startErr error
)

// Credentials are the test server's root credentials.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
}

// Bucket starts the server if needed, creates a fresh bucket and returns options for it.
func Bucket(t testing.TB) blob.S3Options {
	t.Helper()
	once.Do(func() { endpoint, startErr = start() })
	if startErr != nil {
		t.Fatalf("s3test: %v", startErr)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	bucket := "t-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), Region: region, UsePathStyle: true,
		Credentials: Credentials(),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("s3test: creating bucket: %v", err)
	}
	return blob.S3Options{Endpoint: endpoint, Region: region, Bucket: bucket, ForcePathStyle: true, Credentials: Credentials()}
}

// Endpoint returns the running server's URL (starting it if needed).
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() { endpoint, startErr = start() })
	if startErr != nil {
		t.Fatalf("s3test: %v", startErr)
	}
	return endpoint
}

func start() (string, error) {
	bin, err := install()
	if err != nil {
		return "", err
	}
	root, err := os.MkdirTemp("", "m4sh-s3test-")
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return "", err
	}
	// Its request log would interleave with test and benchmark output: keep it in a file.
	logf, err := os.Create(filepath.Join(root, "versitygw.log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--region", region, "--port", addr, "posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test binary, whatever way it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting versitygw: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://" + addr, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return "", fmt.Errorf("versitygw did not listen on %s within 20s", addr)
}

// install returns the versitygw binary, building it with `go install` on first use.
func install() (string, error) {
	if p := os.Getenv("VERSITYGW_BIN"); p != "" {
		return p, nil
	}
	root, err := dbtest.RepoRoot()
	if err != nil {
		return "", err
	}
	gobin := filepath.Join(root, ".data", "bin", "versitygw-"+Version)
	bin := filepath.Join(gobin, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	lock := filepath.Join(root, ".data", "bin", ".versitygw.lock")
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		return "", err
	}
	// Several test binaries may get here at once: let one build, under a file lock.
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.Command("go", "install", "github.com/versity/versitygw/cmd/versitygw@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	cmd.Dir = os.TempDir() // outside our module: install the tool at its own pinned version
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install versitygw@%s: %w", Version, err)
	}
	return bin, nil
}
