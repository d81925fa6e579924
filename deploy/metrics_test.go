package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/solo"
)

// metricName finds the service's metric names in a PromQL expression: identifiers with one
// of the prefixes the service exports, not part of a recording rule's level:name:operation.
var metricName = regexp.MustCompile(`(?:^|[^:a-zA-Z0-9_])((?:m4sh|go|process)_[a-zA-Z0-9_]+)\b(?:[^:]|$)`)

// recordingName finds recording rule names (they contain colons).
var recordingName = regexp.MustCompile(`\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+\b`)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleTests is the part of the promtool test file the test reads.
type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEveryAlertIsTestedAndDocumented: each alert has a promtool case where it fires and one
// where it stays quiet, and its runbook annotation points at a heading of the README's
// runbook.
func TestEveryAlertIsTestedAndDocumented(t *testing.T) {
	t.Parallel()
	var rf ruleFile
	readYAML(t, "prometheus/m4sh.rules.yml", &rf)
	var rt ruleTests
	readYAML(t, "prometheus/m4sh.rules.test.yml", &rt)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if h, ok := strings.CutPrefix(line, "#### "); ok {
			anchors[strings.ToLower(h)] = true
		}
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: promtool cases firing %t, quiet %t; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "README.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook %q is not a README.md#<heading> of the runbook", r.Alert, r.Annotations["runbook"])
			}
		}
	}
	if alerts < 15 {
		t.Errorf("read %d alerts, want at least 15", alerts)
	}
}

// dashboard is the part of the Grafana JSON the test reads.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// exprs returns every PromQL expression of the rules (keyed "rules: <name>") and of the
// dashboard (keyed "dashboard: <panel>"), and the recording rules defined.
func exprs(t *testing.T) (map[string]string, map[string]bool) {
	t.Helper()
	var rf ruleFile
	readYAML(t, "prometheus/m4sh.rules.yml", &rf)
	out, recorded := map[string]string{}, map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			out["rules: "+name] = r.Expr
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	b, err := os.ReadFile("grafana/m4sh.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/m4sh.json: %v", err)
	}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			out[fmt.Sprintf("dashboard: %s #%d", p.Title, i)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out["dashboard variable: "+v.Name] = v.Definition
		}
	}
	return out, recorded
}

// TestRulesAndDashboardNameOnlyExistingMetrics starts the service as one node of a NATS
// cluster, exercises it until every vector metric has a series (HTTP, a WebSocket session,
// a cursor flood, dropped telemetry, a retention run) and requires every metric named by
// an alert, a recording rule or a dashboard panel to appear in its /metrics. A renamed
// metric fails here instead of silently emptying a panel or disarming an alert.
func TestRulesAndDashboardNameOnlyExistingMetrics(t *testing.T) {
	t.Parallel()
	all, recorded := exprs(t)
	used := map[string][]string{} // metric → where
	for where, e := range all {
		for _, m := range metricName.FindAllStringSubmatch(e, -1) {
			used[m[1]] = append(used[m[1]], where)
		}
		for _, r := range recordingName.FindAllString(e, -1) {
			if !recorded[r] {
				t.Errorf("%s uses recording rule %s, which prometheus/m4sh.rules.yml does not define", where, r)
			}
		}
	}
	if len(used) < 25 {
		t.Fatalf("found only %d metric names in the rules and the dashboard: the extraction is broken", len(used))
	}

	t.Logf("%d metrics named by the rules and the dashboard", len(used))

	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	f := apptest.NewClassrooms(t, map[string]string{
		"PUBSUB": "nats", "NATS_URL": ns.ClientURL(),
		// A one-event buffer that is never flushed during the test: the second event drops.
		"TELEMETRY_BUFFER_EVENTS": "1", "TELEMETRY_FLUSH_EVENTS": "1000", "TELEMETRY_FLUSH_INTERVAL": "1h",
	})
	e := f.Env
	exercise(t, f)

	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		have := scrape(t, e.Server.URL+"/metrics")
		missing = missing[:0]
		for m := range used {
			if !have[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("metric %s is not in /metrics of a running service; used by %v", m, used[m])
	}
}

// exercise drives the service through what creates each vector metric's first series.
func exercise(t *testing.T, f apptest.Classrooms) {
	t.Helper()
	e := f.Env
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	r := e.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/logs/telemetry/",
		Body: `{"events":[{"name":"a"},{"name":"b"},{"name":"c"}]}`, NoAuth: true})
	if r.Status != http.StatusNoContent || r.Header.Get("X-Telemetry-Dropped") != "2" {
		t.Fatalf("telemetry = %d, X-Telemetry-Dropped %q; want 204 and 2", r.Status, r.Header.Get("X-Telemetry-Dropped"))
	}

	// A WebSocket session: join, a burst of cursor updates over the rate (dropped as
	// rate_limited), a normal close.
	url := "ws" + strings.TrimPrefix(e.Server.URL, "http") + "/ws/classroom/" + f.Class.Id.String() + "/session/" + f.Session.Id.String() + "/"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + f.Mia}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err != nil { // presence.snapshot
		t.Fatalf("read snapshot: %v", err)
	}
	for i := range 25 {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"cursor","x":%d,"y":1}`, i)); err != nil {
			t.Fatalf("write cursor: %v", err)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}

	// A retention run through River, for the per-kind job metrics and the GC histogram.
	job, err := solo.EnqueueCleanup(ctx, e.App.River, solo.CleanupArgs{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		j, err := e.App.River.JobGet(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.FinalizedAt != nil {
			if j.State != "completed" {
				t.Fatalf("retention job ended %s: %v", j.State, j.Errors)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("retention job did not finish in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scrape returns the series names /metrics exposes (histograms as their _bucket, _sum and
// _count series, counters with _total).
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			have[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return have
}
