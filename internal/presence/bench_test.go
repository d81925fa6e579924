package presence_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// countSink counts deliveries and does nothing else: the benchmark measures presence's own
// fan-out (rate bucket, room lock, latest cursor, delivery loop), not a transport.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Deliver(*presence.Event)  { s.n.Add(1) }
func (s *countSink) CloseWith(int, string)    {}
func (s *countSink) snapshot([]presence.User) {}

// BenchmarkCursorFanout: one cursor update of a room of 20 users reaching the other 19;
// ns/op is per update, ns/delivery per receiver. The file uses only the package's public API
// of before presence v2's tutoring, so the same benchmark runs on a previous commit's tree
// for an A/B (BENCHMARKS.md).
func BenchmarkCursorFanout(b *testing.B) {
	for _, users := range []int{20, 50} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			h := presence.NewHub(presence.Options{CursorRate: 1e12, CursorBurst: 1 << 30})
			class, session := uuid.New(), uuid.New()
			sinks := make([]*countSink, users)
			conns := make([]*presence.Conn, users)
			for i := range users {
				sinks[i] = &countSink{}
				c, err := h.Join(class, session, presence.User{UserID: fmt.Sprintf("u%d", i), Role: "student"}, sinks[i], sinks[i].snapshot)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = c
			}
			wire := []byte(`"user_id":"u0","x":1,"y":2`)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				conns[i%users].Cursor(float64(i), 2, wire)
				i++
			}
			var n int64
			for _, s := range sinks {
				n += s.n.Load()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/delivery")
		})
	}
}
