package httpapi

import "testing"

func TestPrefersCSV(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"":                                 false,
		"*/*":                              false,
		"application/json":                 false,
		"text/csv":                         true,
		"text/csv; charset=utf-8":          true,
		"text/*":                           true,
		"application/json, text/csv":       false, // a tie: JSON
		"application/json;q=0.5, text/csv": true,
		"text/csv;q=0.4, application/json": false,
		"text/csv;q=0":                     false,
		"text/csv;q=2":                     false, // not a quality value
		"text/csv;q=abc, */*":              false,
		"image/png":                        false,
		"text/csv,,;;":                     true,
	} {
		if got := prefersCSV(accept); got != want {
			t.Errorf("prefersCSV(%q) = %v, want %v", accept, got, want)
		}
	}
}

func TestCSVCellDisarmsFormulas(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Mia": "Mia", "": "", "=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-1": "'-1",
		"@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx", "a=b": "a=b",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}
