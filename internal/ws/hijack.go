package ws

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"time"
)

// Buffers of a connection after the upgrade. net/http hands a hijacked connection over with
// 4 KiB read and write buffers, and coder/websocket keeps both for the connection's life:
// most of what an idle connection would cost (memory per idle connection, issue 4).
//
// Reading: inbound frames are at most WS_MAX_PAYLOAD_BYTES (2 KiB) and are mostly cursor
// frames of ~50 bytes, so a small buffer still reads a frame in one system call; larger
// payloads are read straight into the caller's buffer by bufio.
//
// Writing: coder/websocket writes a frame as header, payload, flush into its bufio.Writer.
// A small bufio.Writer alone would split most frames into two writes to the socket, so it
// writes into a frameWriter, which hands the socket whole frames and keeps nothing between
// frames (see frameWriter).
const (
	hijackReadBuf  = 128
	hijackWriteBuf = 64
)

// smallBuffers hands websocket.Accept the hijacked connection with small buffers, and keeps
// the frameWriter under them for the connection's writer.
type smallBuffers struct {
	http.ResponseWriter
	writeTimeout time.Duration // WS_WRITE_TIMEOUT, for frameWriter
	fw           *frameWriter  // set by Hijack
	br           *bufio.Reader // set by Hijack: the reader's shallow wait peeks into it (see waitFrame)
	nc           net.Conn      // set by Hijack
}

// Hijack takes over the connection and rebuilds its buffers, keeping any bytes net/http had
// already read past the request (the peer may pipeline its first frame).
func (s *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = c
	n := brw.Reader.Buffered()
	if n > 0 {
		early, _ := brw.Reader.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(early)), c)
	}
	br := bufio.NewReaderSize(r, max(hijackReadBuf, n))
	if n > 0 {
		// Make the early bytes buffered: Accept re-reads exactly what is buffered.
		if _, err := br.Peek(n); err != nil {
			return nil, nil, err
		}
	}
	s.fw = &frameWriter{w: c, timeout: s.writeTimeout}
	s.br, s.nc = br, c
	return c, bufio.NewReadWriter(br, bufio.NewWriterSize(s.fw, hijackWriteBuf)), nil
}
