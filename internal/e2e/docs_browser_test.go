package e2e_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// TestDocsInBrowser opens /docs and /docs/websocket in headless Chromium at 1280 px with
// every request to another origin refused (e2e/browser/docs.mjs) and fails when the reader
// would miss something: a sidebar entry for every OpenAPI operation and AsyncAPI message, a
// click on one landing on it below the bar, parameter tables and the close-code table
// rendered (that one fitting the page), markdown rendered rather than shown raw, request
// samples, and no request elsewhere, no script error, no failed load. Screenshots go to
// .data/artifacts/TestDocsInBrowser/.
func TestDocsInBrowser(t *testing.T) {
	t.Parallel()
	chromium, root := apptest.Chromium(t)
	shots := filepath.Join(root, ".data", "artifacts", t.Name())
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	env := apptest.New(t, nil)
	type landing struct {
		Hash string `json:"hash"`
		Top  int    `json:"top"`
	}
	var got struct {
		Outside         []string `json:"outside"`
		Errors          []string `json:"errors"`
		OpenAPIReady    string   `json:"openapiReady"`
		OpenAPINav      []string `json:"openapiNav"`
		ConventionsHTML *struct {
			Strong, Code, Backticks int
		} `json:"conventionsHTML"`
		Clicked struct {
			landing
			TableRows             int  `json:"tableRows"`
			IdempotencyKeyInTable bool `json:"idempotencyKeyInTable"`
		} `json:"clicked"`
		RequestSamples *struct {
			Samples bool `json:"samples"`
			Title   bool `json:"title"`
		} `json:"requestSamples"`
		AsyncAPIReady string `json:"asyncapiReady"`
		AsyncAPI      struct {
			SidebarVisible bool     `json:"sidebarVisible"`
			SidebarLinks   []string `json:"sidebarLinks"`
			Messages       []string `json:"messages"`
			CloseTable     *struct {
				Rows  int  `json:"rows"`
				Right int  `json:"right"`
				Fits  bool `json:"fits"`
			} `json:"closeTable"`
			Backticks int `json:"backticks"`
		} `json:"asyncapi"`
		AsyncAPIClicked landing `json:"asyncapiClicked"`
	}
	apptest.RunBrowserDriver(t, root, 3*time.Minute, "docs.mjs", &got, chromium, env.Server.URL, shots)

	if len(got.Outside) > 0 {
		t.Errorf("the docs asked another origin for %v (they must work offline)", got.Outside)
	}
	if len(got.Errors) > 0 {
		t.Errorf("errors in the pages: %v", got.Errors)
	}
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			ops = append(ops, op.OperationID)
		}
	}
	for _, op := range ops {
		if !slices.Contains(got.OpenAPINav, op) {
			t.Errorf("/docs sidebar has no entry for %s (has %v)", op, got.OpenAPINav)
		}
	}
	if got.OpenAPIReady != "true" {
		t.Errorf("/docs rendered %q, want true", got.OpenAPIReady)
	}
	if c := got.ConventionsHTML; c == nil || c.Strong < 3 || c.Code < 10 || c.Backticks != 0 {
		t.Errorf("/docs Conventions section: %+v, want markdown rendered (bold, code, no raw backticks)", c)
	}
	if c := got.Clicked; !strings.HasSuffix(c.Hash, "/operation/SoloSnapshotCreate") || c.Top < 40 || c.Top > 120 {
		t.Errorf("clicking SoloSnapshotCreate in the sidebar landed at %+v, want its section just below the bar", c.landing)
	}
	if !got.Clicked.IdempotencyKeyInTable || got.Clicked.TableRows < 3 {
		t.Errorf("SoloSnapshotCreate: %d table rows, Idempotency-Key in a table %v: the parameter tables are missing",
			got.Clicked.TableRows, got.Clicked.IdempotencyKeyInTable)
	}
	if r := got.RequestSamples; r == nil || !r.Samples || !r.Title {
		t.Errorf("ClassroomCreate request samples: %+v", r)
	}

	var async struct {
		Components struct {
			Messages map[string]any
		}
	}
	if err := yaml.Unmarshal(asyncapi.YAML, &async); err != nil {
		t.Fatal(err)
	}
	a := got.AsyncAPI
	if got.AsyncAPIReady != "true" || !a.SidebarVisible {
		t.Errorf("/docs/websocket rendered %q, sidebar visible %v", got.AsyncAPIReady, a.SidebarVisible)
	}
	for name := range async.Components.Messages {
		if !slices.Contains(a.Messages, "message-"+name) {
			t.Errorf("/docs/websocket has no section for message %s (has %v)", name, a.Messages)
		}
		if !slices.Contains(a.SidebarLinks, "#message-"+name) {
			t.Errorf("/docs/websocket sidebar has no link to message %s (has %v)", name, a.SidebarLinks)
		}
	}
	if c := a.CloseTable; c == nil || c.Rows < 10 || !c.Fits {
		t.Errorf("/docs/websocket close-code table: %+v, want it rendered and within the 1280 px page", c)
	}
	if a.Backticks != 0 {
		t.Errorf("/docs/websocket introduction shows %d raw backticks", a.Backticks)
	}
	if c := got.AsyncAPIClicked; c.Hash != "#message-presenceSnapshot" || c.Top < 40 || c.Top > 120 {
		t.Errorf("clicking presenceSnapshot in the sidebar landed at %+v, want its section just below the bar", c)
	}
}
