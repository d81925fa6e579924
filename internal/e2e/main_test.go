package e2e_test

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// TestMain runs the package's tests and then the route-coverage gate: every operation of the
// OpenAPI document must have been called (with its response validated against the document)
// by a test of this package. It is measured from the calls made, not from the sources, so a
// route nobody calls fails CI. A run narrowed with -run skips the gate.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		missing, err := uncalledOperations(apptest.CalledOperations())
		if err != nil {
			fmt.Fprintln(os.Stderr, "route coverage:", err)
			code = 1
		} else if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL route coverage: no test in internal/e2e calls these OpenAPI operations: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

// uncalledOperations lists the operationIds of the OpenAPI document that are not in called.
func uncalledOperations(called []string) ([]string, error) {
	doc, err := api.GetSpec()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, id := range called {
		seen[id] = true
	}
	var missing []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if !seen[op.OperationID] {
				missing = append(missing, op.OperationID)
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// TestCoverageGateReportsUncalledRoutes proves the gate is not a no-op.
func TestCoverageGateReportsUncalledRoutes(t *testing.T) {
	t.Parallel()
	all, err := uncalledOperations(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 20 {
		t.Fatalf("uncalledOperations(nil) = %v, want every operation of the document", all)
	}
	rest, err := uncalledOperations(all[1:])
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0] != all[0] {
		t.Errorf("uncalledOperations(all but %s) = %v, want [%s]", all[0], rest, all[0])
	}
}
