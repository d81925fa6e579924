package ws

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// Buffer sizes of a connection after the upgrade. net/http hands a hijacked connection over
// with 4 KiB read and write buffers; coder/websocket keeps them for the connection's life,
// which is most of what an idle connection costs. Inbound frames are at most
// WS_MAX_PAYLOAD_BYTES (2 KiB) and outbound ones are coalesced batches of small cursor
// messages, so smaller buffers cost no extra reads for inbound frames and only split the
// occasional large batch into two writes.
const (
	hijackReadBuf  = 1 << 10
	hijackWriteBuf = 2 << 10
)

// smallBuffers hands websocket.Accept the hijacked connection with smaller buffers.
type smallBuffers struct {
	http.ResponseWriter
}

// Hijack takes over the connection and rebuilds its buffers, keeping any bytes net/http had
// already read past the request (the peer may pipeline its first frame).
func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
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
	return c, bufio.NewReadWriter(br, bufio.NewWriterSize(c, hijackWriteBuf)), nil
}
