package httpx

import (
	"net/netip"
	"strings"
)

// Proxies is the set of trusted reverse proxies (TRUSTED_PROXIES). Only a peer in this set is
// believed about X-Forwarded-For.
type Proxies []netip.Prefix

// Contains reports whether a is a trusted proxy.
func (p Proxies) Contains(a netip.Addr) bool {
	for _, pfx := range p {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client a request comes from: the peer address
// (remoteAddr, "host:port"), or — when the peer is a trusted proxy — the first untrusted hop
// of X-Forwarded-For walking from the right, i.e. the address the outermost trusted proxy saw.
// When every hop is trusted the leftmost is the client. An unparsable hop ends the walk at the
// trusted hop that reported it, so a client can never choose its own address. xff holds every
// X-Forwarded-For header value in order. An unparsable peer gives the zero Addr.
func (p Proxies) ClientAddr(remoteAddr string, xff []string) netip.Addr {
	peer := parseHop(remoteAddr)
	if len(xff) == 0 || !peer.IsValid() || !p.Contains(peer) {
		return peer
	}
	cur := peer
	for i := len(xff) - 1; i >= 0; i-- {
		hops := xff[i]
		for hops != "" {
			var hop string
			if j := strings.LastIndexByte(hops, ','); j >= 0 {
				hop, hops = hops[j+1:], hops[:j]
			} else {
				hop, hops = hops, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a := parseHop(hop)
			if !a.IsValid() {
				return cur
			}
			cur = a
			if !p.Contains(a) {
				return a
			}
		}
	}
	return cur
}

// parseHop parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port", dropping zones and unmapping
// IPv4-mapped IPv6 addresses.
func parseHop(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
				a, err = netip.ParseAddr(s[1 : len(s)-1])
			}
			if err != nil {
				return netip.Addr{}
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone("")
}
