// Package webhooktest is the webhook receiver of benchmarks: a minimal correct HTTP/1.1
// responder, in the benchmark's process or in a child process whose CPU is measured apart
// from the service's.
//
// A deployment's receiver runs on another host; a benchmark's shares the machine, and
// net/http's server costs about as much CPU per request as the delivery itself, so it would
// be measured as the service's cost. This one still does a receiver's work on every request
// — reads the request line and every header line, takes Content-Length, consumes the body,
// answers 204 with a Date, honours `Connection: close` and HTTP/1.0 — and nothing more: it
// keeps no body, checks no signature and answers a chunked request 501 (the deliverer never
// sends one).
//
// M4SH_BENCH_RECEIVER chooses where it runs: "inprocess" (the default: goroutines of the
// benchmark's process), "process" (a child process, the test binary started again; Stats
// reports its CPU — each request then also costs a switch between processes, which on 2
// busy cores made it dearer than in process), or "nethttp" (net/http's httptest server in
// this process, as before this package).
package webhooktest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// childEnv set to 1 makes a test binary importing this package serve as a receiver instead
// of running its tests (see init).
const childEnv = "M4SH_WEBHOOKTEST_CHILD"

// Mode names M4SH_BENCH_RECEIVER takes.
const (
	ModeProcess   = "process"
	ModeInProcess = "inprocess"
	ModeNetHTTP   = "nethttp"
)

// Receiver is a running receiver.
type Receiver struct {
	URL  string
	Mode string
	// stats waits until at least n requests were answered (or for timeout), then reports
	// how many were and, in a child process, its CPU time.
	stats func(n int64, timeout time.Duration) (int64, time.Duration)
}

// Stats returns the requests answered 204 so far and the receiver's CPU time (zero unless it
// runs in a child process).
func (r *Receiver) Stats() (requests int64, cpu time.Duration) { return r.stats(0, 0) }

// Wait waits until n requests in all were answered 204, or for timeout, and returns how many
// were. It is told, not polled: a child process answers once it has counted n.
func (r *Receiver) Wait(n int64, timeout time.Duration) int64 {
	got, _ := r.stats(n, timeout)
	return got
}

// counter counts answered requests and wakes a waiter when they reach its target.
type counter struct {
	n, target atomic.Int64
	reached   chan struct{}
}

func newCounter() *counter {
	c := &counter{reached: make(chan struct{}, 1)}
	c.target.Store(1<<63 - 1)
	return c
}

func (c *counter) add() {
	if c.n.Add(1) == c.target.Load() {
		select {
		case c.reached <- struct{}{}:
		default:
		}
	}
}

// wait returns the count once it is at least n, or after timeout. One waiter at a time.
func (c *counter) wait(n int64, timeout time.Duration) int64 {
	c.target.Store(n)
	defer c.target.Store(1<<63 - 1)
	select {
	case <-c.reached: // a wake-up left from an earlier target
	default:
	}
	if got := c.n.Load(); got >= n {
		return got
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.reached:
	case <-t.C:
	}
	return c.n.Load()
}

func (c *counter) stats(n int64, timeout time.Duration) (int64, time.Duration) {
	return c.wait(n, timeout), 0
}

// Start starts a receiver as M4SH_BENCH_RECEIVER says; it stops when tb's test ends.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	mode := os.Getenv("M4SH_BENCH_RECEIVER")
	switch mode {
	case ModeProcess:
		return startChild(tb)
	case "", ModeInProcess:
		mode = ModeInProcess
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		n := newCounter()
		go serve(ln, n)
		tb.Cleanup(func() { _ = ln.Close() })
		return &Receiver{URL: "http://" + ln.Addr().String() + "/", Mode: mode, stats: n.stats}
	case ModeNetHTTP:
		n := newCounter()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			n.add() // counted before the answer is flushed: Wait may return a moment early
		}))
		tb.Cleanup(srv.Close)
		return &Receiver{URL: srv.URL + "/", Mode: mode, stats: n.stats}
	}
	tb.Fatalf("M4SH_BENCH_RECEIVER=%q: want %s, %s or %s", mode, ModeProcess, ModeInProcess, ModeNetHTTP)
	return nil
}

// startChild starts this test binary again as a receiver; it exits when its stdin closes.
// The parent asks for its stats by writing "n timeout-ns", and reads "requests cpu-ns" once
// n requests were answered or the timeout passed.
func startChild(tb testing.TB) *Receiver {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	out := bufio.NewReader(outPipe)
	addr, err := out.ReadString('\n')
	if err != nil {
		tb.Fatalf("receiver process: %v", err)
	}
	var mu sync.Mutex
	return &Receiver{URL: "http://" + strings.TrimSpace(addr) + "/", Mode: ModeProcess, stats: func(n int64, timeout time.Duration) (int64, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintln(in, n, int64(timeout)); err != nil {
			tb.Fatalf("receiver process: %v", err)
		}
		line, err := out.ReadString('\n')
		if err != nil {
			tb.Fatalf("receiver process: %v", err)
		}
		var got, ns int64
		if _, err := fmt.Sscan(line, &got, &ns); err != nil {
			tb.Fatalf("receiver process said %q: %v", line, err)
		}
		return got, time.Duration(ns)
	}}
}

func init() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhooktest receiver:", err)
		os.Exit(1)
	}
	n := newCounter()
	go serve(ln, n)
	fmt.Println(ln.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var want, timeout int64
		_, _ = fmt.Sscan(in.Text(), &want, &timeout)
		got := n.wait(want, time.Duration(timeout))
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Println(got, ru.Utime.Nano()+ru.Stime.Nano())
	}
	os.Exit(0)
}

func serve(ln net.Listener, n *counter) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serveConn(c, n)
	}
}

// date is the Date header's value, formatted once a second.
var date atomic.Pointer[struct {
	sec int64
	val []byte
}]

func dateValue() []byte {
	now := time.Now()
	if d := date.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &struct {
		sec int64
		val []byte
	}{now.Unix(), []byte(now.UTC().Format(http.TimeFormat))}
	date.Store(d)
	return d.val
}

// serveConn answers the requests of one connection, in order, until it closes.
func serveConn(c net.Conn, n *counter) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4<<10)
	var out []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		closeAfter := !bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte("HTTP/1.1"))
		length, chunked, bad := int64(0), false, false
		for {
			h, err := br.ReadSlice('\n')
			if err != nil {
				return // a header line over 4 KiB, or the connection ended
			}
			h = bytes.TrimRight(h, "\r\n")
			if len(h) == 0 {
				break
			}
			name, value, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				bad = true
				continue
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
					bad = true
				}
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				chunked = true
			case bytes.EqualFold(name, []byte("Connection")):
				closeAfter = closeAfter || bytes.EqualFold(value, []byte("close"))
			}
		}
		status := "204 No Content"
		switch {
		case bad:
			status, closeAfter = "400 Bad Request", true
		case chunked:
			status, closeAfter = "501 Not Implemented", true
		default:
			if _, err := br.Discard(int(length)); err != nil {
				return
			}
		}
		out = append(append(append(out[:0], "HTTP/1.1 "...), status...), "\r\nDate: "...)
		out = append(append(out, dateValue()...), "\r\n"...)
		if closeAfter {
			out = append(out, "Connection: close\r\n"...)
		}
		if status != "204 No Content" {
			out = append(out, "Content-Length: 0\r\n"...)
		}
		out = append(out, "\r\n"...)
		if _, err := c.Write(out); err != nil {
			return
		}
		if status == "204 No Content" {
			n.add()
		}
		if closeAfter {
			return
		}
	}
}
