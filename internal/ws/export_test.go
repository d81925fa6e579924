package ws

import "time"

// HoldWritePause pins the writers' pause at d, as if the process were behind (tests run with
// WS_MAX_WRITE_PAUSE=0 so that the pacer does not move it).
func HoldWritePause(s *Server, d time.Duration) { s.pacer.pace.Store(int64(d)) }
