// Package debugserver is the opt-in diagnostics listener (DEBUG_ADDR): Go's runtime profiles
// under /debug/pprof/, on a listener of its own so that they are never reachable through the
// public address. It is off unless DEBUG_ADDR is set; bind it to loopback.
package debugserver

import (
	"net/http"
	"net/http/pprof"
)

// Handler serves the runtime profiles. The handlers are mounted explicitly: importing
// net/http/pprof for its side effect would register them on http.DefaultServeMux.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
