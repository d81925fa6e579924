package ws

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// wsMetrics are the WebSocket collectors, registered on the service's registry.
type wsMetrics struct {
	open          prometheus.Gauge
	connects      *prometheus.CounterVec // by outcome
	closes        *prometheus.CounterVec // by close code
	framesIn      prometheus.Counter
	framesOut     prometheus.Counter
	cursorsOut    prometheus.Counter
	cursorDropped *prometheus.CounterVec // by reason
	slowClosed    prometheus.Counter
	writePause    prometheus.Gauge

	droppedRate      prometheus.Counter
	droppedCoalesced prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *wsMetrics {
	m := &wsMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "m4sh_ws_connections_open", Help: "WebSocket connections open now.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "m4sh_ws_connects_total", Help: "WebSocket connection attempts by outcome (accepted, unauthorized, forbidden, session_ended, too_many_connections, session_full, error, shutting_down).",
		}, []string{"outcome"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "m4sh_ws_closes_total", Help: "WebSocket connections closed, by close code (1006: the peer vanished or timed out).",
		}, []string{"code"}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "m4sh_ws_frames_in_total", Help: "WebSocket data frames received.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "m4sh_ws_frames_out_total", Help: "WebSocket data frames sent (a cursors batch is one frame).",
		}),
		cursorsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "m4sh_ws_cursor_deliveries_total", Help: "Cursor positions sent to receivers (batched or not).",
		}),
		cursorDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "m4sh_ws_cursor_dropped_total", Help: "Cursor updates (and presence states, spotlight viewports, reactions) not delivered: rate_limited (sender over the limit) or coalesced (superseded in a slow receiver's queue, or a reaction a slow receiver went without).",
		}, []string{"reason"}),
		slowClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "m4sh_ws_slow_consumer_closes_total", Help: "Connections closed with 1013 because they could not keep up.",
		}),
		writePause: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "m4sh_ws_write_pause_seconds", Help: "Pause between a connection's writes while the process is behind (0: writes go at once; WS_MAX_WRITE_PAUSE bounds it).",
		}),
	}
	m.droppedRate = m.cursorDropped.WithLabelValues("rate_limited")
	m.droppedCoalesced = m.cursorDropped.WithLabelValues("coalesced")
	reg.MustRegister(m.open, m.connects, m.closes, m.framesIn, m.framesOut, m.cursorsOut, m.cursorDropped, m.slowClosed, m.writePause)
	return m
}

func (m *wsMetrics) closed(code int) { m.closes.WithLabelValues(strconv.Itoa(code)).Inc() }
