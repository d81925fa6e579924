package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	spec "github.com/m4sh/backend/gen/api"
)

// linkedCommit is set at link time by scripts/image.sh (-X main.linkedCommit=…): Go's own VCS
// stamp is missing in git worktrees and wherever GOFLAGS has -buildvcs=false.
var linkedCommit string

// version prints the API version (the OpenAPI document's info.version, which the image's
// labels carry too) and the commit the binary was built from.
func version(stdout io.Writer) error {
	doc, err := spec.GetSpec()
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	fmt.Fprintf(stdout, "m4sh %s (commit %s)\n", doc.Info.Version, buildCommit())
	return nil
}

// buildCommit is the linked commit, else Go's VCS stamp, else "unknown".
func buildCommit() string {
	if linkedCommit != "" {
		return linkedCommit
	}
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty {
			commit += "-dirty"
		}
	}
	return commit
}

// healthcheck GETs this node's /healthz and fails unless it answers 200 within 2 s: a
// container HEALTHCHECK for an image that has no curl. The default address is HTTP_ADDR's
// port on loopback.
func healthcheck(ctx context.Context, httpAddr string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "URL to check (default http://127.0.0.1:<HTTP_ADDR port>/healthz)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		_, port, err := net.SplitHostPort(httpAddr)
		if err != nil {
			return fmt.Errorf("healthcheck: HTTP_ADDR %q: %w", httpAddr, err)
		}
		*url = "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("healthcheck: " + *url + " answered " + resp.Status)
	}
	return nil
}
