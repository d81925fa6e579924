package telemetry

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"net/netip"
	"sync"
)

// ThrottleKey is the throttle's notion of one client: the address itself for IPv4, its /64
// for IPv6, since one IPv6 host commonly owns a whole /64 and could otherwise rotate
// addresses to escape the limit.
func ThrottleKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}

// Hasher computes the salted hash under which a client address is stored: HMAC-SHA256 keyed
// with the salt, truncated to 16 bytes. Without the salt the hash cannot be recomputed from
// a guessed address; with the same salt it is stable across restarts and nodes.
type Hasher struct {
	pool sync.Pool
}

// ClientHashBytes is the length of a stored client hash.
const ClientHashBytes = 16

// NewHasher returns a Hasher keyed with salt.
func NewHasher(salt []byte) *Hasher {
	key := append([]byte(nil), salt...)
	h := &Hasher{}
	h.pool.New = func() any { return hmac.New(sha256.New, key) }
	return h
}

// Hash returns the salted hash of a.
func (h *Hasher) Hash(a netip.Addr) []byte {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	b := a.As16()
	m.Write(b[:])
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	h.pool.Put(m)
	return append([]byte(nil), out[:ClientHashBytes]...)
}
