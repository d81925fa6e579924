package telemetry

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limiter is the per-client request throttle: at most limit requests per window (one minute
// for TELEMETRY_RATE_PER_MIN), counted in a sliding window.
//
// Each client has a window anchored at its first request, a count for the current window and
// one for the previous; the estimate is prev × (unelapsed share of the window) + cur (the
// sliding-window counter). A client's first window is therefore exact — its (limit+1)th
// request within a minute of its first is refused — and afterwards bursts at window edges are
// smoothed rather than doubled. Refused requests are not counted, so a client that keeps
// hammering is let back in as its old requests age out.
//
// Memory is bounded: entries are 40-odd bytes, expire two windows after a client's last
// window started (they then weigh nothing), are swept at most once per window per shard, and
// when a shard is full of live entries an arbitrary one is evicted: under a flood of distinct
// clients the limiter forgets some rather than grow.
type Limiter struct {
	limit      int64
	window     int64 // ns
	now        func() time.Time
	shardCap   int
	seed       maphash.Seed
	shards     [limiterShards]limiterShard
	sweepEvery int64 // ns between sweeps of one shard
}

const limiterShards = 64

type limiterShard struct {
	mu        sync.Mutex
	m         map[netip.Addr]window
	lastSweep int64
	_         [40]byte // keep shards on separate cache lines
}

type window struct {
	start     int64 // ns, start of the current window
	prev, cur int32
}

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	Limit      int           // requests per window, > 0
	Window     time.Duration // default one minute
	MaxClients int           // entries kept at most (approximately), default 100,000
	Now        func() time.Time
}

// NewLimiter returns a Limiter.
func NewLimiter(o LimiterOptions) *Limiter {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{
		limit:      int64(max(o.Limit, 1)),
		window:     int64(o.Window),
		now:        o.Now,
		shardCap:   max(1, o.MaxClients/limiterShards),
		seed:       maphash.MakeSeed(),
		sweepEvery: int64(o.Window),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]window)
	}
	return l
}

// Allow counts one request of client and reports whether it may proceed; when not, it also
// returns how long until a request would be allowed.
func (l *Limiter) Allow(client netip.Addr) (bool, time.Duration) {
	now := l.now().UnixNano()
	s := &l.shards[maphash.Comparable(l.seed, client)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.m[client]
	if !ok {
		l.makeRoom(s, now)
		w = window{start: now}
	}
	w = l.advance(w, now)
	elapsed := now - w.start
	est := float64(w.prev)*(1-float64(elapsed)/float64(l.window)) + float64(w.cur)
	if est+1 > float64(l.limit) {
		if ok {
			s.m[client] = w
		}
		return false, l.retryAfter(w, elapsed)
	}
	w.cur++
	s.m[client] = w
	return true, 0
}

// advance rolls w forward so that now falls in its current window.
func (l *Limiter) advance(w window, now int64) window {
	if d := now - w.start; d >= l.window {
		k := d / l.window
		if k == 1 {
			w.prev = w.cur
		} else {
			w.prev = 0
		}
		w.cur = 0
		w.start += k * l.window
	}
	return w
}

// retryAfter is the time from now until prev × (1 - t/W) + cur + 1 ≤ limit holds again.
func (l *Limiter) retryAfter(w window, elapsed int64) time.Duration {
	W := float64(l.window)
	room := float64(l.limit - 1 - int64(w.cur))
	var at float64 // offset from w.start
	if room >= 0 {
		// Within this window, once enough of the previous one has slid out.
		at = W * (1 - room/float64(w.prev))
	} else {
		// Only in the next window, once enough of this one has slid out.
		at = W + W*(1-float64(l.limit-1)/float64(w.cur))
	}
	d := time.Duration(math.Ceil(at)) - time.Duration(elapsed)
	return max(d, time.Millisecond)
}

// makeRoom keeps s under its capacity before an insert: expired entries are swept at most
// once per sweep interval (or when the shard is full), then an arbitrary live entry is
// evicted if still full.
func (l *Limiter) makeRoom(s *limiterShard, now int64) {
	full := len(s.m) >= l.shardCap
	if now-s.lastSweep >= l.sweepEvery || (full && now-s.lastSweep >= l.sweepEvery/60) {
		s.lastSweep = now
		for k, w := range s.m {
			if now-w.start >= 2*l.window {
				delete(s.m, k)
			}
		}
	}
	if len(s.m) >= l.shardCap {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
}

// Len is how many clients the limiter currently remembers.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Collector exports how many clients the limiter remembers, to watch its memory bound.
func (l *Limiter) Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "m4sh_telemetry_throttle_clients",
		Help: "Clients the telemetry throttle currently remembers.",
	}, func() float64 { return float64(l.Len()) })
}
