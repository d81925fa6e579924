// Package debugserver is the opt-in diagnostics listener (DEBUG_ADDR): Go's runtime profiles
// under /debug/pprof/, on a listener of its own so that they are never reachable through the
// public address. It is off unless DEBUG_ADDR is set; bind it to loopback.
package debugserver

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Start listens on addr and serves Handler on a goroutine until the returned server is
// closed. It returns the bound address (addr may ask for port 0). Every process that takes
// DEBUG_ADDR (m4sh serve, wsbench's servers) starts its listener here.
func Start(addr string) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr(), nil
}

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
